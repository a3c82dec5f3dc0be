import LockstepPrograms
import MemoryManager

/// The engine's side of a program's fault plan (``FaultPlan``, which the vocabulary parses and matches
/// for the runner, the driver harness and the reference model alike): the engine's decision points
/// named in the vocabulary, and the plan as the engine's fault decider.
extension FaultPlan {
    /// The engine's fault decider for this plan; `evaluate` gives an expression's value now.
    func decider(pageMask: UInt64, evaluate: @escaping @Sendable (Expression) -> UInt64) -> (FaultSite) -> FaultDecision {
        let plan = self
        return { site in
            guard let status = plan.failure(FaultKind(site.kind), ordinal: site.ordinal, address: site.address, pageMask: pageMask,
                                            evaluate: evaluate) else { return .proceed }
            return .fail(NTStatus(rawValue: status))
        }
    }
}

extension FaultKind {
    /// The fault line's name for an engine decision point (the two enumerations spell them alike).
    package init(_ kind: ResourceKind) {
        switch kind {
        case .nonpagedPool: self = .nonpagedPool
        case .pagedPool: self = .pagedPool
        case .systemPtes: self = .systemPtes
        case .frame: self = .frame
        case .pageIn: self = .pageIn
        }
    }
}

/// The names bound so far, readable by the fault decider while a call runs.
final class BindingsBox: @unchecked Sendable {
    var values: [String: UInt64] = [:]
    let mask: UInt64
    init(mask: UInt64) { self.mask = mask }

    func evaluate(_ expression: Expression) -> UInt64 { expression.value(in: values, mask: mask) }
}
