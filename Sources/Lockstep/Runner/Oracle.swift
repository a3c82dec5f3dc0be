import LockstepPrograms

/// Anything that predicts call outcomes in lockstep with the engine: the reference model, or a test
/// double. The runner asks for an expectation, runs the engine, then reports what it observed.
public protocol Oracle: AnyObject {
    /// Predicts the outcome of the next call.
    func expect(_ call: Call) -> Prediction
    /// Tells the oracle what the engine did, so it can settle any choice it left open.
    func apply(_ call: Call, observed: Outcome)
    /// As `apply(_:observed:)`, with `memory` reading what a driver would read right after the call
    /// (`count` bytes at a virtual address, without faulting; nil if unreadable): for a value the spec
    /// leaves to the machine and a driver reads to go on (how many pages MmAllocatePagesForMdl granted).
    func apply(_ call: Call, observed: Outcome, memory: @escaping (UInt64, Int) -> [UInt8]?)
    /// The oracle's view of what a result name refers to, for divergence reports (nil: nothing to say).
    func describe(_ name: String) -> String?
    /// What a driver could observe of the machine after the last call, as the oracle's own records
    /// say (nil: the oracle does not follow the state, or has stopped following this program).
    func observableState(_ scope: ObservationScope) -> ObservableState?
    /// A new oracle of the same kind at the program's start (to re-run a program step by step).
    func restarted(for program: Program) -> Oracle?
}

extension Oracle {
    /// Default: ignores `memory` and calls `apply(_:observed:)`.
    public func apply(_ call: Call, observed: Outcome, memory: @escaping (UInt64, Int) -> [UInt8]?) { apply(call, observed: observed) }
    /// Default: nothing to say.
    public func describe(_ name: String) -> String? { nil }
    /// Default: nil (the oracle does not follow the state).
    public func observableState(_ scope: ObservationScope) -> ObservableState? { nil }
    /// Default: nil (the oracle cannot be restarted).
    public func restarted(for program: Program) -> Oracle? { nil }
}

/// An oracle that predicts nothing: a run checks only the engine's invariants. For measuring the cost of
/// the invariants alone, and for programs the reference model cannot follow yet.
public final class InvariantsOnlyOracle: Oracle {
    /// An oracle that predicts nothing.
    public init() {}
    /// Always `.unpredictable`: no outcome is compared.
    public func expect(_ call: Call) -> Prediction { .unpredictable(reason: "invariants only") }
    /// Ignores what the engine did.
    public func apply(_ call: Call, observed: Outcome) {}
}
