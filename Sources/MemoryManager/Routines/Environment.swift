/// The environment actions driver call sequences need besides the MDL routines: pool, user buffers,
/// memory reads and writes, processes, IRQL, IRPs, working-set trims and page-outs.
public struct EnvironmentActions {
    let kernel: Kernel
}

extension EnvironmentActions {
    /// `ExAllocatePoolWithTag(PoolType, NumberOfBytes, Tag)`: NULL when the pool is exhausted or the fault
    /// plan fails it. Verifier: 0xC4/0x00 zero bytes, 0x01 paged above APC_LEVEL, 0x02 nonpaged above DISPATCH_LEVEL.
    public func allocatePool(_ type: PoolType, bytes: UInt64) throws(KernelError) -> VirtualAddress? {
        let k = kernel
        try k.enter("ExAllocatePoolWithTag")
        let irql = UInt64(k.irql.rawValue)
        try k.verifierCheck(bytes == 0, 0x00, irql, UInt64(type.rawValue), 0)
        try k.verifierCheck(type == .pagedPool && k.irql > .apcLevel, 0x01, irql, UInt64(type.rawValue), bytes)
        try k.verifierCheck(type == .nonPagedPool && k.irql > .dispatchLevel, 0x02, irql, UInt64(type.rawValue), bytes)
        return k.allocatePool(type, bytes: bytes)
    }

    /// `ExFreePool(P)`. Freeing an address that is not an allocated block is BAD_POOL_CALLER (7, 0, 0, P).
    /// Verifier: 0xC4/0x11 paged above APC_LEVEL, 0x12 nonpaged above DISPATCH_LEVEL.
    public func freePool(_ address: VirtualAddress) throws(KernelError) {
        let k = kernel
        try k.enter("ExFreePool")
        let irql = UInt64(k.irql.rawValue)
        try k.verifierCheck(k.pagedPool.contains(address) && k.irql > .apcLevel, 0x11, irql, 1, address)
        try k.verifierCheck(k.nonpagedPool.contains(address) && k.irql > .dispatchLevel, 0x12, irql, 0, address)
        try k.freePoolBlock(address)
    }

    /// Allocates and commits `size` bytes of user memory in the current process (NtAllocateVirtualMemory):
    /// 64 KiB-aligned, demand-zero, with the given protection. NULL if the size is 0, would take the
    /// buffers of all live processes past the system's commit limit (RAM plus an equal-sized pagefile,
    /// so 2 × RAM), or no range is free. The limit is system-wide as NT's is, which also bounds the host
    /// memory a program's page tables can take.
    public func allocateUserBuffer(size: UInt64, protection: PageProtection) throws(KernelError) -> VirtualAddress? {
        let k = kernel
        let c = k.constants
        try k.enter("NtAllocateVirtualMemory")
        try k.checkedAssert(k.irql == .passiveLevel, .irqlAtMostApc)
        let process = k.currentProcess
        guard size > 0, size <= 2 * k.configuration.ramBytes, process.id != k.systemProcessId,
              k.committedUserBytes + c.roundToPages(size) <= 2 * k.configuration.ramBytes,
              let start = process.findFreeRange(bytes: c.roundToPages(size), lowest: c.lowestUserAddress, limit: c.highestVadAddress) else { return nil }
        let bytes = c.roundToPages(size)
        process.insert(VirtualAddressDescriptor(start: start, end: start + bytes, kind: .buffer))
        for page in 0..<(bytes >> c.pageShift) {
            process.pageTable[c.pageNumber(start) + page] = PageTableEntry(state: .demandZero, protection: protection, pageable: true, cache: .writeBack)
        }
        return start
    }

    /// Releases a user buffer allocated at `address` (NtFreeVirtualMemory(MEM_RELEASE)). Frames still
    /// locked by an MDL stay allocated until unlocked. FALSE if no buffer starts there.
    public func freeUserBuffer(_ address: VirtualAddress) throws(KernelError) -> Bool {
        let k = kernel
        try k.enter("NtFreeVirtualMemory")
        let process = k.currentProcess
        guard let index = process.vad(containing: address), process.vads[index].start == address,
              process.vads[index].kind == .buffer else { return false }
        let vad = process.vads.remove(at: index)
        k.releasePages(of: process, from: vad.start, to: vad.end)
        return true
    }

    /// Changes the protection of whole pages inside one user buffer (NtProtectVirtualMemory).
    /// FALSE if the range is empty or not inside a single buffer of the current process.
    public func protectUserBuffer(_ address: VirtualAddress, size: UInt64, protection: PageProtection) throws(KernelError) -> Bool {
        let k = kernel
        let c = k.constants
        try k.enter("NtProtectVirtualMemory")
        let process = k.currentProcess
        let start = c.pageAlign(address)
        let end = c.roundToPages(address &+ size)
        guard size > 0, end > start, let index = process.vad(containing: start), process.vads[index].kind == .buffer,
              end <= process.vads[index].end else { return false }
        var va = start
        while va < end {
            process.pageTable[c.pageNumber(va)]?.protection = protection
            va += c.pageSize
        }
        return true
    }

    /// Reads `count` bytes at `address` in the current context, as driver code inside try/except:
    /// a bad user address raises STATUS_ACCESS_VIOLATION, a failed page-in STATUS_IN_PAGE_ERROR; a bad
    /// system address bug-checks 0x50; a page fault at DISPATCH_LEVEL or above bug-checks 0xD1.
    public func readMemory(_ address: VirtualAddress, count: Int) throws(KernelError) -> [UInt8] {
        try kernel.enter("ReadMemory")
        return try kernel.readBytes(address, count: max(0, min(count, 1 << 24)), .driver)
    }

    /// Writes bytes at `address` in the current context (same fault rules as ``readMemory(_:count:)``;
    /// read-only pages raise STATUS_ACCESS_VIOLATION).
    public func writeMemory(_ address: VirtualAddress, _ bytes: [UInt8]) throws(KernelError) {
        try kernel.enter("WriteMemory")
        try kernel.writeBytes(address, bytes, .driver)
    }

    /// Creates a user process (its EPROCESS comes from nonpaged pool). NULL if pool is exhausted.
    public func createProcess() throws(KernelError) -> UInt32? {
        try kernel.enter("PsCreateProcess")
        return kernel.createProcess(id: kernel.nextProcessId)
    }

    /// Makes `processId`'s user space current (KeStackAttachProcess). FALSE for an unknown or ended process.
    public func attachProcess(_ processId: UInt32) throws(KernelError) -> Bool {
        try kernel.enter("KeStackAttachProcess")
        guard let process = kernel.processes[processId], !process.terminated else { return false }
        kernel.currentProcessId = processId
        return true
    }

    /// Ends a process. With pages still locked this bug-checks PROCESS_HAS_LOCKED_PAGES (0, EPROCESS,
    /// locked pages, 0), or under Driver Verifier (Pool Tracking) from NT 6.0 on, when Verifier tracks
    /// locked pages, DRIVER_LEFT_LOCKED_PAGES_IN_PROCESS (0, 0, MDL, locked pages) naming the
    /// lowest-addressed MDL that holds them. Otherwise every page,
    /// VAD and pagefile slot is released; if it was current, the System process becomes current.
    public func terminateProcess(_ processId: UInt32) throws(KernelError) -> Bool {
        let k = kernel
        try k.enter("PsTerminateProcess")
        guard processId != k.systemProcessId, let process = k.processes[processId], !process.terminated else { return false }
        if process.lockedPages != 0 {
            let pages = UInt64(bitPattern: process.lockedPages)
            if k.isVerifier && k.configuration.version >= .nt60 {
                throw k.bugCheck(BugCheck(BugCheck.driverLeftLockedPagesInProcess, 0, 0, k.lockingMdl(of: process), pages))
            }
            throw k.bugCheck(BugCheck(BugCheck.processHasLockedPages, 0, process.eprocess, pages, 0))
        }
        process.terminated = true
        let vads = process.vads
        process.vads = []
        for vad in vads { k.releasePages(of: process, from: vad.start, to: vad.end) }
        process.pageTable = [:]
        if k.currentProcessId == processId { k.currentProcessId = k.systemProcessId }
        return true
    }

    /// KeRaiseIrql: raising to a lower IRQL bug-checks IRQL_NOT_GREATER_OR_EQUAL (old, new, 0, 0).
    public func raiseIrql(_ newIrql: Irql) throws(KernelError) {
        try kernel.enter("KeRaiseIrql")
        if newIrql < kernel.irql {
            throw kernel.bugCheck(BugCheck(BugCheck.irqlNotGreaterOrEqual, UInt64(kernel.irql.rawValue), UInt64(newIrql.rawValue), 0, 0))
        }
        kernel.irql = newIrql
    }

    /// KeLowerIrql: lowering to a higher IRQL bug-checks IRQL_NOT_LESS_OR_EQUAL (new, old, 0, 0).
    public func lowerIrql(_ newIrql: Irql) throws(KernelError) {
        try kernel.enter("KeLowerIrql")
        if newIrql > kernel.irql {
            throw kernel.bugCheck(BugCheck(BugCheck.irqlNotLessOrEqual, UInt64(newIrql.rawValue), UInt64(kernel.irql.rawValue), 0, 0))
        }
        kernel.irql = newIrql
    }

    /// IoAllocateIrp: an IRP block in nonpaged pool with Irp->MdlAddress = NULL. NULL if pool is exhausted.
    public func allocateIrp() throws(KernelError) -> VirtualAddress? {
        let k = kernel
        try k.enter("IoAllocateIrp")
        let bytes: UInt64 = k.constants.pointerBytes == 8 ? 0xD0 : 0x70
        guard let irp = k.allocatePool(.nonPagedPool, bytes: bytes) else { return nil }
        try k.writeBytes(irp, [UInt8](repeating: 0, count: Int(bytes)), .kernel)
        k.irps.insert(irp)
        return irp
    }

    /// IoFreeIrp. Freeing something that is not a live IRP is BAD_POOL_CALLER.
    public func freeIrp(_ irp: VirtualAddress) throws(KernelError) {
        try kernel.enter("IoFreeIrp")
        guard kernel.irps.remove(irp) != nil else {
            throw kernel.bugCheck(BugCheck(BugCheck.badPoolCaller, 7, 0, 0, irp))
        }
        try kernel.freePoolBlock(irp)
    }

    /// The MDL chain head Irp->MdlAddress.
    public func irpMdlAddress(_ irp: VirtualAddress) throws(KernelError) -> VirtualAddress {
        try kernel.enter("IrpMdlAddress")
        return try kernel.readInteger(kernel.constants.add(irp, kernel.constants.pointerBytes), width: Int(kernel.constants.pointerBytes))
    }

    /// Trims a working set: every resident, pageable, unlocked page of the process (or of paged pool, for
    /// the System process) is written to the pagefile and its frame freed. Returns the number of pages trimmed.
    public func trimWorkingSet(_ processId: UInt32) throws(KernelError) -> Int {
        let k = kernel
        try k.enter("MmTrimWorkingSet")
        if processId == k.systemProcessId {
            let vpns = k.systemPageTable.keys.sorted()
            return vpns.reduce(0) { $0 + (k.pageOut(vpn: $1, in: nil) ? 1 : 0) }
        }
        guard let process = k.processes[processId], !process.terminated else { return 0 }
        return process.pageTable.keys.sorted().reduce(0) { $0 + (k.pageOut(vpn: $1, in: process) ? 1 : 0) }
    }

    /// Pages out the one page containing `address` in the current context, if it is resident, pageable
    /// and not locked. Returns whether it was paged out.
    public func pageOut(_ address: VirtualAddress) throws(KernelError) -> Bool {
        let k = kernel
        try k.enter("MmPageOut")
        let user = k.constants.isUserAddress(address)
        return k.pageOut(vpn: k.constants.pageNumber(address), in: user ? k.currentProcess : nil)
    }
}

extension Kernel {
    /// Writes one resident, pageable, unlocked page to the pagefile and frees its frame.
    func pageOut(vpn: UInt64, in process: Process?) -> Bool {
        guard var entry = process.map({ $0.pageTable[vpn] }) ?? systemPageTable[vpn], entry.pageable,
              let pfn = entry.frame, let record = physical.record(pfn),
              record.lockCount == 0 || activeMutations.contains(.trimIgnoresLocks) else { return false }
        let slot = pagefile.store(physical.snapshot(pfn))
        if record.lockCount > 0 { physical.releaseIgnoringLocks(pfn) } else { physical.release(pfn) }
        entry.state = .pagedOut(slot: slot)
        if let process { process.pageTable[vpn] = entry } else { systemPageTable[vpn] = entry }
        return true
    }

    /// Removes the PTEs of [start, end) in a process, freeing frames (pending while locked) and slots;
    /// MDLs that lived there are forgotten.
    func releasePages(of process: Process, from start: VirtualAddress, to end: VirtualAddress) {
        for key in knownMdls.keys where key.processId == process.id && key.address >= start && key.address < end {
            knownMdls[key] = nil
        }
        var va = start
        var frames: [PageFrameNumber] = []     // released together: one by one is quadratic
        defer { physical.release(frames) }
        while va < end {
            let vpn = constants.pageNumber(va)
            if let entry = process.pageTable.removeValue(forKey: vpn), entry.pageable {
                switch entry.state {
                case .valid(let pfn): frames.append(pfn)
                case .pagedOut(let slot): pagefile.release(slot)
                case .demandZero: break
                }
            }
            va += constants.pageSize
        }
    }

    /// The lowest-addressed known MDL that holds locked pages of `process` (0 if none is known).
    func lockingMdl(of process: Process) -> VirtualAddress {
        for key in knownMdls.keys.sorted() {
            guard let header = try? inspectHeader(key.address, processId: key.processId) else { continue }
            if header.process == process.eprocess && header.flags.contains(.pagesLocked) { return key.address }
        }
        return 0
    }
}

extension Kernel {
    /// The bytes the user buffers of every live process commit.
    var committedUserBytes: UInt64 {
        processes.values.lazy.filter { !$0.terminated }.flatMap(\.vads).filter { $0.kind == .buffer }.reduce(0) { $0 + ($1.end - $1.start) }
    }
}
