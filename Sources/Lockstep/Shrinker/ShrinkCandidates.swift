import LockstepPrograms

/// The shrinker's candidate moves: removing calls with their dependents, the handle closure of the
/// failing call, simpler numbers, a simpler machine, dense renaming. Each returns a whole program; the
/// shrinker keeps a candidate only if it still fails with the same signature.
extension Shrinker {
    /// The calls `index` depends on through the names it reads, transitively, itself included.
    static func closure(of index: Int, in calls: [Call]) -> Set<Int> {
        var needed: Set<Int> = [index]
        var queue = [index]
        let producer = Dictionary(calls.indices.compactMap { i in calls[i].result.map { ($0, i) } }, uniquingKeysWith: { first, _ in first })
        while let next = queue.popLast() {
            for name in calls[next].references {
                if let source = producer[name], needed.insert(source).inserted { queue.append(source) }
            }
        }
        return needed
    }

    /// `program` without the calls at `indices` and every call that reads (transitively) what they bound.
    static func removing(_ indices: [Int], from program: Program) -> Program {
        var removed = Set(indices)
        var names = Set(indices.compactMap { program.calls[$0].result })
        for index in program.calls.indices where !removed.contains(index) && program.calls[index].references.contains(where: names.contains) {
            removed.insert(index)
            if let result = program.calls[index].result { names.insert(result) }
        }
        var result = program
        result.calls = program.calls.indices.filter { !removed.contains($0) }.map { program.calls[$0] }
        return result
    }

    /// Candidates with one number made simpler: literals towards 0, 1, a page, half; offsets towards 0;
    /// a fault's nth lower.
    static func simplifications(of program: Program) -> [Program] {
        var candidates: [Program] = []
        for (c, call) in program.calls.enumerated() {
            for (a, argument) in call.arguments.enumerated() {
                switch argument {
                case .expression(.literal(let value)) where value > 1:
                    for simpler in [0, 1, 0x1000, value / 2] as [UInt64] where simpler < value {
                        var candidate = program
                        candidate.calls[c].arguments[a] = .expression(.literal(simpler))
                        candidates.append(candidate)
                    }
                case .expression(.reference(let name, let offset)) where offset != 0:
                    var candidate = program
                    candidate.calls[c].arguments[a] = .expression(.reference(name, offset: 0))
                    candidates.append(candidate)
                default: break
                }
            }
        }
        for (f, fault) in program.faults.enumerated() {
            for (s, setting) in fault.settings.enumerated() where ["nth", "after"].contains(setting.key) {
                guard let value = Int(setting.value), value > (setting.key == "nth" ? 1 : 0) else { continue }
                var candidate = program
                candidate.faults[f].settings[s].value = "\(value - 1)"
                candidates.append(candidate)
            }
        }
        return candidates
    }

    /// Candidates with a simpler machine: x86 instead of another architecture, then each setting back
    /// to its default (fewer frames, the default pool and PTE sizes, the default mode and version).
    static func machineSimplifications(of program: Program) -> [Program] {
        var candidates: [Program] = []
        if program.machine.architecture != "x86" {
            var candidate = program
            candidate.machine.architecture = "x86"
            candidates.append(candidate)
        }
        for index in program.machine.settings.indices {
            var candidate = program
            candidate.machine.settings.remove(at: index)
            candidates.append(candidate)
        }
        return candidates
    }

    /// Names renumbered in order of appearance (m0, b1, v2 … become m0, b1, v2 with no gaps), fault
    /// `page=` expressions included.
    static func renamedDensely(_ program: Program) -> Program {
        var mapping: [String: String] = [:]
        var result = program
        for index in result.calls.indices {
            if let name = result.calls[index].result {
                let prefix = String(name.prefix { $0.isLetter })
                mapping[name] = "\(prefix)\(mapping.count)"
                result.calls[index].result = mapping[name]
            }
            result.calls[index].arguments = result.calls[index].arguments.map { argument in
                guard case .expression(.reference(let name, let offset)) = argument, let renamed = mapping[name] else { return argument }
                return .expression(.reference(renamed, offset: offset))
            }
        }
        for f in result.faults.indices {
            for s in result.faults[f].settings.indices where result.faults[f].settings[s].key == "page" {
                if case .reference(let name, let offset)? = Expression(parsing: result.faults[f].settings[s].value), let renamed = mapping[name] {
                    result.faults[f].settings[s].value = Expression.reference(renamed, offset: offset).description
                }
            }
        }
        return result
    }
}
