/// Every call a program can make: the NT routines (named verbatim) and the environment actions.
///
/// This table is the single source of truth for arity, argument kinds and result kinds. The text
/// encoder and parser, the engine adapter, the reference model and the generator all read it.
public enum Routine: String, CaseIterable, Sendable, Comparable {
    // The 21 routines of NT 4.0 DDK §1.4.4 "Address Mappings and MDLs".
    case halTranslateBusAddress = "HalTranslateBusAddress"
    case mmGetPhysicalAddress = "MmGetPhysicalAddress"
    case mmGetMdlVirtualAddress = "MmGetMdlVirtualAddress"
    case mmGetSystemAddressForMdl = "MmGetSystemAddressForMdl"
    case mmBuildMdlForNonPagedPool = "MmBuildMdlForNonPagedPool"
    case mmGetMdlByteCount = "MmGetMdlByteCount"
    case mmGetMdlByteOffset = "MmGetMdlByteOffset"
    case mmMapLockedPages = "MmMapLockedPages"
    case mmUnmapLockedPages = "MmUnmapLockedPages"
    case mmIsAddressValid = "MmIsAddressValid"
    case mmSizeOfMdl = "MmSizeOfMdl"
    case mmCreateMdl = "MmCreateMdl"
    case mmPrepareMdlForReuse = "MmPrepareMdlForReuse"
    case mmInitializeMdl = "MmInitializeMdl"
    case mmMapIoSpace = "MmMapIoSpace"
    case mmUnmapIoSpace = "MmUnmapIoSpace"
    case mmProbeAndLockPages = "MmProbeAndLockPages"
    case mmUnlockPages = "MmUnlockPages"
    case ioAllocateMdl = "IoAllocateMdl"
    case ioBuildPartialMdl = "IoBuildPartialMdl"
    case ioFreeMdl = "IoFreeMdl"
    // What drivers use beside them.
    case mmGetSystemAddressForMdlSafe = "MmGetSystemAddressForMdlSafe"
    case mmMapLockedPagesSpecifyCache = "MmMapLockedPagesSpecifyCache"
    case mmAllocatePagesForMdl = "MmAllocatePagesForMdl"
    case mmFreePagesFromMdl = "MmFreePagesFromMdl"
    // Environment actions.
    case exAllocatePoolWithTag = "ExAllocatePoolWithTag"
    case exFreePool = "ExFreePool"
    case allocateUserBuffer = "AllocateUserBuffer"
    case freeUserBuffer = "FreeUserBuffer"
    case protectUserBuffer = "ProtectUserBuffer"
    case readMemory = "ReadMemory"
    case writeMemory = "WriteMemory"
    case createProcess = "CreateProcess"
    case attachProcess = "AttachProcess"
    case terminateProcess = "TerminateProcess"
    case keRaiseIrql = "KeRaiseIrql"
    case keLowerIrql = "KeLowerIrql"
    case ioAllocateIrp = "IoAllocateIrp"
    case ioFreeIrp = "IoFreeIrp"
    case trimWorkingSet = "TrimWorkingSet"
    case pageOut = "PageOut"
    /// `Mdl->MdlFlags |= flags`: a driver setting a flag it may set itself (MDL_MAPPING_CAN_FAIL, 0x2000,
    /// before MmGetSystemAddressForMdl: the NT 4.0 way to make a mapping failure return NULL).
    case setMdlFlags = "SetMdlFlags"
    /// `Mdl->MdlFlags &= ~flags`.
    case clearMdlFlags = "ClearMdlFlags"
    // Driver-harness requests (driver-under-test mode): not engine calls. The DriverHarness target runs
    // them against a driver under test; on the engine alone they do nothing, and the reference model
    // stops predicting at the first one. The engine fuzzer never generates them.
    case driverRead = "DriverRead"
    case driverWrite = "DriverWrite"
    case driverDeviceControl = "DriverDeviceControl"
    case driverCompleteDpc = "DriverCompleteDpc"
    case driverCancel = "DriverCancel"
    case driverUnload = "DriverUnload"

    /// The routine's NT (or environment) name, as programs spell it.
    public var name: String { rawValue }

    public static func < (a: Routine, b: Routine) -> Bool { a.rawValue < b.rawValue }

    /// True for the routines of the NT API (the first 25), false for environment actions.
    public var isNtRoutine: Bool { Routine.allCases.firstIndex(of: self)! < 25 }

    /// True for the driver-harness requests (`DriverRead` … `DriverUnload`), which only a driver
    /// under test can carry out.
    public var isDriverRequest: Bool {
        switch self {
        case .driverRead, .driverWrite, .driverDeviceControl, .driverCompleteDpc, .driverCancel, .driverUnload: true
        default: false
        }
    }

    /// Parameters and result of the call.
    public var signature: Signature { Signature.table[self]! }
}

/// What a call takes and what it binds.
public struct Signature: Sendable, Hashable {
    public let parameters: [Parameter]
    /// The kind of value a call binds to its result name; nil for calls with nothing to bind.
    public let result: ResultKind?

    init(_ parameters: [Parameter], _ result: ResultKind? = nil) {
        self.parameters = parameters
        self.result = result
    }

    static let table: [Routine: Signature] = {
        typealias P = Parameter
        let mdl = P("mdl", .handle, labeled: false)
        let va = P("va", .address)
        let length = P("length", .length)
        let mode = P("mode", .processorMode, labeled: false)
        let priority = P("priority", .pagePriority, labeled: false)
        // A driver request's user buffer, its length, the device offset and the transfer method.
        let transfer = [P("buffer", .address), length, P("position", .length), P("method", .transferMethod, labeled: false)]
        return [
            .halTranslateBusAddress: Signature([P("interface", .interfaceType, labeled: false), P("bus", .number),
                                                P("address", .address), P("space", .number)], .physicalAddress),
            .mmGetPhysicalAddress: Signature([va], .physicalAddress),
            .mmGetMdlVirtualAddress: Signature([mdl], .address),
            .mmGetSystemAddressForMdl: Signature([mdl], .address),
            .mmBuildMdlForNonPagedPool: Signature([mdl]),
            .mmGetMdlByteCount: Signature([mdl], .value),
            .mmGetMdlByteOffset: Signature([mdl], .value),
            .mmMapLockedPages: Signature([mdl, mode], .address),
            .mmUnmapLockedPages: Signature([P("base", .address, labeled: false), mdl]),
            .mmIsAddressValid: Signature([P("va", .address, labeled: false)], .value),
            .mmSizeOfMdl: Signature([va, length], .value),
            .mmCreateMdl: Signature([P("mdl", .handle), va, length], .mdl),
            .mmPrepareMdlForReuse: Signature([mdl]),
            .mmInitializeMdl: Signature([mdl, va, length]),
            .mmMapIoSpace: Signature([P("pa", .address), length, P("cache", .cachingType, labeled: false)], .address),
            .mmUnmapIoSpace: Signature([P("va", .address, labeled: false), length]),
            .mmProbeAndLockPages: Signature([mdl, mode, P("operation", .lockOperation, labeled: false)]),
            .mmUnlockPages: Signature([mdl]),
            .ioAllocateMdl: Signature([va, length, P("secondary", .boolean), P("quota", .boolean), P("irp", .handle)], .mdl),
            .ioBuildPartialMdl: Signature([P("source", .handle, labeled: false), P("target", .handle, labeled: false), va, length]),
            .ioFreeMdl: Signature([mdl]),
            .mmGetSystemAddressForMdlSafe: Signature([mdl, priority], .address),
            .mmMapLockedPagesSpecifyCache: Signature([mdl, mode, P("cache", .cachingType, labeled: false), P("requested", .address),
                                                      P("bugcheck", .boolean), priority], .address),
            .mmAllocatePagesForMdl: Signature([P("low", .address), P("high", .address), P("skip", .length), P("total", .length)], .mdl),
            .mmFreePagesFromMdl: Signature([mdl]),
            .exAllocatePoolWithTag: Signature([P("type", .poolType, labeled: false), P("size", .length)], .pool),
            .exFreePool: Signature([P("block", .handle, labeled: false)]),
            .allocateUserBuffer: Signature([P("size", .length), P("protect", .protection)], .buffer),
            .freeUserBuffer: Signature([P("buffer", .handle, labeled: false)], .value),
            .protectUserBuffer: Signature([P("va", .address, labeled: false), P("size", .length), P("protect", .protection)], .value),
            .readMemory: Signature([P("va", .address, labeled: false), length], .data),
            .writeMemory: Signature([P("va", .address, labeled: false), P("data", .bytes)]),
            .createProcess: Signature([], .process),
            .attachProcess: Signature([P("process", .handle, labeled: false)], .value),
            .terminateProcess: Signature([P("process", .handle, labeled: false)], .value),
            .keRaiseIrql: Signature([P("irql", .irql, labeled: false)]),
            .keLowerIrql: Signature([P("irql", .irql, labeled: false)]),
            .ioAllocateIrp: Signature([], .irp),
            .ioFreeIrp: Signature([P("irp", .handle, labeled: false)]),
            .trimWorkingSet: Signature([P("process", .handle, labeled: false)], .value),
            .pageOut: Signature([P("va", .address, labeled: false)], .value),
            .setMdlFlags: Signature([mdl, P("flags", .number)]),
            .clearMdlFlags: Signature([mdl, P("flags", .number)]),
            .driverRead: Signature(transfer, .request),
            .driverWrite: Signature(transfer, .request),
            .driverDeviceControl: Signature([P("code", .number)] + transfer, .request),
            .driverCompleteDpc: Signature([P("request", .handle, labeled: false)]),
            .driverCancel: Signature([P("request", .handle, labeled: false)]),
            .driverUnload: Signature([]),
        ]
    }()
}

/// One parameter of a call.
public struct Parameter: Sendable, Hashable {
    /// The name used in `label=value` form.
    public let label: String
    public let kind: ArgumentKind
    /// Whether the canonical text writes `label=value` (numbers) or the bare value (handles, enums).
    public let labeled: Bool

    init(_ label: String, _ kind: ArgumentKind, labeled: Bool = true) {
        self.label = label
        self.kind = kind
        self.labeled = labeled
    }
}

/// What a value bound to a result name is, which fixes its name's prefix (`m0`, `b1`, `v2`).
public enum ResultKind: String, Sendable, CaseIterable {
    case mdl = "m"
    case buffer = "b"
    case pool = "p"
    case address = "v"
    case physicalAddress = "a"
    case irp = "i"
    case process = "r"
    case value = "x"
    case data = "d"
    /// A request sent to a driver under test (driver-harness programs only).
    case request = "q"

    /// Whether `name` is a result name of this kind: its prefix and a decimal number (`m0`, `b12`).
    func accepts(_ name: String) -> Bool {
        guard name.hasPrefix(prefix) else { return false }
        let digits = name.dropFirst(prefix.count)
        return !digits.isEmpty && digits.allSatisfy { $0.isASCII && $0.isNumber }
    }

    /// The name prefix results of this kind carry.
    public var prefix: String { rawValue }

    /// What to call this kind in messages.
    public var noun: String {
        switch self {
        case .mdl: "an MDL"
        case .buffer: "a user buffer"
        case .pool: "a pool block"
        case .address: "a virtual address"
        case .physicalAddress: "a physical address"
        case .irp: "an IRP"
        case .process: "a process"
        case .value: "a value"
        case .data: "bytes"
        case .request: "a driver request"
        }
    }
}
