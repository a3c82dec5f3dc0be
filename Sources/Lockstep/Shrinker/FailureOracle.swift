import LockstepPrograms
import MemoryManager

/// How a candidate program fails: its signature and the step that failed (nil when the failure has no
/// step, e.g. a process that died).
public struct ShrinkFailure: Sendable, Equatable {
    /// The failure's signature; a candidate must keep it.
    public let signature: FailureSignature
    /// The 1-based step that failed (nil: no step, e.g. the process died).
    public let step: Int?

    /// A failure from its signature and step.
    public init(signature: FailureSignature, step: Int?) {
        self.signature = signature
        self.step = step
    }
}

/// The shrinker's only view of the system under test: runs a candidate and says how it fails, or nil
/// if it passes. The in-process lockstep runner is one; a child process that reports a trap is another.
public protocol FailureOracle {
    /// Runs `program`: how it fails (signature, failing step), or nil when it passes.
    mutating func failure(of program: Program) -> ShrinkFailure?
}

/// Runs candidates in this process, in lockstep against the reference model (`Execution`).
public struct LockstepFailureOracle: FailureOracle {
    /// How candidates run (its `prepareKernel` switches on deliberate slips).
    public let execution: Execution
    /// Label a free- or checked-build failure that Driver Verifier stops `misuse` (`Execution.signature`),
    /// as campaigns do: shrinking a misuse finding then keeps it misuse (a simpler machine line must not
    /// turn it into a failure Verifier lets through), and shrinking an engine finding never slips into
    /// misuse.
    public var labelsMisuse: Bool

    /// Runs candidates with `execution`; `labelsMisuse` off by default.
    public init(_ execution: Execution = Execution(), labelsMisuse: Bool = false) {
        self.execution = execution
        self.labelsMisuse = labelsMisuse
    }

    /// A candidate that passes or cannot be set up does not fail (`Execution`'s set-up-error policy:
    /// `unrunnable` is never the signature being shrunk).
    public func failure(of program: Program) -> ShrinkFailure? {
        let report = execution.run(program)
        guard let step = report.verdict.step else { return nil }
        return ShrinkFailure(signature: labelsMisuse ? execution.signature(of: program, report) : report.verdict.signature, step: step)
    }
}

/// Runs candidates through a closure: how programs another harness runs (driver-under-test mode) shrink.
public struct ClosureFailureOracle: FailureOracle {
    /// Runs a candidate: its signature and 1-based failing step, or nil when it passes.
    public let judge: @Sendable (Program) -> (signature: FailureSignature, step: Int)?

    /// Judges candidates with `judge`.
    public init(_ judge: @escaping @Sendable (Program) -> (signature: FailureSignature, step: Int)?) { self.judge = judge }

    /// Runs `judge`; nil when the candidate passes.
    public func failure(of program: Program) -> ShrinkFailure? {
        judge(program).map { ShrinkFailure(signature: $0.signature, step: $0.step) }
    }
}

extension Shrinker {
    /// A shrinker whose candidates `judge` runs: it says how a candidate fails (signature, 1-based
    /// failing step), or nil when it passes.
    public init(maxRuns: Int = Limits.shrinkRuns, judge: @escaping @Sendable (Program) -> (signature: FailureSignature, step: Int)?) {
        self.init(maxRuns: maxRuns, oracle: ClosureFailureOracle(judge))
    }
}
