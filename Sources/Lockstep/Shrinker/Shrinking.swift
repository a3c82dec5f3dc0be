import LockstepPrograms
import MemoryManager

/// Shrinks a failing program to a smaller one that fails with the same signature: first the calls after
/// the failing one and the calls it does not depend on, then delta debugging over calls (large chunks to
/// small, a removed call's dependents with it), then fault lines, then numbers (towards 0, 1, PAGE_SIZE,
/// halves, lower `nth`), and finally dense renaming. Every candidate must keep the signature, so the
/// shrinker never slips to another bug. Deterministic; bounded by a number of runs.
public struct Shrinker {
    /// Stops after this many candidate runs.
    public var maxRuns: Int
    public let runner: LockstepRunner
    /// Called on every fresh engine before a candidate runs (the campaign's, e.g. a test's mutation).
    public var prepareKernel: (@Sendable (Kernel) -> Void)?

    /// Runs a candidate instead of the lockstep runner and says how it fails (signature, 1-based failing
    /// step), or nil when it passes: how programs another harness runs (driver-under-test mode) shrink.
    public var judge: (@Sendable (Program) -> (signature: String, step: Int)?)?

    public init(maxRuns: Int = 2000, runner: LockstepRunner = LockstepRunner(), prepareKernel: (@Sendable (Kernel) -> Void)? = nil) {
        self.maxRuns = maxRuns
        self.runner = runner
        self.prepareKernel = prepareKernel
    }

    /// A shrinker whose candidates `judge` runs (see ``judge``).
    public init(maxRuns: Int = 2000, judge: @escaping @Sendable (Program) -> (signature: String, step: Int)?) {
        self.init(maxRuns: maxRuns)
        self.judge = judge
    }

    private func report(_ program: Program) -> RunReport? {
        guard let kernel = try? LockstepRunner.makeKernel(for: program) else { return nil }
        prepareKernel?(kernel)
        return try? runner.run(program, oracle: ReferenceOracle.make(for: program), kernel: kernel)
    }

    /// How a candidate fails (signature and step), or nil when it passes.
    private func judgement(_ program: Program) -> (signature: String, step: Int)? {
        if let judge { return judge(program) }
        guard let report = report(program) else { return nil }
        switch report.verdict {
        case .pass: return nil
        case .divergence(let step, _, _, _, _), .bugcheck(let step, _, _, _), .invariant(let step, _, _): return (report.verdict.signature, step)
        }
    }

    /// What shrinking produced.
    public struct Result: Sendable {
        public let program: Program
        public let signature: String
        public let runs: Int
        /// True when removing any one call (with its dependents) or fault line no longer reproduces.
        public let oneMinimal: Bool
    }

    /// Shrinks `program`, which must fail; returns nil if it passes.
    public func shrink(_ program: Program) -> Result? {
        var runs = 0
        guard let signature = failure(program, &runs) else { return nil }
        var best = program
        func keeps(_ candidate: Program) -> Bool {
            guard runs < maxRuns, candidate != best, (try? ProgramText.parse(ProgramText.encode(candidate))) == candidate else { return false }
            return failure(candidate, &runs) == signature
        }
        // 1. Only the calls up to the failing one, and only those it depends on (its handle closure).
        if let step = failingStep(best), step <= best.calls.count {
            var candidate = best
            candidate.calls = Array(best.calls.prefix(step))
            if keeps(candidate) { best = candidate }
            let needed = Self.closure(of: best.calls.count - 1, in: best.calls)
            candidate = best
            candidate.calls = best.calls.indices.filter { needed.contains($0) }.map { best.calls[$0] }
            if keeps(candidate) { best = candidate }
        }
        // 2. Delta debugging over calls and faults, then number simplification, until nothing helps.
        var progress = true
        while progress && runs < maxRuns {
            progress = false
            var chunk = max(1, best.calls.count / 2)
            while chunk >= 1 && runs < maxRuns {
                var start = 0
                while start < best.calls.count {
                    let candidate = Self.removing(Array(start..<min(start + chunk, best.calls.count)), from: best)
                    if keeps(candidate) { best = candidate; progress = true } else { start += chunk }
                }
                chunk /= 2
            }
            var fault = 0
            while fault < best.faults.count {
                var candidate = best
                candidate.faults.remove(at: fault)
                if keeps(candidate) { best = candidate; progress = true } else { fault += 1 }
            }
            for candidate in simplifications(of: best) where keeps(candidate) {
                best = candidate
                progress = true
                break
            }
        }
        let renamed = Self.renamedDensely(best)
        if keeps(renamed) { best = renamed }
        return Result(program: best, signature: signature, runs: runs, oneMinimal: isOneMinimal(best, signature, &runs))
    }

    private func failure(_ program: Program, _ runs: inout Int) -> String? {
        runs += 1
        return judgement(program)?.signature
    }

    private func failingStep(_ program: Program) -> Int? { judgement(program)?.step }

    /// Removing any single call (with its dependents) or fault line loses the failure.
    private func isOneMinimal(_ program: Program, _ signature: String, _ runs: inout Int) -> Bool {
        for index in program.calls.indices where failure(Self.removing([index], from: program), &runs) == signature { return false }
        for index in program.faults.indices {
            var candidate = program
            candidate.faults.remove(at: index)
            if failure(candidate, &runs) == signature { return false }
        }
        return true
    }

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
    private func simplifications(of program: Program) -> [Program] {
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
