import LockstepPrograms

/// Small edits that keep a program well formed, for feature-guided campaigns (syzkaller's mutate):
/// change the fault plan, move a number, a flag or an enumeration to a boundary (often an edge of its
/// parameter's domain, `ParameterEdges`), or drop a call nothing depends on.
/// The page size comes from each program's own machine line (a campaign may mix machines).
package struct ProgramMutator: Sendable {
    package init() {}

    package func mutate(_ program: Program, random: inout SeededRandom) -> Program {
        var result = program
        let pageSize = program.machine.pageSize
        for _ in 0..<(1 + random.below(3)) {
            switch random.below(4) {
            case 0: mutateFaults(&result, &random)
            case 1, 2: mutateNumber(&result, &random, pageSize: pageSize)
            default: dropUnusedCall(&result, &random)
            }
        }
        assert((try? result.validate()) != nil, "a mutation made a program the parser would refuse")
        return result
    }

    private func mutateFaults(_ program: inout Program, _ random: inout SeededRandom) {
        if !program.faults.isEmpty && random.chance(40) {
            program.faults.remove(at: random.below(program.faults.count))
            return
        }
        let kind = random.pick(["pool.nonpaged", "ptes", "frame", "pagein", "pool.paged"])
        program.faults.append(FaultLine(kind: kind, settings: [Setting("nth", "\(1 + random.below(8))")]))
    }

    private func mutateNumber(_ program: inout Program, _ random: inout SeededRandom, pageSize: UInt64) {
        let candidates = program.calls.indices.flatMap { call in
            program.calls[call].arguments.indices.compactMap { argument -> (Int, Int)? in
                // Handles stay what they name; addresses, lengths, numbers, flags and enumerations move.
                let parameters = program.calls[call].routine.signature.parameters
                guard argument < parameters.count, parameters[argument].kind != .handle else { return nil }
                switch program.calls[call].arguments[argument] {
                case .expression(.literal), .expression(.reference), .boolean: return (call, argument)
                // Not the processor mode (a kernel mapping turned into a user mapping outlives the unlock the
                // program makes) nor the pool type (an MDL header in paged pool pages in where the program
                // expects none): driver bugs of the mutator's making, not engine findings.
                case .symbol: return [nil, .processorMode, .poolType].contains(Optional(parameters[argument].kind)) || parameters[argument].kind.symbols == nil ? nil : (call, argument)
                default: return nil
                }
            }
        }
        guard !candidates.isEmpty else { return }
        let (call, argument) = random.pick(candidates)
        let parameter = program.calls[call].routine.signature.parameters[argument]
        switch program.calls[call].arguments[argument] {
        case .boolean(let value):
            program.calls[call].arguments[argument] = .boolean(!value)
        case .symbol:
            // An enumeration's edges: its minimum, its maximum, its first invalid value.
            let symbols = parameter.kind.symbols ?? []
            let edges: [Argument] = [.symbol(symbols.first ?? ""), .symbol(symbols.last ?? ""), .expression(.literal(ParameterEdges.firstInvalid(parameter.kind)))]
            program.calls[call].arguments[argument] = random.pick(edges)
        case .expression(.literal(let value)):
            var options: [UInt64] = [0, 1, value &+ 1, value &- 1, pageSize - 1, pageSize, pageSize + 1, 2 * pageSize, 0xFFFF_FFFF, value / 2]
            // Half the time, an edge of the parameter's domain (ParameterEdges).
            if random.chance(50) {
                if let edges = EdgeConstants(program.machine).edges(ParameterDomain(parameter)) {
                    options = edges.map(\.1)
                } else {
                    options += [0xFFFF_FFFF]
                }
            }
            program.calls[call].arguments[argument] = .expression(.literal(random.pick(options)))
        case .expression(.reference(let name, let offset)):
            let options: [Int64] = [0, offset + 1, offset - 1, Int64(pageSize) - 1, Int64(pageSize), offset + Int64(pageSize)]
            program.calls[call].arguments[argument] = .expression(.reference(name, offset: random.pick(options)))
        default: break
        }
    }

    /// Calls that release something: dropping one manufactures a leak or a dangling mapping (a driver
    /// bug of the program's own making) instead of exploring the engine.
    static let releases: Set<Routine> = [.mmUnmapLockedPages, .mmUnlockPages, .ioFreeMdl, .mmUnmapIoSpace, .exFreePool, .mmFreePagesFromMdl,
                                         .mmPrepareMdlForReuse, .freeUserBuffer, .ioFreeIrp, .keLowerIrql]

    private func dropUnusedCall(_ program: inout Program, _ random: inout SeededRandom) {
        let used = program.referencedNames
        let droppable = program.calls.indices.filter { index in
            !Self.releases.contains(program.calls[index].routine) && (program.calls[index].result.map { !used.contains($0) } ?? true)
        }
        guard droppable.count > 1 else { return }
        program.calls.remove(at: random.pick(droppable))
    }
}
