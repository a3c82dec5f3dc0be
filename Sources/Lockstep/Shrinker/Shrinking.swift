import LockstepPrograms
import MemoryManager

/// Shrinks a failing program to a smaller one that fails with the same signature: first the calls after
/// the failing one and the calls it does not depend on, then delta debugging over calls (large chunks to
/// small, a removed call's dependents with it), then fault lines, a simpler machine, simpler numbers
/// (towards 0, 1, PAGE_SIZE, halves, lower `nth`), and finally dense renaming. Every candidate must keep
/// the signature, so the shrinker never slips to another bug. Deterministic for a given run budget; a
/// time budget only decides when to stop (the result is then whatever was best so far).
public struct Shrinker {
    /// Stops after this many candidate runs.
    public var maxRuns: Int
    /// Stops after this many seconds (nil: no time bound).
    public var maxSeconds: Double?
    /// Runs candidates (in process by default).
    public var oracle: any FailureOracle
    /// Called each time a smaller failing program is found, with its signature and the runs spent so far:
    /// save it here so an interrupted shrink loses nothing (shrinking the saved program again resumes).
    public var onImprovement: ((Program, FailureSignature, Int) -> Void)?

    /// A shrinker whose candidates run in this process with `execution` (the reference model, the
    /// engine's deliberate slips from its `prepareKernel`).
    public init(maxRuns: Int = Limits.shrinkRuns, execution: Execution = Execution()) {
        self.init(maxRuns: maxRuns, oracle: LockstepFailureOracle(execution))
    }

    /// A shrinker with a run budget (default `Limits.shrinkRuns`), an optional time budget in seconds, and any oracle.
    public init(maxRuns: Int = Limits.shrinkRuns, maxSeconds: Double? = nil, oracle: any FailureOracle) {
        self.maxRuns = maxRuns
        self.maxSeconds = maxSeconds
        self.oracle = oracle
    }

    /// What shrinking produced.
    public struct Result: Sendable {
        /// The smallest failing program found.
        public let program: Program
        /// Its signature (the one shrinking kept).
        public let signature: FailureSignature
        /// Candidate runs spent.
        public let runs: Int
        /// True when removing any one call (with its dependents) or fault line, or simplifying any one
        /// number or machine setting, no longer reproduces; checked at the end.
        public let oneMinimal: Bool
        /// The run or time budget ran out before shrinking finished (the result is the best so far).
        public let budgetExhausted: Bool
    }

    /// Shrinks `program`, which must fail; returns nil if it passes.
    public func shrink(_ program: Program) -> Result? {
        var session = Session(oracle: oracle, maxRuns: maxRuns, deadline: maxSeconds.map { ContinuousClock.now + .milliseconds(Int($0 * 1000)) })
        guard let first = session.failure(program) else { return nil }
        let signature = first.signature
        var best = program
        func keeps(_ candidate: Program) -> Bool {
            guard session.hasBudget, candidate != best, (try? candidate.validate()) != nil else { return false }
            let text = ProgramText.encode(candidate)
            guard (try? ProgramText.parse(text)) == candidate, session.failure(candidate, text: text)?.signature == signature else { return false }
            best = candidate
            onImprovement?(best, signature, session.runs)
            return true
        }
        // 1. Only the calls up to the failing one, and only those it depends on (its handle closure).
        if let step = first.step, step <= best.calls.count {
            _ = keeps(best.removingCalls(step..<best.calls.count))
            let needed = best.dependencyClosure(of: best.calls.count - 1)
            _ = keeps(best.removingCalls(best.calls.indices.filter { !needed.contains($0) }))
        }
        // 2. Delta debugging over calls, then faults, machine and numbers, until nothing helps.
        var progress = true
        while progress && session.hasBudget {
            progress = false
            var chunk = max(1, best.calls.count / 2)
            while chunk >= 1 && session.hasBudget {
                var start = 0
                while start < best.calls.count && session.hasBudget {
                    if keeps(best.removingCalls(start..<min(start + chunk, best.calls.count))) { progress = true } else { start += chunk }
                }
                chunk /= 2
            }
            var fault = 0
            while fault < best.faults.count && session.hasBudget {
                var candidate = best
                candidate.faults.remove(at: fault)
                if keeps(candidate) { progress = true } else { fault += 1 }
            }
            for candidate in Self.machineSimplifications(of: best) + Self.simplifications(of: best) where keeps(candidate) {
                progress = true
                break
            }
        }
        _ = keeps(best.renamedDensely())
        let exhausted = !session.hasBudget
        let minimal = !exhausted && isOneMinimal(best, signature, &session)
        return Result(program: best, signature: signature, runs: session.runs, oneMinimal: minimal, budgetExhausted: exhausted)
    }

    /// Removing any single call (with its dependents) or fault line, or any single simplification, loses
    /// the failure. Not bounded by the budget: this is the certificate.
    private func isOneMinimal(_ program: Program, _ signature: FailureSignature, _ session: inout Session) -> Bool {
        var candidates = program.calls.indices.map { program.removingCalls([$0]) }
        for index in program.faults.indices {
            var candidate = program
            candidate.faults.remove(at: index)
            candidates.append(candidate)
        }
        candidates += Self.machineSimplifications(of: program) + Self.simplifications(of: program)
        for candidate in candidates {
            let text = ProgramText.encode(candidate)
            guard (try? ProgramText.parse(text)) == candidate else { continue }
            if session.failure(candidate, text: text)?.signature == signature { return false }
        }
        return true
    }

    /// One shrink's budget and run count, and the verdicts it has seen, keyed by program text: a
    /// candidate met twice (the 1-minimality check meets most of them again) runs once; for the trap
    /// oracle each run is a process.
    private struct Session {
        var oracle: any FailureOracle
        let maxRuns: Int
        let deadline: ContinuousClock.Instant?
        var runs = 0
        var verdicts: [String: ShrinkFailure?] = [:]

        var hasBudget: Bool { runs < maxRuns && deadline.map { ContinuousClock.now < $0 } ?? true }

        /// `text`: the program's encoding, when the caller has it already.
        mutating func failure(_ program: Program, text: String? = nil) -> ShrinkFailure? {
            let text = text ?? ProgramText.encode(program)
            if let known = verdicts[text] { return known }
            runs += 1
            let failure = oracle.failure(of: program)
            verdicts[text] = failure
            return failure
        }
    }
}
