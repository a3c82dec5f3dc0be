import MemoryManager

/// Which dispatch routine a request goes to (IRP_MJ_READ, IRP_MJ_WRITE, IRP_MJ_DEVICE_CONTROL).
public enum MajorFunction: String, Sendable, CaseIterable {
    case read = "Read"
    case write = "Write"
    case deviceControl = "DeviceControl"
}

/// How a request's user buffer reaches the driver.
public enum TransferMethod: String, Sendable, CaseIterable {
    /// METHOD_BUFFERED: the I/O manager allocates a nonpaged system buffer (``Request/systemBuffer``),
    /// copies the user data in before dispatch (writes) and copies ``Request`` `information` bytes back
    /// to the user buffer at completion (reads), then frees it.
    case buffered = "Buffered"
    /// Direct I/O: the I/O manager builds an MDL for the user buffer and probes and locks it before
    /// dispatch (``Request/mdl``; none for a zero length), and unlocks and frees it at completion.
    case direct = "Direct"
    /// METHOD_NEITHER: the driver gets the raw user address (``Request/userBuffer``) and must lock
    /// and map it itself, inside an exception handler, in the requester's context.
    case neither = "Neither"
}

/// The example device's control codes: a device control request with one of them moves data like a
/// read or a write; any other code should complete with STATUS_INVALID_DEVICE_REQUEST.
public enum DeviceControlCode {
    /// Copy device bytes at `position` into the buffer (like a read).
    public static let readDevice: UInt32 = 0x1
    /// Copy the buffer to the device at `position` (like a write).
    public static let writeDevice: UInt32 = 0x2
}

/// One I/O request (an IRP) as the driver sees it. The harness creates it for a `DriverRead`,
/// `DriverWrite` or `DriverDeviceControl` call and prepares it the way the I/O manager would for its
/// transfer method.
public final class Request {
    /// The program's name for it (`q3`).
    public let name: String
    /// 0-based issue order.
    public let index: Int
    /// Which dispatch routine it goes to.
    public let major: MajorFunction
    /// The I/O control code (device control requests; 0 otherwise).
    public let controlCode: UInt32
    /// How the buffer reaches the driver.
    public let method: TransferMethod
    /// The caller's buffer, a user address in the requesting process.
    public let userBuffer: VirtualAddress
    /// Bytes to transfer.
    public let length: UInt64
    /// The device offset (the file position).
    public let position: UInt64
    /// The requesting process (its user space holds ``userBuffer``).
    public let processId: UInt32
    /// METHOD_BUFFERED: the I/O manager's nonpaged system buffer (`length` bytes), else 0.
    public internal(set) var systemBuffer: VirtualAddress = 0
    /// Direct I/O: `Irp->MdlAddress`, locked by the I/O manager (0 for a zero length), else 0.
    public internal(set) var mdl: VirtualAddress = 0
    /// Set when the request was cancelled (before the cancel routine runs).
    public internal(set) var isCancelled = false
    /// Anything the driver wants to keep with the request until it completes (its own MDL, mapping,
    /// context block).
    public var driverContext: AnyObject?

    init(name: String, index: Int, major: MajorFunction, controlCode: UInt32, method: TransferMethod,
         userBuffer: VirtualAddress, length: UInt64, position: UInt64, processId: UInt32) {
        self.name = name
        self.index = index
        self.major = major
        self.controlCode = controlCode
        self.method = method
        self.userBuffer = userBuffer
        self.length = length
        self.position = position
        self.processId = processId
    }

    /// Whether the request moves device data into the caller's buffer (a read, or a device control
    /// with ``DeviceControlCode/readDevice``).
    public var readsDevice: Bool {
        major == .read || (major == .deviceControl && controlCode == DeviceControlCode.readDevice)
    }

    /// Whether the request moves the caller's data to the device (a write, or a device control with
    /// ``DeviceControlCode/writeDevice``).
    public var writesDevice: Bool {
        major == .write || (major == .deviceControl && controlCode == DeviceControlCode.writeDevice)
    }
}

/// What a dispatch, DPC or cancel routine did with a request.
public enum RequestResult: Sendable, Equatable {
    /// IoCompleteRequest with this status and `Irp->IoStatus.Information` (bytes transferred).
    case completed(status: NTStatus, information: UInt64)
    /// IoMarkIrpPending / STATUS_PENDING: the request stays outstanding; a later DPC (or cancel)
    /// completes it.
    case pending

    /// Completed with STATUS_SUCCESS and `information` bytes transferred.
    public static func success(_ information: UInt64) -> RequestResult { .completed(status: .success, information: information) }

    /// Completed with a failure status and nothing transferred.
    public static func failure(_ status: NTStatus) -> RequestResult { .completed(status: status, information: 0) }
}

extension NTStatus {
    /// STATUS_PENDING.
    public static let pending = NTStatus(rawValue: 0x0000_0103)
    /// STATUS_NO_SUCH_DEVICE: the harness completes requests with it when no driver is loaded.
    public static let noSuchDevice = NTStatus(rawValue: 0xC000_000E)
    /// STATUS_INVALID_DEVICE_REQUEST.
    public static let invalidDeviceRequest = NTStatus(rawValue: 0xC000_0010)
    /// STATUS_END_OF_FILE.
    public static let endOfFile = NTStatus(rawValue: 0xC000_0011)
    /// STATUS_CANCELLED.
    public static let cancelled = NTStatus(rawValue: 0xC000_0120)

    /// Whether the status is an error (severity bits 11), as NT_ERROR tests.
    public var isError: Bool { rawValue >> 30 == 3 }

    /// The symbolic name, including the statuses only requests use.
    var harnessName: String {
        if let name { return name }
        switch rawValue {
        case 0x0000_0103: return "STATUS_PENDING"
        case 0xC000_000E: return "STATUS_NO_SUCH_DEVICE"
        case 0xC000_0010: return "STATUS_INVALID_DEVICE_REQUEST"
        case 0xC000_0011: return "STATUS_END_OF_FILE"
        case 0xC000_0120: return "STATUS_CANCELLED"
        default: return description
        }
    }
}
