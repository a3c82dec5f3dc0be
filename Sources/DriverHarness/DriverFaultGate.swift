import Lockstep
import LockstepPrograms
import MemoryManager

/// The engine's fault decider during a driver run. Only decisions taken while the driver's own code
/// runs count (like Driver Verifier, which fails only calls the verified driver makes): a program's fault
/// line `fault pool.nonpaged nth=3` fails the driver's third nonpaged-pool allocation, whatever the I/O
/// manager and the program's environment calls allocate in between. `after`, `page` and `status` mean
/// what they mean for engine programs (docs/PROGRAM_FORMAT.md).
final class DriverFaultGate {
    /// True while driver code runs.
    var inDriver = false
    /// Decisions the driver took so far, per kind (indexed like `ResourceKind.allCases`).
    private(set) var counts = [UInt64](repeating: 0, count: ResourceKind.allCases.count)
    /// The names bound so far, for `page=` expressions.
    var bindings: [String: UInt64] = [:]
    private let plan: FaultPlan
    private let pageMask: UInt64
    private let pointerMask: UInt64

    init(rules: [FaultPlan.Rule], constants: PlatformConstants) {
        plan = FaultPlan(rules: rules)
        pageMask = ~(constants.pageSize - 1) & constants.pointerMask
        pointerMask = constants.pointerMask
    }

    /// Whether any rule needs the bindings (a `page=` expression).
    var needsBindings: Bool { plan.rules.contains { $0.page != nil } }

    func decide(_ site: FaultSite) -> FaultDecision {
        guard inDriver else { return .proceed }
        let index = ResourceKind.allCases.firstIndex(of: site.kind)!
        counts[index] += 1
        // The driver's own ordinal, not the engine's: only decisions the driver's code takes count.
        let status = plan.failure(FaultKind(site.kind), ordinal: counts[index], address: site.address, pageMask: pageMask) {
            $0.value(in: self.bindings, mask: self.pointerMask)
        }
        return status.map { .fail(NTStatus(rawValue: $0)) } ?? .proceed
    }

    /// Decisions per kind, in kind order, kinds with none left out.
    var decisions: [(kind: ResourceKind, count: UInt64)] {
        ResourceKind.allCases.enumerated().compactMap { index, kind in counts[index] > 0 ? (kind, counts[index]) : nil }
    }
}
