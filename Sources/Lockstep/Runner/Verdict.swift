import LockstepPrograms
import MemoryManager

/// The result of running one program in lockstep.
public enum Verdict: Hashable, Sendable, CustomStringConvertible {
    /// Every step matched the oracle and every invariant held.
    case pass
    /// The engine and the oracle disagree about a call's outcome.
    case divergence(step: Int, call: Call, engine: Outcome, expected: Prediction, reason: String)
    /// An invariant failed after a step.
    case invariant(step: Int, call: Call?, violation: InvariantViolation)
    /// The program bug-checked where the oracle predicted something else.
    case bugcheck(step: Int, call: Call, engine: Outcome, expected: Prediction)
    /// After a step, something a driver can observe (an MDL header field, a PTE attribute, a charge, a
    /// chain) differs between the engine and the oracle, though the call's outcome matched.
    case state(step: Int, call: Call, difference: StateDifference)
    /// The program could not be set up (see `Execution`'s set-up-error policy): no step ran.
    case unrunnable(reason: String)

    /// True for `.pass`.
    public var isPass: Bool { self == .pass }

    /// The 1-based step that failed (0 for an invariant broken before any call); nil for a pass or an
    /// unrunnable program.
    public var step: Int? {
        switch self {
        case .pass, .unrunnable: return nil
        case .divergence(let step, _, _, _, _), .invariant(let step, _, _), .bugcheck(let step, _, _, _), .state(let step, _, _): return step
        }
    }

    /// A stable signature for deduplication: kind, routine, and the outcome classes or invariant, with
    /// no addresses, so the same bug found twice gets the same signature.
    public var signature: FailureSignature {
        switch self {
        case .pass: return .pass
        case .unrunnable: return .unrunnable
        case .divergence(_, let call, let engine, let expected, _):
            return FailureSignature(.divergence(routine: call.routine.name, engine: Self.outcomeClass(engine), expected: Self.expectationClass(expected)))
        case .invariant(_, let call, let violation):
            return FailureSignature(.invariant(violation.invariant.rawValue, routine: call?.routine.name))
        case .bugcheck(_, let call, let engine, let expected):
            return FailureSignature(.bugcheck(routine: call.routine.name, engine: Self.outcomeClass(engine), expected: Self.expectationClass(expected)))
        case .state(_, let call, let difference):
            return FailureSignature(.state(routine: call.routine.name, field: difference.field))
        }
    }

    /// A human-readable account: the failing step, its call, engine and expected outcomes, why.
    public var description: String {
        switch self {
        case .pass: return "pass"
        case .divergence(let step, let call, let engine, let expected, let reason):
            return "divergence at step \(step): \(ProgramText.encode(call))\n  engine:   \(engine)\n  expected: \(expected)\n  why:      \(reason)"
        case .invariant(let step, let call, let violation):
            return "invariant violated after step \(step)\(call.map { ": " + ProgramText.encode($0) } ?? ""): \(violation)"
        case .bugcheck(let step, let call, let engine, let expected):
            return "unexpected bug check at step \(step): \(ProgramText.encode(call))\n  engine:   \(engine)\n  expected: \(expected)"
        case .state(let step, let call, let difference):
            return "state differs after step \(step): \(ProgramText.encode(call))\n  \(difference.object), \(difference.field): engine \(difference.engine), model \(difference.oracle)"
        case .unrunnable(let reason):
            return "unrunnable: \(reason)"
        }
    }

    static func outcomeClass(_ outcome: Outcome) -> String {
        switch outcome {
        case .returned(.none): "returned"
        case .returned(.number(0)): "null"
        case .returned(.boolean(let b)): b ? "true" : "false"
        case .returned: "value"
        case .raised(let status): "raised-\(hex(status))"
        case .bugCheck(let code, let parameters):
            code == 0xC4 || code == 0x1A || code == 0x4E || code == 0x76 ? "bugcheck-\(hex(code))-\(hex(parameters.first ?? 0))" : "bugcheck-\(hex(code))"
        case .refused: "refused"
        }
    }

    static func expectationClass(_ expectation: Prediction) -> String {
        switch expectation {
        case .returns(.none): "returned"
        case .returns(.null): "null"
        case .returns(.boolean(let b)): b ? "true" : "false"
        case .returns: "value"
        case .raises(let status): "raised-\(hex(status))"
        case .bugChecks(let code, let parameters):
            if code == 0xC4 || code == 0x1A || code == 0x4E || code == 0x76, case .exactly(let p1) = parameters.first {
                "bugcheck-\(hex(code))-\(hex(p1))"
            } else {
                "bugcheck-\(hex(code))"
            }
        case .refused: "refused"
        case .unpredictable: "unpredictable"
        case .oneOf(let options): options.map(expectationClass).joined(separator: "|")
        }
    }
}

/// One executed step of a run, for traces.
public struct Step: Sendable {
    /// 1-based position in the program.
    public let index: Int
    /// The call as the program wrote it.
    public let call: Call
    /// What the engine did.
    public let outcome: Outcome
    /// What the oracle predicted.
    public let expectation: Prediction
}

/// A whole run: every step executed and the verdict.
public struct RunReport: Sendable {
    /// The steps executed, in order (a run stops at its first failure, or after a call that bug-checks).
    public let steps: [Step]
    /// Resource decisions the run passed; recorded when the runner's `recordFaultSites` is on.
    public var faultSites: [FaultSiteVisit] = []
    /// The run's verdict.
    public let verdict: Verdict
    /// Observable-state fields the oracle said it could not know, over the run (each time one was
    /// due for comparison): what the state comparison could not vouch for.
    public var unknownObservations = 0

    /// A report from its parts (`unknownObservations` starts at 0).
    public init(steps: [Step], faultSites: [FaultSiteVisit] = [], verdict: Verdict) {
        self.steps = steps
        self.faultSites = faultSites
        self.verdict = verdict
    }
}

/// One resource decision a run passed: printed `kind@routine#nth` (`!` marks one the plan failed).
public struct FaultSiteVisit: Sendable, Hashable, CustomStringConvertible {
    /// What was allocated or read.
    public let kind: ResourceKind
    /// The NT routine (or environment action) that made the decision.
    public let routine: String
    /// 1-based count of decisions of this kind so far (the `nth` of a fault line).
    public let ordinal: UInt64
    /// True when the fault plan failed this decision.
    public let failed: Bool

    /// `kind@routine#nth`, with `!` when it was failed.
    public var description: String { "\(kind.rawValue)@\(routine)#\(ordinal)\(failed ? "!" : "")" }
}

/// Collects fault sites while a program runs.
final class FaultSiteLog: @unchecked Sendable {
    private(set) var entries: [FaultSiteVisit] = []

    func record(_ site: FaultSite, failed: Bool) {
        entries.append(FaultSiteVisit(kind: site.kind, routine: site.routine, ordinal: site.ordinal, failed: failed))
    }
}
