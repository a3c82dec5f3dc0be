extension MemoryManagerRoutines {
    /// `MmProbeAndLockPages(Mdl, AccessMode, Operation)`: makes the buffer resident, takes one lock
    /// reference per RAM page, fills the PFN array, sets MDL_PAGES_LOCKED (and MDL_WRITE_OPERATION
    /// unless IoReadAccess, MDL_IO_SPACE for device memory) and Process (the current process for a
    /// user buffer, NULL for a system buffer). Every failure is a raised exception:
    /// STATUS_ACCESS_VIOLATION for a bad, no-access or (for write) read-only user range, or a user-mode
    /// call on a range past MmUserProbeAddress, empty or wrapping; STATUS_IN_PAGE_ERROR when a page-in
    /// fails; STATUS_WORKING_SET_QUOTA past IoPageLockLimit. Nothing stays locked after a raise.
    public func probeAndLockPages(_ mdl: VirtualAddress, accessMode: ProcessorMode, operation: LockOperation) throws(KernelError) {
        let k = kernel
        let c = k.constants
        try k.enter("MmProbeAndLockPages")
        let m = try k.openMdl(mdl)
        k.track(mdl, .usedAsMdl, replacing: false)
        let header = try k.header(m)
        let irql = UInt64(k.irql.rawValue)
        try k.verifierCheck(k.irql > .dispatchLevel, 0x70, irql, mdl, UInt64(accessMode.rawValue))
        try k.checkedAssert(k.irql <= .dispatchLevel, .irqlAtMostDispatch, mdl)
        let forbidden: MdlFlags = [.pagesLocked, .mappedToSystemVa, .sourceIsNonpagedPool, .partial, .ioSpace]
        let bad = header.flags.intersection(forbidden)
        try k.verifierCheck(!bad.isEmpty, 0xB0, mdl, UInt64(header.flags.rawValue), UInt64(bad.rawValue))
        try k.checkedAssert(bad.isEmpty, .probeFlagsClear, mdl, UInt64(header.flags.rawValue))
        try k.checkedAssert(header.byteCount != 0, .probeByteCountNonZero, mdl, UInt64(header.flags.rawValue))
        try k.checkedAssert(UInt64(header.byteOffset) < c.pageSize && c.byteOffset(header.startVa) == 0,
                            .probeHeaderWellFormed, mdl, UInt64(header.flags.rawValue))

        let address = k.virtualAddress(of: header)
        let lastAddress = c.add(address, UInt64(header.byteCount))
        let pages = c.spanPages(address, UInt64(header.byteCount))

        // User-mode callers may only lock a non-empty, non-wrapping range below MmUserProbeAddress.
        if accessMode != .kernelMode && (lastAddress > c.userProbeAddress || address >= lastAddress) {
            try k.setPfn(m, 0, c.emptyPfn)
            throw .raised(.accessViolation)
        }
        let userBuffer = address <= c.highestUserAddress
        let limit = k.configuration.lockLimitPages
        if limit != 0 && k.systemLockedPages &+ pages > limit {
            throw .raised(.workingSetQuota)
        }

        // Probe: touch every page (faulting it in), write-probing user pages for a write lock.
        let writeProbe = operation != .ioReadAccess && userBuffer
        var index: UInt64 = 0
        while index < pages {
            try k.setPfn(m, index, c.emptyPfn)
            let va = index == 0 ? address : c.add(c.pageAlign(address), index &* c.pageSize)
            do {
                _ = try k.resolve(va, write: writeProbe && c.isUserAddress(va), .probe)
            } catch {
                if case .raised = error { try k.setProcess(m, 0) }
                throw error
            }
            index += 1
        }

        var flags = try k.flags(m)
        let writes = k.activeMutations.contains(.modifyAccessNotWrite) ? operation == .ioWriteAccess : operation != .ioReadAccess
        if writes { flags.insert(.writeOperation) } else { flags.remove(.writeOperation) }
        flags.insert(.pagesLocked)
        try k.setFlags(m, flags)
        let process: Process? = header.startVa > c.highestUserAddress ? nil : k.currentProcess
        if let process {
            process.lockedPages += Int64(pages)
            try k.setProcess(m, process.eprocess)
        } else {
            if k.activeMutations.contains(.probeChargesSystemBuffers) { k.currentProcess.lockedPages += Int64(pages) }
            try k.setProcess(m, 0)
        }
        // System buffers are locked as if for read: write access is not re-checked.
        let writeLock = operation != .ioReadAccess && process != nil

        // Lock: take a reference on every RAM page; device memory marks the MDL as I/O space.
        index = 0
        while index < pages {
            let va = c.add(c.pageAlign(address), index &* c.pageSize)
            let pfn: PageFrameNumber
            do {
                pfn = try k.resolve(va, write: writeLock && c.isUserAddress(va), .probe)
            } catch {
                if case .raised = error { try k.unlockBody(m, mdl) }
                throw error
            }
            if k.physical.lock(pfn) {
                k.systemLockedPages &+= 1
            } else {
                try k.verifierCheck(k.configuration.verifierPolicyStops, 0x6F, mdl, pfn, k.physical.highestPfn)
                flags.insert(.ioSpace)
                try k.setFlags(m, flags)
            }
            try k.setPfn(m, index, pfn)
            index += 1
        }
    }

    /// `MmUnlockPages(Mdl)`: releases the MDL's system mapping if it has one, drops one lock reference
    /// per page (stopping at the first (PFN_NUMBER)-1 slot), subtracts the span from the process's
    /// locked-page count and clears MDL_PAGES_LOCKED. Process, MDL_WRITE_OPERATION and the PFN array
    /// are left as they were.
    ///
    /// Misuse: under Driver Verifier 0xC4/0x78 (IRQL), 0xB4 (partial), 0x7D (nonpaged pool), 0x7C (not
    /// locked). In every mode, a process that would go below zero locked pages bug-checks
    /// PROCESS_HAS_LOCKED_PAGES (1, MDL, locked pages, 0), and a page unlocked more often than locked
    /// bug-checks PFN_LIST_CORRUPT (7, PFN, share count, 0).
    public func unlockPages(_ mdl: VirtualAddress) throws(KernelError) {
        let k = kernel
        try k.enter("MmUnlockPages")
        let m = try k.openMdl(mdl)
        let flags = try k.flags(m)
        let raw = UInt64(flags.rawValue)
        try k.verifierCheck(k.irql > .dispatchLevel, 0x78, UInt64(k.irql.rawValue), mdl, 0)
        try k.verifierCheck(flags.contains(.partial), 0xB4, mdl, raw, UInt64(MdlFlags.partial.rawValue))
        try k.verifierCheck(flags.contains(.sourceIsNonpagedPool), 0x7D, mdl, raw, 0)
        try k.verifierCheck(!flags.contains(.pagesLocked), 0x7C, mdl, raw, 0)
        try k.checkedAssert(k.irql <= .dispatchLevel, .irqlAtMostDispatch, mdl)
        try k.checkedAssert(flags.contains(.pagesLocked), .unlockPagesLocked, mdl, raw)
        try k.checkedAssert(flags.isDisjoint(with: [.sourceIsNonpagedPool, .partial]), .unlockNotNonpagedOrPartial, mdl, raw)
        try k.unlockBody(m, mdl)
    }
}

extension Kernel {
    /// MmUnlockPages' algorithm, also the cleanup path of a failed MmProbeAndLockPages.
    func unlockBody(_ m: MdlRef, _ mdl: VirtualAddress) throws(KernelError) {
        var header = try header(m)
        if header.flags.contains(.mappedToSystemVa) {
            try releaseSystemMapping(m, header, base: header.mappedSystemVa)
            header = try self.header(m)
        }
        let pages = span(of: header)
        if let process = process(named: header.process) {
            if process.lockedPages < Int64(pages) {
                throw bugCheck(BugCheck(BugCheck.processHasLockedPages, 1, mdl, UInt64(max(0, process.lockedPages)), 0))
            }
            process.lockedPages -= Int64(pages)
        }
        let ioSpace = header.flags.contains(.ioSpace)
        var index: UInt64 = 0
        while index < pages {
            let pfn = try self.pfn(m, index)
            if pfn == constants.emptyPfn { break }
            if physical.isInDatabase(pfn) || !ioSpace {
                if activeMutations.contains(.unlockKeepsLockCounts) { index += 1; continue }
                guard physical.unlock(pfn) else {
                    throw bugCheck(BugCheck(BugCheck.pfnListCorrupt, 7, pfn, shareCount(pfn), 0))
                }
                // MmAllocatePagesForMdl's pages were never counted: the count stops at zero.
                if systemLockedPages > 0 { systemLockedPages -= 1 }
            }
            index += 1
        }
        var flags = header.flags
        flags.remove(.pagesLocked)
        if ioSpace { flags.remove(.ioSpace) }
        try setFlags(m, flags)
    }

    /// Number of working-set PTEs sharing a frame (0 or 1: the simulation maps each page once per owner).
    func shareCount(_ pfn: PageFrameNumber) -> UInt64 {
        guard let record = physical.record(pfn) else { return 0 }
        switch record.use {
        case .processPage, .pagedPool, .nonpagedPool: return 1
        default: return 0
        }
    }
}
