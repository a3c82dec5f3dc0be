/// An NTSTATUS value. The engine raises these as exceptions (see ``KernelError/raised(_:)``).
public struct NTStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let success = NTStatus(rawValue: 0x0000_0000)
    public static let accessViolation = NTStatus(rawValue: 0xC000_0005)
    public static let inPageError = NTStatus(rawValue: 0xC000_0006)
    public static let invalidParameter = NTStatus(rawValue: 0xC000_000D)
    public static let noMemory = NTStatus(rawValue: 0xC000_0017)
    public static let conflictingAddresses = NTStatus(rawValue: 0xC000_0018)
    public static let insufficientResources = NTStatus(rawValue: 0xC000_009A)
    public static let deviceDataError = NTStatus(rawValue: 0xC000_009C)
    public static let workingSetQuota = NTStatus(rawValue: 0xC000_00A1)
    public static let invalidAddress = NTStatus(rawValue: 0xC000_0141)
    public static let processIsTerminating = NTStatus(rawValue: 0xC000_010A)
    public static let quotaExceeded = NTStatus(rawValue: 0xC000_0044)
    public static let breakpoint = NTStatus(rawValue: 0x8000_0003)

    private static let names: [UInt32: String] = [
        0x0000_0000: "STATUS_SUCCESS", 0xC000_0005: "STATUS_ACCESS_VIOLATION",
        0xC000_0006: "STATUS_IN_PAGE_ERROR", 0xC000_000D: "STATUS_INVALID_PARAMETER",
        0xC000_0017: "STATUS_NO_MEMORY", 0xC000_0018: "STATUS_CONFLICTING_ADDRESSES",
        0xC000_009A: "STATUS_INSUFFICIENT_RESOURCES", 0xC000_009C: "STATUS_DEVICE_DATA_ERROR",
        0xC000_00A1: "STATUS_WORKING_SET_QUOTA", 0xC000_0141: "STATUS_INVALID_ADDRESS",
        0xC000_010A: "STATUS_PROCESS_IS_TERMINATING", 0xC000_0044: "STATUS_QUOTA_EXCEEDED",
        0x8000_0003: "STATUS_BREAKPOINT",
    ]

    /// The symbolic name (`STATUS_ACCESS_VIOLATION`), or nil for a code the engine has no name for.
    public var name: String? { Self.names[rawValue] }

    /// Looks a status up by its symbolic name.
    public init?(name: String) {
        guard let entry = Self.names.first(where: { $0.value == name }) else { return nil }
        self.init(rawValue: entry.key)
    }

    public var description: String { name ?? "0x" + String(rawValue, radix: 16, uppercase: true) }
}

/// `KPROCESSOR_MODE`.
public enum ProcessorMode: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case kernelMode = 0
    case userMode = 1
    public var description: String { self == .kernelMode ? "KernelMode" : "UserMode" }
}

/// `LOCK_OPERATION`. IoWriteAccess and IoModifyAccess are equivalent.
public enum LockOperation: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    case ioReadAccess = 0
    case ioWriteAccess = 1
    case ioModifyAccess = 2
    public var description: String {
        switch self {
        case .ioReadAccess: "IoReadAccess"
        case .ioWriteAccess: "IoWriteAccess"
        case .ioModifyAccess: "IoModifyAccess"
        }
    }
}

/// `MEMORY_CACHING_TYPE` (raw values as in the headers; MmNonCached == FALSE, MmCached == TRUE).
public struct MemoryCachingType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let mmNonCached = MemoryCachingType(rawValue: 0)
    public static let mmCached = MemoryCachingType(rawValue: 1)
    public static let mmWriteCombined = MemoryCachingType(rawValue: 2)
    public static let mmHardwareCoherentCached = MemoryCachingType(rawValue: 3)
    public static let mmNonCachedUnordered = MemoryCachingType(rawValue: 4)
    public static let mmUSWCCached = MemoryCachingType(rawValue: 5)
    /// `MmMaximumCacheType`: every value at or above it is invalid.
    public static let mmMaximumCacheType = MemoryCachingType(rawValue: 6)
    static let names = ["MmNonCached", "MmCached", "MmWriteCombined", "MmHardwareCoherentCached",
                        "MmNonCachedUnordered", "MmUSWCCached"]
    public var isValid: Bool { rawValue < 6 }
    public var description: String { isValid ? Self.names[Int(rawValue)] : "\(rawValue)" }
    public init?(name: String) {
        guard let index = Self.names.firstIndex(of: name) else { return nil }
        self.init(rawValue: UInt32(index))
    }
}

/// The cache attribute a PTE ends up with (spec §2.9 step 3, x86 table).
public enum CacheAttribute: UInt8, Sendable {
    case writeBack, uncached, writeCombined

    init(_ type: MemoryCachingType) {
        switch type.rawValue {
        case 0, 4: self = .uncached
        case 2, 5: self = .writeCombined
        default: self = .writeBack
        }
    }
}

/// `MM_PAGE_PRIORITY`.
public enum PagePriority: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case lowPagePriority = 0
    case normalPagePriority = 16
    case highPagePriority = 32
    public var description: String {
        switch self {
        case .lowPagePriority: "LowPagePriority"
        case .normalPagePriority: "NormalPagePriority"
        case .highPagePriority: "HighPagePriority"
        }
    }
}

/// `INTERFACE_TYPE` (spec §1.5).
public struct InterfaceType: RawRepresentable, Hashable, Sendable, Comparable, CustomStringConvertible {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    public static let interfaceTypeUndefined = InterfaceType(rawValue: -1)
    public static let internal_ = InterfaceType(rawValue: 0)
    public static let isa = InterfaceType(rawValue: 1)
    public static let eisa = InterfaceType(rawValue: 2)
    public static let microChannel = InterfaceType(rawValue: 3)
    public static let turboChannel = InterfaceType(rawValue: 4)
    public static let pciBus = InterfaceType(rawValue: 5)
    public static let maximumInterfaceType = InterfaceType(rawValue: 18)
    static let names = ["Internal", "Isa", "Eisa", "MicroChannel", "TurboChannel", "PCIBus", "VMEBus", "NuBus",
                        "PCMCIABus", "CBus", "MPIBus", "MPSABus", "ProcessorInternal", "InternalPowerBus",
                        "PNPISABus", "PNPBus", "Vmcs", "ACPIBus"]
    public var description: String {
        rawValue >= 0 && Int(rawValue) < Self.names.count ? Self.names[Int(rawValue)] : "\(rawValue)"
    }
    public init?(name: String) {
        if name == "InterfaceTypeUndefined" { self = .interfaceTypeUndefined; return }
        guard let index = Self.names.firstIndex(of: name) else { return nil }
        self.init(rawValue: Int32(index))
    }
    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Interrupt request levels (x86 numbering).
public struct Irql: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let passiveLevel = Irql(rawValue: 0)
    public static let apcLevel = Irql(rawValue: 1)
    public static let dispatchLevel = Irql(rawValue: 2)
    public static let deviceLevel = Irql(rawValue: 12)
    public static let highLevel = Irql(rawValue: 31)
    public static func < (a: Irql, b: Irql) -> Bool { a.rawValue < b.rawValue }
    public var description: String {
        switch rawValue {
        case 0: "PASSIVE_LEVEL"
        case 1: "APC_LEVEL"
        case 2: "DISPATCH_LEVEL"
        case 31: "HIGH_LEVEL"
        default: "\(rawValue)"
        }
    }
    public init?(name: String) {
        switch name {
        case "PASSIVE_LEVEL": self = .passiveLevel
        case "APC_LEVEL": self = .apcLevel
        case "DISPATCH_LEVEL": self = .dispatchLevel
        case "HIGH_LEVEL": self = .highLevel
        default:
            guard let value = UInt8(name), value <= 31 else { return nil }
            self.init(rawValue: value)
        }
    }
}

/// `POOL_TYPE`, the two kinds the engine simulates.
public enum PoolType: UInt32, Sendable, CaseIterable, CustomStringConvertible {
    case nonPagedPool = 0
    case pagedPool = 1
    public var description: String { self == .nonPagedPool ? "NonPagedPool" : "PagedPool" }
}

/// Page protection of a user buffer (the subset of PAGE_* values the environment uses).
public enum PageProtection: String, Sendable, CaseIterable, CustomStringConvertible {
    case readWrite = "ReadWrite"
    case readOnly = "ReadOnly"
    case noAccess = "NoAccess"
    public var description: String { rawValue }
}

/// The `MdlFlags` bits (spec §1.3), 16 bits wide.
public struct MdlFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let mappedToSystemVa = MdlFlags(rawValue: 0x0001)
    public static let pagesLocked = MdlFlags(rawValue: 0x0002)
    public static let sourceIsNonpagedPool = MdlFlags(rawValue: 0x0004)
    public static let allocatedFixedSize = MdlFlags(rawValue: 0x0008)
    public static let partial = MdlFlags(rawValue: 0x0010)
    public static let partialHasBeenMapped = MdlFlags(rawValue: 0x0020)
    public static let ioPageRead = MdlFlags(rawValue: 0x0040)
    public static let writeOperation = MdlFlags(rawValue: 0x0080)
    public static let parentMappedSystemVa = MdlFlags(rawValue: 0x0100)
    public static let freeExtraPtes = MdlFlags(rawValue: 0x0200)
    public static let describesAwe = MdlFlags(rawValue: 0x0400)
    public static let ioSpace = MdlFlags(rawValue: 0x0800)
    public static let networkHeader = MdlFlags(rawValue: 0x1000)
    public static let mappingCanFail = MdlFlags(rawValue: 0x2000)
    public static let allocatedMustSucceed = MdlFlags(rawValue: 0x4000)
    public static let internal_ = MdlFlags(rawValue: 0x8000)

    /// `MDL_MAPPING_FLAGS` as spec §1.3 says to read it (without the undefined MDL_SYSTEM_VA).
    public static let mappingFlags: MdlFlags = [.mappedToSystemVa, .pagesLocked, .sourceIsNonpagedPool,
                                                .partialHasBeenMapped, .parentMappedSystemVa, .ioSpace]

    static let names: [(UInt16, String)] = [
        (0x0001, "MDL_MAPPED_TO_SYSTEM_VA"), (0x0002, "MDL_PAGES_LOCKED"), (0x0004, "MDL_SOURCE_IS_NONPAGED_POOL"),
        (0x0008, "MDL_ALLOCATED_FIXED_SIZE"), (0x0010, "MDL_PARTIAL"), (0x0020, "MDL_PARTIAL_HAS_BEEN_MAPPED"),
        (0x0040, "MDL_IO_PAGE_READ"), (0x0080, "MDL_WRITE_OPERATION"), (0x0100, "MDL_PARENT_MAPPED_SYSTEM_VA"),
        (0x0200, "MDL_FREE_EXTRA_PTES"), (0x0400, "MDL_DESCRIBES_AWE"), (0x0800, "MDL_IO_SPACE"),
        (0x1000, "MDL_NETWORK_HEADER"), (0x2000, "MDL_MAPPING_CAN_FAIL"), (0x4000, "MDL_ALLOCATED_MUST_SUCCEED"),
        (0x8000, "MDL_INTERNAL"),
    ]

    /// The flag names joined with `|`, or `0`.
    public var description: String {
        let parts = Self.names.filter { rawValue & $0.0 != 0 }.map(\.1)
        return parts.isEmpty ? "0" : parts.joined(separator: "|")
    }

    /// Parses `MDL_A|MDL_B`, `0`, or a hex number.
    public init?(names text: String) {
        if text == "0" { self = []; return }
        if text.hasPrefix("0x"), let value = UInt16(text.dropFirst(2), radix: 16) { self.init(rawValue: value); return }
        var value: UInt16 = 0
        for part in text.split(separator: "|") {
            guard let bit = Self.names.first(where: { $0.1 == part })?.0 else { return nil }
            value |= bit
        }
        self.init(rawValue: value)
    }
}
