import LockstepPrograms
import MemoryManager

/// A program's fault plan: which resource decisions fail. Lines read
///
///     fault pool.nonpaged nth=3                  # fail the 3rd nonpaged-pool allocation
///     fault ptes after=1                         # fail every system-PTE reservation after the 1st
///     fault pagein page=b0+0x1000 status=STATUS_DEVICE_DATA_ERROR
///     fault frame                                # fail every frame allocation
///
/// Kinds are ``ResourceKind`` raw values. `nth` and `after` count decisions of that kind from the first
/// call; `page` (frame and pagein only) limits the rule to faults on that page; `status` is the I/O
/// status a failed page-in completes with.
package struct FaultPlan: Sendable {
    package struct Rule: Sendable, Equatable {
        package let kind: ResourceKind
        package let nth: UInt64?
        package let after: UInt64?
        package let page: Expression?
        package let status: NTStatus
    }

    package let rules: [Rule]

    /// Why a fault line does not make a rule.
    package struct PlanError: Error, CustomStringConvertible {
        package let description: String
    }

    package init(_ lines: [FaultLine]) throws(PlanError) {
        var rules: [Rule] = []
        for line in lines {
            guard let kind = ResourceKind(rawValue: line.kind) else {
                throw PlanError(description: "unknown fault kind '\(excerpt(line.kind))'; use " + ResourceKind.allCases.map(\.rawValue).joined(separator: ", "))
            }
            var nth: UInt64?, after: UInt64?, page: Expression?, status = NTStatus.deviceDataError
            for setting in line.settings {
                switch setting.key {
                case "nth":
                    guard let n = Self.number(setting.value), n > 0 else { throw PlanError(description: "nth takes a number from 1, e.g. nth=3") }
                    nth = n
                case "after":
                    guard let n = Self.number(setting.value) else { throw PlanError(description: "after takes a number, e.g. after=2") }
                    after = n
                case "page":
                    guard kind == .pageIn || kind == .frame, let expression = Expression(parsing: setting.value) else {
                        throw PlanError(description: "page= takes an address such as b0+0x1000, for frame and pagein faults")
                    }
                    page = expression
                case "status":
                    guard let named = NTStatus(name: setting.value) ?? Self.number(setting.value).map({ NTStatus(rawValue: UInt32(truncatingIfNeeded: $0)) }) else {
                        throw PlanError(description: "unknown status '\(excerpt(setting.value))', e.g. status=STATUS_DEVICE_DATA_ERROR")
                    }
                    status = named
                default:
                    throw PlanError(description: "unknown fault key '\(excerpt(setting.key))'; keys: nth after page status")
                }
            }
            rules.append(Rule(kind: kind, nth: nth, after: after, page: page, status: status))
        }
        self.rules = rules
    }

    /// The engine's fault decider for this plan; `evaluate` gives an expression's value now.
    func decider(pageMask: UInt64, evaluate: @escaping @Sendable (Expression) -> UInt64) -> (FaultSite) -> FaultDecision {
        let rules = self.rules
        return { site in
            for rule in rules where rule.kind == site.kind {
                if let nth = rule.nth, site.ordinal != nth { continue }
                if let after = rule.after, site.ordinal <= after { continue }
                if let page = rule.page, evaluate(page) & pageMask != site.address & pageMask { continue }
                return .fail(rule.status)
            }
            return .proceed
        }
    }

    static func number(_ text: String) -> UInt64? {
        text.hasPrefix("0x") ? UInt64(text.dropFirst(2), radix: 16) : UInt64(text)
    }

}

/// The names bound so far, readable by the fault decider while a call runs.
final class BindingsBox: @unchecked Sendable {
    var values: [String: UInt64] = [:]
    let mask: UInt64
    init(mask: UInt64) { self.mask = mask }

    func evaluate(_ expression: Expression) -> UInt64 { expression.value(in: values, mask: mask) }
}
