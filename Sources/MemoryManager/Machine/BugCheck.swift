/// A bug check: the code and the four parameters `KeBugCheckEx` would show. It ends the machine.
public struct BugCheck: Hashable, Sendable, CustomStringConvertible {
    /// The bug check code (`KeBugCheckEx`'s first argument).
    public let code: UInt32
    /// The four parameters, in order.
    public let parameters: (UInt64, UInt64, UInt64, UInt64)

    public init(_ code: UInt32, _ p1: UInt64 = 0, _ p2: UInt64 = 0, _ p3: UInt64 = 0, _ p4: UInt64 = 0) {
        self.code = code
        self.parameters = (p1, p2, p3, p4)
    }

    public static func == (a: BugCheck, b: BugCheck) -> Bool {
        a.code == b.code && a.parameters == b.parameters
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(parameters.0); hasher.combine(parameters.1)
        hasher.combine(parameters.2); hasher.combine(parameters.3)
    }

    /// The parameters as an array, for printing and comparison.
    public var parameterList: [UInt64] { [parameters.0, parameters.1, parameters.2, parameters.3] }

    /// The bug check's symbolic name, for the codes the engine raises.
    public var name: String { Self.names[code] ?? "BUGCHECK" }

    public var description: String {
        let hex = { (v: UInt64) in "0x" + String(v, radix: 16, uppercase: true) }
        return "\(name) (0x\(String(code, radix: 16, uppercase: true)); \(parameterList.map(hex).joined(separator: ", ")))"
    }

    // MARK: Codes (spec §4.2, §4.3)
    public static let irqlNotGreaterOrEqual: UInt32 = 0x09
    public static let irqlNotLessOrEqual: UInt32 = 0x0A
    public static let kmodeExceptionNotHandled: UInt32 = 0x1E
    public static let memoryManagement: UInt32 = 0x1A
    public static let noMoreSystemPtes: UInt32 = 0x3F
    public static let targetMdlTooSmall: UInt32 = 0x40
    public static let pfnListCorrupt: UInt32 = 0x4E
    public static let pageFaultInNonpagedArea: UInt32 = 0x50
    public static let processHasLockedPages: UInt32 = 0x76
    public static let kernelDataInpageError: UInt32 = 0x7A
    public static let badPoolCaller: UInt32 = 0xC2
    public static let driverVerifierDetectedViolation: UInt32 = 0xC4
    public static let driverLeftLockedPagesInProcess: UInt32 = 0xCB
    public static let driverIrqlNotLessOrEqual: UInt32 = 0xD1
    public static let driverPageFaultInFreedSpecialPool: UInt32 = 0xD5
    public static let driverPageFaultBeyondEndOfAllocation: UInt32 = 0xD6
    public static let invalidMdlRange: UInt32 = 0x12E
    public static let systemPteMisuse: UInt32 = 0xDA

    static let names: [UInt32: String] = [
        0x09: "IRQL_NOT_GREATER_OR_EQUAL", 0x0A: "IRQL_NOT_LESS_OR_EQUAL", 0x1A: "MEMORY_MANAGEMENT",
        0x1E: "KMODE_EXCEPTION_NOT_HANDLED", 0x3F: "NO_MORE_SYSTEM_PTES", 0x40: "TARGET_MDL_TOO_SMALL",
        0x4E: "PFN_LIST_CORRUPT", 0x50: "PAGE_FAULT_IN_NONPAGED_AREA", 0x76: "PROCESS_HAS_LOCKED_PAGES",
        0x7A: "KERNEL_DATA_INPAGE_ERROR", 0xC2: "BAD_POOL_CALLER", 0xC4: "DRIVER_VERIFIER_DETECTED_VIOLATION",
        0xCB: "DRIVER_LEFT_LOCKED_PAGES_IN_PROCESS", 0xD1: "DRIVER_IRQL_NOT_LESS_OR_EQUAL",
        0xD5: "DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL", 0xD6: "DRIVER_PAGE_FAULT_BEYOND_END_OF_ALLOCATION",
        0x12E: "INVALID_MDL_RANGE", 0xE2: "MANUALLY_INITIATED_CRASH", 0xDA: "SYSTEM_PTE_MISUSE",
    ]

    /// Driver Verifier's 0xC4 with the given parameter-1 code (spec §4.2).
    static func verifier(_ subcode: UInt64, _ p2: UInt64, _ p3: UInt64, _ p4: UInt64) -> BugCheck {
        BugCheck(driverVerifierDetectedViolation, subcode, p2, p3, p4)
    }
}

/// How a call into the engine failed. NULL/FALSE returns are not errors: they are return values.
public enum KernelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The routine raised an exception with this status (callers of MmProbeAndLockPages wrap it in try/except).
    case raised(NTStatus)
    /// The routine bug-checked. The machine is halted from now on.
    case bugCheck(BugCheck)
    /// The call was refused because an earlier call bug-checked the machine.
    case machineHalted(BugCheck)

    public var description: String {
        switch self {
        case .raised(let status): "raised \(status)"
        case .bugCheck(let check): "bug check \(check)"
        case .machineHalted(let check): "machine halted by an earlier bug check: \(check)"
        }
    }
}

/// Identifies one ASSERT of a checked build. In `checked` mode a failed ASSERT with no debugger attached
/// raises a breakpoint exception nobody handles: KMODE_EXCEPTION_NOT_HANDLED (0x1E) with
/// P1 = STATUS_BREAKPOINT, P2 = this site's number, P3 = the MDL or address involved, P4 = its flags or
/// length. [inferred: the spec says only "ASSERT → bug check"; the site number replaces the faulting IP.]
public enum AssertionSite: UInt64, Sendable, CaseIterable {
    case irqlAtMostDispatch = 1
    case irqlAtMostApc = 2
    case probeByteCountNonZero = 10
    case probeFlagsClear = 11
    case probeHeaderWellFormed = 12
    case unlockPagesLocked = 20
    case unlockNotNonpagedOrPartial = 21
    case mapByteCountNonZero = 30
    case mapNotAlreadyMapped = 31
    case mapLockedOrPartial = 32
    case unmapMappedToSystemVa = 40
    case unmapParentMapped = 41
    case prepareForReusePartial = 50
    case prepareForReuseNotMapped = 51
    case buildNonPagedByteCountNonZero = 60
    case buildNonPagedFlagsClear = 61
    /// NT 6.2 and later checked builds: every page of the buffer must be resident.
    case buildNonPagedResident = 62
    case mapIoSpaceBytesNonZero = 70
    case unmapIoSpaceInPteRange = 71
    case ioAllocateMdlLengthNonZero = 80
    case freeMdlNotMapped = 81
}

extension BugCheck {
    /// The simulation's convention for a call that would hang the real kernel forever (walking a cyclic
    /// IRP MDL chain; IoFreeMdl of a fixed-size MDL already on the lookaside list):
    /// MANUALLY_INITIATED_CRASH, as if the tester broke in.
    public static let hangConvention: UInt32 = 0xE2
}
