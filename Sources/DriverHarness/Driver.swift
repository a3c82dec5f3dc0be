import MemoryManager

/// A driver under test: Swift code written against the engine's kernel API (``DriverServices/kernel``:
/// `kernel.mm`, `kernel.io`, `kernel.env`, `kernel.hal`), run by the harness the way Windows runs a
/// WDM driver under Driver Verifier, but deterministically.
///
/// The harness calls ``driverEntry(_:)`` before a program's first call, sends it the program's
/// requests (``Request``, prepared for their ``TransferMethod`` as the I/O manager would), runs its DPC
/// when a program says the device finished a request (`DriverCompleteDpc(q0)`), its cancel routine
/// for `DriverCancel(q0)`, and ``unload(_:)`` at `DriverUnload()` or the end of the program, after every
/// request has completed. Around all of that it checks Driver Verifier's MDL rules (``DriverRule``).
///
/// Errors: an engine routine that raises (`KernelError.raised`, e.g. MmProbeAndLockPages on a bad
/// buffer) must be caught where Windows code would need `__try/__except`; a raise that leaves a
/// routine is an unhandled exception and a finding. Bug checks end the run as findings.
public protocol Driver: AnyObject {
    /// DriverEntry: PASSIVE_LEVEL, System process context. A failure status means the driver did not
    /// load and must already have released everything it allocated; requests then fail with
    /// STATUS_NO_SUCH_DEVICE and ``unload(_:)`` is not called.
    func driverEntry(_ services: DriverServices) throws(KernelError) -> NTStatus

    /// IRP_MJ_READ: PASSIVE_LEVEL, in the requesting process's context.
    func dispatchRead(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult

    /// IRP_MJ_WRITE: PASSIVE_LEVEL, in the requesting process's context.
    func dispatchWrite(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult

    /// IRP_MJ_DEVICE_CONTROL: PASSIVE_LEVEL, in the requesting process's context. The default
    /// completes with STATUS_INVALID_DEVICE_REQUEST.
    func dispatchDeviceControl(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult

    /// The DPC for a pending request (the device finished it): DISPATCH_LEVEL, in an arbitrary process
    /// context (the harness uses the System process, so user addresses are not the requester's).
    /// Returning `.pending` keeps the request outstanding for a later DPC.
    func completionDpc(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult

    /// The cancel routine for a pending request: DISPATCH_LEVEL, arbitrary process context. Release what
    /// the request holds and return `.failure(.cancelled)`, or return `.pending` when the device already
    /// has it and its DPC will complete it. The default returns `.pending`.
    func cancel(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult

    /// DriverUnload: PASSIVE_LEVEL, System process context; every request has completed. Everything the
    /// driver still holds must be released here.
    func unload(_ services: DriverServices) throws(KernelError)
}

extension Driver {
    /// Completes with STATUS_INVALID_DEVICE_REQUEST.
    public func dispatchDeviceControl(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        .failure(.invalidDeviceRequest)
    }

    /// Leaves the request to its DPC.
    public func cancel(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult { .pending }
}

/// What a driver gets besides its requests: the kernel it runs on, its device, and where the device's
/// registers are.
public final class DriverServices {
    /// The simulated kernel (Mm*, Io*, Hal* routines and environment actions).
    public let kernel: Kernel
    /// The device the driver moves data to and from.
    public let device: SimulatedDevice
    /// Physical address of the device's register window (map it with MmMapIoSpace), 0 if the machine
    /// has no device memory.
    public let registersPhysical: PhysicalAddress
    /// Size of the register window in bytes (0 if there is none).
    public let registersBytes: UInt64

    init(kernel: Kernel, device: SimulatedDevice) {
        self.kernel = kernel
        self.device = device
        let window = kernel.configuration.devices.first
        registersPhysical = window?.physicalAddress ?? 0
        registersBytes = window.map { min($0.length, kernel.constants.pageSize) } ?? 0
    }
}

/// The drivers a tool can run by name (`lockstep fuzz --driver NAME`).
public struct DriverRegistry: Sendable {
    /// One registered driver: its name, a one-line description and how to make a fresh instance
    /// (every run gets its own).
    public struct Entry: Sendable {
        /// The name `--driver` takes.
        public let name: String
        /// One line: what the driver does (or which bug it has).
        public let summary: String
        /// A fresh instance for one run.
        public let make: @Sendable () -> any Driver

        /// An entry; `make` is called once per run.
        public init(name: String, summary: String, make: @escaping @Sendable () -> any Driver) {
            self.name = name
            self.summary = summary
            self.make = make
        }
    }

    /// Entries in registration order.
    public let entries: [Entry]

    /// A registry of these entries (names should be unique; the first wins).
    public init(_ entries: [Entry]) { self.entries = entries }

    /// The entry with this name.
    public func entry(named name: String) -> Entry? { entries.first { $0.name == name } }

    /// The registered names, in registration order.
    public var names: [String] { entries.map(\.name) }
}
