import DriverHarness
import MemoryManager

/// A correct example driver: it copies between its device and the caller's buffer for reads, writes
/// and two device controls, with all three transfer methods, doing every transfer in its DPC at
/// DISPATCH_LEVEL. It is what the buggy examples are measured against: each of them overrides one step
/// below with one classic mistake.
///
/// - DriverEntry: a nonpaged device extension and the device registers mapped with MmMapIoSpace.
/// - Dispatch (PASSIVE_LEVEL, caller's context): validate; for METHOD_NEITHER build an MDL for the
///   caller's buffer, lock it inside the exception handler and map it while still in the caller's
///   context; then mark the request pending.
/// - DPC (DISPATCH_LEVEL, arbitrary context): find a system address for the buffer (the system buffer,
///   a NULL-checked MmGetSystemAddressForMdlSafe of Irp->MdlAddress, or the METHOD_NEITHER mapping),
///   transfer, release what the driver built, complete.
/// - Cancel: release what the driver built, complete with STATUS_CANCELLED.
/// - Unload: unmap the registers, free the extension.
open class CopyDriver: Driver {
    /// The device extension (nonpaged pool).
    public private(set) var deviceExtension: VirtualAddress = 0
    /// The device registers, mapped at DriverEntry.
    public private(set) var registers: VirtualAddress = 0

    /// A driver that has not been loaded yet.
    public init() {}

    /// Allocates the device extension and maps the registers; frees the extension if the mapping fails.
    open func driverEntry(_ services: DriverServices) throws(KernelError) -> NTStatus {
        let kernel = services.kernel
        guard let block = try kernel.env.allocatePool(.nonPagedPool, bytes: 0x40) else { return .insufficientResources }
        if services.registersBytes > 0 {
            guard let mapped = try kernel.mm.mapIoSpace(services.registersPhysical, numberOfBytes: services.registersBytes,
                                                        cacheType: .mmNonCached) else {
                try kernel.env.freePool(block)
                return .insufficientResources
            }
            registers = mapped
        }
        deviceExtension = block
        return .success
    }

    /// Unmaps the registers and frees the extension.
    open func unload(_ services: DriverServices) throws(KernelError) {
        if registers != 0 { try services.kernel.mm.unmapIoSpace(registers, numberOfBytes: services.registersBytes) }
        try services.kernel.env.freePool(deviceExtension)
        registers = 0
        deviceExtension = 0
    }

    /// Starts a read (see ``start(_:_:)``).
    open func dispatchRead(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        try start(request, services)
    }

    /// Starts a write (see ``start(_:_:)``).
    open func dispatchWrite(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        try start(request, services)
    }

    /// Starts a device-read or device-write control; other codes are invalid.
    open func dispatchDeviceControl(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        guard request.readsDevice || request.writesDevice else { return .failure(.invalidDeviceRequest) }
        return try start(request, services)
    }

    /// Validates the request, prepares a METHOD_NEITHER buffer, and queues the transfer for the DPC.
    open func start(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        if request.length == 0 { return .success(0) }
        if request.position >= services.device.size { return .failure(.endOfFile) }
        guard request.method == .neither else { return .pending }
        guard request.length <= 0x10_0000 else { return .failure(.invalidParameter) }
        guard let transfer = try allocateTransfer(request, services.kernel) else { return .failure(.insufficientResources) }
        if let status = try lockTransfer(transfer, request, services.kernel) { return .failure(status) }
        guard try mapTransfer(transfer, services.kernel) else { return .failure(.insufficientResources) }
        request.driverContext = transfer
        return .pending
    }

    /// IoAllocateMdl for the caller's buffer and its partner allocation, a nonpaged context block.
    /// Nil, with nothing left allocated, when either fails.
    open func allocateTransfer(_ request: Request, _ kernel: Kernel) throws(KernelError) -> NeitherTransfer? {
        guard let mdl = try kernel.io.allocateMdl(virtualAddress: request.userBuffer, length: UInt32(request.length),
                                                  secondaryBuffer: false, chargeQuota: false, irp: 0) else { return nil }
        guard let context = try kernel.env.allocatePool(.nonPagedPool, bytes: 0x20) else {
            try kernel.io.freeMdl(mdl)
            return nil
        }
        return NeitherTransfer(mdl: mdl, context: context)
    }

    /// MmProbeAndLockPages inside the exception handler Windows requires. Returns the status it raised
    /// (after releasing the transfer), or nil when the pages are locked.
    open func lockTransfer(_ transfer: NeitherTransfer, _ request: Request, _ kernel: Kernel) throws(KernelError) -> NTStatus? {
        do {
            try kernel.mm.probeAndLockPages(transfer.mdl, accessMode: .userMode,
                                            operation: request.readsDevice ? .ioWriteAccess : .ioReadAccess)
        } catch .raised(let status) {
            try kernel.env.freePool(transfer.context)
            try kernel.io.freeMdl(transfer.mdl)
            return status
        }
        return nil
    }

    /// MmGetSystemAddressForMdlSafe with its NULL check. False, with the pages unlocked and the transfer
    /// released, when no system PTEs are left.
    open func mapTransfer(_ transfer: NeitherTransfer, _ kernel: Kernel) throws(KernelError) -> Bool {
        guard let address = try kernel.mm.getSystemAddressForMdlSafe(transfer.mdl, priority: .normalPagePriority) else {
            try kernel.mm.unlockPages(transfer.mdl)
            try kernel.env.freePool(transfer.context)
            try kernel.io.freeMdl(transfer.mdl)
            return false
        }
        transfer.systemAddress = address
        return true
    }

    /// The transfer, at DISPATCH_LEVEL: acknowledge the device, find a system address, move the bytes, release, complete.
    open func completionDpc(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        if registers != 0 { try services.kernel.env.writeMemory(registers, [0x01, 0x00, 0x00, 0x00]) }  // acknowledge the interrupt
        guard let address = try systemAddress(request, services.kernel) else {
            try release(request, services.kernel)
            return .failure(.insufficientResources)
        }
        let moved = try transfer(request, services.device, address)
        try release(request, services.kernel)
        return .success(moved)
    }

    /// A system address for the caller's buffer that is valid at DISPATCH_LEVEL in any process, or nil
    /// when it cannot be mapped.
    open func systemAddress(_ request: Request, _ kernel: Kernel) throws(KernelError) -> VirtualAddress? {
        switch request.method {
        case .buffered: request.systemBuffer
        case .direct: try kernel.mm.getSystemAddressForMdlSafe(request.mdl, priority: .normalPagePriority)
        case .neither: (request.driverContext as? NeitherTransfer)?.systemAddress
        }
    }

    /// Moves the request's bytes between the device and `address`; returns the bytes moved.
    open func transfer(_ request: Request, _ device: SimulatedDevice, _ address: VirtualAddress) throws(KernelError) -> UInt64 {
        if request.readsDevice { return try device.read(at: request.position, count: request.length, into: address) }
        return try device.write(at: request.position, count: request.length, from: address)
    }

    /// Releases what the driver built for a METHOD_NEITHER request: the mapping, the lock, the MDL and
    /// the context block, in that order. (Irp->MdlAddress of direct I/O is the I/O manager's to release.)
    open func release(_ request: Request, _ kernel: Kernel) throws(KernelError) {
        guard let transfer = request.driverContext as? NeitherTransfer else { return }
        request.driverContext = nil
        try kernel.mm.unmapLockedPages(transfer.systemAddress, transfer.mdl)
        try kernel.mm.unlockPages(transfer.mdl)
        try kernel.io.freeMdl(transfer.mdl)
        try kernel.env.freePool(transfer.context)
    }

    /// Releases what the request holds and completes it with STATUS_CANCELLED.
    open func cancel(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        try release(request, services.kernel)
        return .failure(.cancelled)
    }
}

/// What a METHOD_NEITHER request holds while it is pending: the driver's MDL for the caller's buffer,
/// the system mapping of it, and a nonpaged context block allocated with the MDL.
public final class NeitherTransfer {
    /// The driver's MDL for the caller's buffer.
    public let mdl: VirtualAddress
    /// The nonpaged context block allocated with it.
    public let context: VirtualAddress
    /// The system mapping of the locked buffer (0 until mapped).
    public var systemAddress: VirtualAddress = 0

    /// A transfer whose MDL and context block are allocated but not yet locked or mapped.
    public init(mdl: VirtualAddress, context: VirtualAddress) {
        self.mdl = mdl
        self.context = context
    }
}
