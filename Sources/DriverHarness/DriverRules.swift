import Foundation
import Lockstep
import MemoryManager

/// The rules the harness checks: Driver Verifier's MDL, locked-page, mapping and IRQL rules (spec §4)
/// plus what only a harness that knows the requests can check (leaks at unload, unhandled raises,
/// data integrity). Each names the bug check Windows would show (``windowsBugCheck``).
public enum DriverRule: String, Sendable, CaseIterable {
    case leakedLockedPages = "leaked-locked-pages"
    case leakedSystemMapping = "leaked-system-mapping"
    case leakedIoSpaceMapping = "leaked-io-space-mapping"
    case leakedMdl = "leaked-mdl"
    case leakedPool = "leaked-pool"
    case unlockNotLocked = "unlock-not-locked"
    case doubleFree = "double-free"
    case useAfterFree = "use-after-free"
    case useAfterUnmap = "use-after-unmap"
    case freeMappedMdl = "free-mapped-mdl"
    case nullMdl = "null-mdl"
    case uncheckedNullMapping = "unchecked-null-mapping"
    case mappingFailureBugChecks = "mapping-failure-bug-checks"
    case unhandledException = "unhandled-exception"
    case irql = "irql"
    case pageFaultAtRaisedIrql = "page-fault-at-raised-irql"
    case irqlNotRestored = "irql-not-restored"
    case requestNeverCompleted = "request-never-completed"
    case informationExceedsLength = "information-exceeds-length"
    case readDataMismatch = "read-data-mismatch"
    case writeDataMismatch = "write-data-mismatch"
    case mdlMisuse = "mdl-misuse"
    case otherBugCheck = "bug-check"

    /// What the rule requires, in one line.
    public var summary: String {
        switch self {
        case .leakedLockedPages: "pages a driver locked are unlocked before unload and before the process ends"
        case .leakedSystemMapping: "MDL system mappings are released before unload"
        case .leakedIoSpaceMapping: "MmMapIoSpace mappings are unmapped before unload"
        case .leakedMdl: "every MDL the driver allocated is freed before unload"
        case .leakedPool: "every pool block the driver allocated is freed before unload"
        case .unlockNotLocked: "MmUnlockPages only on pages that are locked (no double unlock)"
        case .doubleFree: "an MDL or pool block is freed once"
        case .useAfterFree: "no use (or second free) of an MDL or pool block after it is freed"
        case .useAfterUnmap: "no access through a system address after it is unmapped"
        case .freeMappedMdl: "IoFreeMdl only after the MDL's mapping is released (unmap or unlock first)"
        case .nullMdl: "no MDL routine on a NULL MDL (an unchecked allocation, or Irp->MdlAddress of an empty transfer)"
        case .uncheckedNullMapping: "the result of MmGetSystemAddressForMdlSafe (or any mapping that can fail) is checked for NULL"
        case .mappingFailureBugChecks: "no MmGetSystemAddressForMdl / MmMapLockedPages where the mapping can fail; use the Safe variant"
        case .unhandledException: "MmProbeAndLockPages (and user-buffer access) inside an exception handler"
        case .irql: "each routine at the IRQL it allows"
        case .pageFaultAtRaisedIrql: "no pageable or user memory touched at DISPATCH_LEVEL or above"
        case .irqlNotRestored: "dispatch routines return at PASSIVE_LEVEL and DPCs at DISPATCH_LEVEL"
        case .requestNeverCompleted: "every request completes once it is cancelled and its device is done"
        case .informationExceedsLength: "a completed request never reports more bytes than its buffer holds"
        case .readDataMismatch: "what a completed read reports is what the user buffer holds"
        case .writeDataMismatch: "what a completed write reports is what reached the device"
        case .mdlMisuse: "MDL routines on MDLs in the state they require"
        case .otherBugCheck: "no bug check"
        }
    }

    /// The bug check code Windows would raise for the rule (nil: Windows corrupts data silently).
    public var windowsCode: UInt32? {
        switch self {
        case .leakedLockedPages: 0xCB
        case .leakedSystemMapping, .leakedIoSpaceMapping, .leakedMdl, .leakedPool: 0xC4
        case .unlockNotLocked, .freeMappedMdl, .mdlMisuse: 0xC4
        case .doubleFree: 0xC2
        case .useAfterFree: 0xD5
        case .useAfterUnmap: 0x50
        case .nullMdl, .unhandledException: 0x1E
        case .uncheckedNullMapping, .pageFaultAtRaisedIrql: 0xD1
        case .mappingFailureBugChecks: 0x3F
        case .irql: 0xC4
        case .irqlNotRestored: 0xC8
        case .requestNeverCompleted: 0xCE
        case .informationExceedsLength, .readDataMismatch, .writeDataMismatch: nil
        case .otherBugCheck: nil
        }
    }

    /// The rule an engine bug check reports, read from its code and first parameter.
    public static func classify(_ check: BugCheck) -> DriverRule {
        let p1 = check.parameters.0
        switch check.code {
        case BugCheck.driverVerifierDetectedViolation:
            switch p1 {
            case 0x7C: return .unlockNotLocked
            case 0xB8: return .freeMappedMdl
            case 0x81, 0x82: return .mappingFailureBugChecks
            case 0x01, 0x02, 0x11, 0x12, 0x70...0x7B, 0x7E: return .irql
            case 0x62: return .leakedPool
            default: return .mdlMisuse
            }
        case BugCheck.processHasLockedPages: return p1 == 1 ? .unlockNotLocked : .leakedLockedPages
        case BugCheck.pfnListCorrupt: return p1 == 7 ? .unlockNotLocked : .mdlMisuse
        case BugCheck.driverLeftLockedPagesInProcess: return .leakedLockedPages
        case BugCheck.badPoolCaller: return .doubleFree
        case BugCheck.driverPageFaultInFreedSpecialPool, BugCheck.driverPageFaultBeyondEndOfAllocation: return .useAfterFree
        case BugCheck.pageFaultInNonpagedArea: return .useAfterUnmap
        case BugCheck.noMoreSystemPtes: return .mappingFailureBugChecks
        case BugCheck.irqlNotGreaterOrEqual, BugCheck.irqlNotLessOrEqual: return .irql
        case BugCheck.driverIrqlNotLessOrEqual: return .pageFaultAtRaisedIrql
        case BugCheck.kmodeExceptionNotHandled:
            // Kernel code reading address 0..page: a NULL MDL; a checked build's ASSERT is MDL misuse.
            return p1 == UInt64(NTStatus.accessViolation.rawValue) && check.parameters.3 < 0x1_0000 ? .nullMdl : .mdlMisuse
        case BugCheck.memoryManagement, BugCheck.targetMdlTooSmall, BugCheck.invalidMdlRange, BugCheck.systemPteMisuse: return .mdlMisuse
        default: return .otherBugCheck
        }
    }
}

/// Where in a run a finding arose.
public enum DriverPhase: String, Sendable {
    case driverEntry = "DriverEntry"
    case dispatch = "dispatch"
    case dpc = "DPC"
    case cancel = "cancel"
    /// The I/O manager's completion work (copy-back, unlocking and freeing what it built).
    case completion = "completion"
    case unload = "DriverUnload"
    /// A process ending (the harness ends every user process after the last call).
    case processEnd = "process-end"
    /// An environment call of the program itself.
    case program = "program"
}

/// A rule the driver broke: which, where, what Windows would have shown, and the details.
public struct DriverFinding: Sendable, Equatable, CustomStringConvertible {
    /// The registered name of the driver that broke it.
    public let driver: String
    /// The rule broken.
    public let rule: DriverRule
    /// The bug check Windows would raise (code and parameters), nil for silent data corruption.
    public let bugCheck: BugCheck?
    /// The 1-based program step; 0 for DriverEntry before the first call, `calls + 1` for the end of
    /// the program (draining, process end, unload).
    public let step: Int
    /// Where in the run.
    public let phase: DriverPhase
    /// The request involved, if any (`q2`).
    public let request: String?
    /// What happened, with the addresses involved.
    public let detail: String

    /// A finding (the harness makes them; tests and tools may too).
    public init(driver: String, rule: DriverRule, bugCheck: BugCheck?, step: Int, phase: DriverPhase, request: String?, detail: String) {
        self.driver = driver
        self.rule = rule
        self.bugCheck = bugCheck
        self.step = step
        self.phase = phase
        self.request = request
        self.detail = detail
    }

    /// Stable across runs and machines: the driver, the rule and the phase, no addresses
    /// (`driver:copy:leaked-mdl@DriverUnload`). Findings with the same signature are the same bug; the
    /// shrinker keeps it, and corpus tools find the driver to replay an entry against in it.
    public var signature: FailureSignature { FailureSignature(.driver(name: driver, rule: rule.rawValue, phase: phase.rawValue)) }

    /// The bug check as Windows would show it, or what happens instead.
    public var windowsText: String {
        guard let bugCheck else { return "no bug check (Windows corrupts data silently)" }
        let names: [UInt32: String] = [0xC8: "IRQL_UNEXPECTED_VALUE", 0xCE: "DRIVER_UNLOADED_WITHOUT_CANCELLING_PENDING_OPERATIONS"]
        guard let name = names[bugCheck.code] else { return bugCheck.description }
        return bugCheck.description.replacingOccurrences(of: "BUGCHECK", with: name)
    }

    /// Three lines: what and where, the rule, the Windows bug check.
    public var description: String {
        let code = windowsText
        let place = step == 0 ? "at load" : "at step \(step)"
        return "\(rule.rawValue) \(place), \(phase.rawValue)\(request.map { " of \($0)" } ?? ""): \(detail)\n"
            + "  rule: \(rule.summary)\n  Windows: \(code)"
    }
}
