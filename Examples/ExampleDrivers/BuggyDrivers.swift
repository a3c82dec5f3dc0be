import DriverHarness
import MemoryManager

// Each driver below is the correct CopyDriver with one classic MDL bug, in the one step it overrides.
// The harness must find each one (Tests/DriverHarnessTests) with the rule named in its documentation.

/// Leaks the MDL when IoAllocateMdl's partner allocation (the context block) fails.
/// Found with a fault plan on nonpaged pool; rule `leaked-mdl` (Pool Tracking, 0xC4/0x62 at unload).
public final class LeakMdlOnPartnerFailureDriver: CopyDriver {
    override public func allocateTransfer(_ request: Request, _ kernel: Kernel) throws(KernelError) -> NeitherTransfer? {
        guard let mdl = try kernel.io.allocateMdl(virtualAddress: request.userBuffer, length: UInt32(request.length),
                                                  secondaryBuffer: false, chargeQuota: false, irp: 0) else { return nil }
        guard let context = try kernel.env.allocatePool(.nonPagedPool, bytes: 0x20) else {
            return nil  // BUG: the MDL allocated just above is never freed
        }
        return NeitherTransfer(mdl: mdl, context: context)
    }
}

/// Forgets MmUnlockPages on the error path taken when the system mapping fails.
/// Found with a fault plan on system PTEs; rule `leaked-locked-pages` (0xCB).
public final class ForgetUnlockOnErrorPathDriver: CopyDriver {
    override public func mapTransfer(_ transfer: NeitherTransfer, _ kernel: Kernel) throws(KernelError) -> Bool {
        guard let address = try kernel.mm.getSystemAddressForMdlSafe(transfer.mdl, priority: .normalPagePriority) else {
            // BUG: no MmUnlockPages(transfer.mdl): the caller's pages stay locked after the MDL is freed
            try kernel.env.freePool(transfer.context)
            try kernel.io.freeMdl(transfer.mdl)
            return false
        }
        transfer.systemAddress = address
        return true
    }
}

/// Calls MmProbeAndLockPages without an exception handler: a bad caller buffer raises through the
/// dispatch routine. Rule `unhandled-exception` (0x1E KMODE_EXCEPTION_NOT_HANDLED).
public final class UnhandledProbeRaiseDriver: CopyDriver {
    override public func lockTransfer(_ transfer: NeitherTransfer, _ request: Request, _ kernel: Kernel) throws(KernelError) -> NTStatus? {
        // BUG: no do/catch (__try/__except) around the probe
        try kernel.mm.probeAndLockPages(transfer.mdl, accessMode: .userMode, operation: request.readsDevice ? .ioWriteAccess : .ioReadAccess)
        return nil
    }
}

/// Uses MmGetSystemAddressForMdlSafe in its DPC, at DISPATCH_LEVEL, without checking for NULL: when
/// system PTEs run out it transfers through a NULL pointer. Rule `unchecked-null-mapping` (0xD1).
public final class UncheckedNullMappingDriver: CopyDriver {
    override public func systemAddress(_ request: Request, _ kernel: Kernel) throws(KernelError) -> VirtualAddress? {
        guard request.method == .direct else { return try super.systemAddress(request, kernel) }
        let address = try kernel.mm.getSystemAddressForMdlSafe(request.mdl, priority: .normalPagePriority)
        return address ?? 0  // BUG: what C code does when it skips the NULL check
    }
}

/// Frees its MDL before unmapping (and unlocking) it. Rule `free-mapped-mdl` (0xC4/0xB8).
public final class FreeMdlBeforeUnmapDriver: CopyDriver {
    override public func release(_ request: Request, _ kernel: Kernel) throws(KernelError) {
        guard let transfer = request.driverContext as? NeitherTransfer else { return }
        request.driverContext = nil
        try kernel.io.freeMdl(transfer.mdl)  // BUG: still mapped and locked
        try kernel.mm.unmapLockedPages(transfer.systemAddress, transfer.mdl)
        try kernel.mm.unlockPages(transfer.mdl)
        try kernel.env.freePool(transfer.context)
    }
}

/// Unlocks Irp->MdlAddress itself after a direct-I/O transfer, then the I/O manager unlocks it again at
/// completion. Rule `unlock-not-locked` (0xC4/0x7C).
public final class DoubleUnlockDirectDriver: CopyDriver {
    override public func release(_ request: Request, _ kernel: Kernel) throws(KernelError) {
        if request.method == .direct && request.mdl != 0 {
            try kernel.mm.unlockPages(request.mdl)  // BUG: the I/O manager owns this MDL and unlocks it at completion
        }
        try super.release(request, kernel)
    }
}

/// Touches a METHOD_NEITHER caller's buffer directly in its DPC, at DISPATCH_LEVEL in another process's
/// context, instead of through a locked, mapped MDL. Rule `page-fault-at-raised-irql` (0xD1).
public final class UserBufferInDpcDriver: CopyDriver {
    override public func start(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        if request.length == 0 { return .success(0) }
        if request.position >= services.device.size { return .failure(.endOfFile) }
        return .pending  // BUG: METHOD_NEITHER buffers are not locked or mapped here
    }

    override public func systemAddress(_ request: Request, _ kernel: Kernel) throws(KernelError) -> VirtualAddress? {
        request.method == .neither ? request.userBuffer : try super.systemAddress(request, kernel)
    }
}
