import LockstepPrograms

/// The shrinker's own candidate moves: simpler numbers and a simpler machine. (Removing calls with their
/// dependents, the failing call's dependency closure and dense renaming are the program's own operations,
/// `Program.removingCalls`, `dependencyClosure`, `renamedDensely`.) Each returns a whole program; the
/// shrinker keeps a candidate only if it still fails with the same signature.
extension Shrinker {
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
}
