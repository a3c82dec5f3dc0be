import LockstepPrograms
import MemoryManager

/// How a candidate program fails: its signature and the step that failed (nil when the failure has no
/// step, e.g. a process that died).
public struct ShrinkFailure: Sendable, Equatable {
    public let signature: String
    public let step: Int?

    public init(signature: String, step: Int?) {
        self.signature = signature
        self.step = step
    }
}

/// The shrinker's only view of the system under test: runs a candidate and says how it fails, or nil
/// if it passes. The in-process lockstep runner is one; a child process that reports a trap is another.
public protocol FailureOracle {
    mutating func failure(of program: Program) -> ShrinkFailure?
}

/// Runs candidates in this process, in lockstep against the reference model.
public struct LockstepFailureOracle: FailureOracle {
    public let runner: LockstepRunner
    /// Called on every fresh engine before a candidate runs (the campaign's, e.g. a test's mutation).
    public var prepareKernel: (@Sendable (Kernel) -> Void)?
    /// Prefix `misuse:` to the signature of a free- or checked-build failure that Driver Verifier stops
    /// (`Campaign.verifierStop`), as campaigns do: shrinking a misuse finding then keeps it misuse (a
    /// simpler machine line must not turn it into a failure Verifier lets through), and shrinking an
    /// engine finding never slips into misuse.
    public var labelsMisuse: Bool

    public init(runner: LockstepRunner = LockstepRunner(), prepareKernel: (@Sendable (Kernel) -> Void)? = nil, labelsMisuse: Bool = false) {
        self.runner = runner
        self.prepareKernel = prepareKernel
        self.labelsMisuse = labelsMisuse
    }

    public func failure(of program: Program) -> ShrinkFailure? {
        guard let kernel = try? LockstepRunner.makeKernel(for: program) else { return nil }
        prepareKernel?(kernel)
        guard let report = try? runner.run(program, oracle: ReferenceOracle.make(for: program), kernel: kernel) else { return nil }
        switch report.verdict {
        case .pass: return nil
        case .divergence(let step, _, _, _, _), .bugcheck(let step, _, _, _), .invariant(let step, _, _), .state(let step, _, _):
            let misuse = labelsMisuse && Campaign.verifierStop(program, before: report.verdict, runner: runner) != nil
            return ShrinkFailure(signature: (misuse ? "misuse:" : "") + report.verdict.signature, step: step)
        }
    }
}

/// Runs candidates through a closure: how programs another harness runs (driver-under-test mode) shrink.
public struct ClosureFailureOracle: FailureOracle {
    public let judge: @Sendable (Program) -> (signature: String, step: Int)?

    public init(_ judge: @escaping @Sendable (Program) -> (signature: String, step: Int)?) { self.judge = judge }

    public func failure(of program: Program) -> ShrinkFailure? {
        judge(program).map { ShrinkFailure(signature: $0.signature, step: $0.step) }
    }
}

extension Shrinker {
    /// A shrinker whose candidates `judge` runs: it says how a candidate fails (signature, 1-based
    /// failing step), or nil when it passes.
    public init(maxRuns: Int = 2000, judge: @escaping @Sendable (Program) -> (signature: String, step: Int)?) {
        self.init(maxRuns: maxRuns, oracle: ClosureFailureOracle(judge))
    }
}
