extension MemoryManagerRoutines {
    /// `MmGetPhysicalAddress(BaseAddress)`: the physical address a resident VA translates to, or 0 for a
    /// VA that is not valid (ReactOS returns 0; Windows leaves it unspecified). Any IRQL.
    public func getPhysicalAddress(_ baseAddress: VirtualAddress) throws(KernelError) -> PhysicalAddress {
        try kernel.enter("MmGetPhysicalAddress")
        guard let entry = kernel.pte(baseAddress), entry.isHardwareValid, let pfn = entry.frame else { return 0 }
        return pfn << kernel.constants.pageShift | kernel.constants.byteOffset(baseAddress)
    }

    /// `MmIsAddressValid(VirtualAddress)`: TRUE iff an access would not page-fault right now (the PTE is
    /// valid). Paged-out, demand-zero, no-access and unmapped pages are FALSE. Checks presence, not
    /// writability. IRQL <= DISPATCH_LEVEL.
    public func isAddressValid(_ virtualAddress: VirtualAddress) throws(KernelError) -> Bool {
        try kernel.enter("MmIsAddressValid")
        try kernel.checkedAssert(kernel.irql <= .dispatchLevel, .irqlAtMostDispatch, virtualAddress)
        if kernel.activeMutations.contains(.pagedOutCountsAsValid), case .pagedOut = kernel.pte(virtualAddress)?.state { return true }
        return kernel.pte(virtualAddress)?.isHardwareValid ?? false
    }

    /// `MmMapIoSpace(PhysicalAddress, NumberOfBytes, CacheType)`: maps a physical range (device memory
    /// or RAM) into system space; returns the mapping + BYTE_OFFSET(PhysicalAddress), or NULL for an
    /// invalid cache type or when out of system PTEs. Takes no references and locks nothing.
    /// Verifier: 0xC4/0x73 above DISPATCH_LEVEL, 0xC4/0x83 mapping RAM that is not locked down.
    public func mapIoSpace(_ physicalAddress: PhysicalAddress, numberOfBytes: UInt64, cacheType: MemoryCachingType) throws(KernelError) -> VirtualAddress? {
        let k = kernel
        let c = k.constants
        try k.enter("MmMapIoSpace")
        let bytes = k.lengthParameter(numberOfBytes)
        let irql = UInt64(k.irql.rawValue)
        try k.verifierCheck(k.irql > .dispatchLevel, 0x73, irql, c.pointerBytes == 4 ? physicalAddress & 0xFFFF_FFFF : physicalAddress, bytes)
        try k.checkedAssert(k.irql <= (k.configuration.version <= .nt40 ? .passiveLevel : .dispatchLevel), .irqlAtMostDispatch, physicalAddress)
        try k.checkedAssert(bytes != 0, .mapIoSpaceBytesNonZero, physicalAddress, bytes)
        let cache = MemoryCachingType(rawValue: cacheType.rawValue & 0xFF)
        guard cache.isValid else { return nil }
        let pages = c.spanPages(physicalAddress & 0xFFFF_FFFF, bytes)
        let firstPfn = physicalAddress >> c.pageShift
        if k.isVerifier && pages <= UInt64(k.systemPtes.count) {
            for i in 0..<pages {
                if let record = k.physical.record(firstPfn + i), record.lockCount == 0, record.use != .nonpagedPool {
                    throw k.bugCheck(.verifier(0x83, physicalAddress, bytes, firstPfn + i))
                }
            }
        }
        guard pages > 0, k.decide(.systemPtes, amount: pages) == .proceed, let base = k.systemPtes.reserve(Int(pages)) else { return nil }
        let attribute = CacheAttribute(cache)
        for i in 0..<pages {
            k.systemPageTable[c.pageNumber(base) + i] = PageTableEntry(state: .valid(firstPfn + i), protection: .readWrite, pageable: false, cache: attribute)
        }
        k.ioSpaceMappings[base] = Int(pages)
        return base + c.byteOffset(physicalAddress)
    }

    /// `MmUnmapIoSpace(BaseAddress, NumberOfBytes)`: releases span(BaseAddress, NumberOfBytes) PTEs of an
    /// MmMapIoSpace mapping. A wrong length or address corrupts the PTE accounting on a free build.
    /// Verifier: 0xC4/0x7B above APC_LEVEL.
    public func unmapIoSpace(_ baseAddress: VirtualAddress, numberOfBytes: UInt64) throws(KernelError) {
        let k = kernel
        let c = k.constants
        try k.enter("MmUnmapIoSpace")
        let bytes = k.lengthParameter(numberOfBytes)
        try k.verifierCheck(k.irql > .apcLevel, 0x7B, UInt64(k.irql.rawValue), baseAddress, bytes)
        try k.checkedAssert(k.irql <= .dispatchLevel, .irqlAtMostDispatch, baseAddress)
        let pages = c.spanPages(baseAddress, bytes)
        let base = c.pageAlign(baseAddress)
        // Verifier tracks PTE use: the range must be exactly one live MmMapIoSpace mapping.
        let expected = k.ioSpaceMappings[base]
        try k.verifierPteCheck(expectedPages: expected, requestedPages: pages, requested: base)
        try k.checkedAssert(k.systemPtes.contains(base), .unmapIoSpaceInPteRange, baseAddress, bytes)
        guard k.systemPtes.contains(base) else {
            k.systemPtes.release(base, pages: 0)
            return
        }
        let last = min(pages, UInt64(k.systemPtes.count - k.systemPtes.index(of: base)))
        for i in 0..<last { k.systemPageTable[c.pageNumber(base) + i] = nil }
        k.systemPtes.release(base, pages: Int(pages))
        if k.ioSpaceMappings[base] == Int(pages) { k.ioSpaceMappings[base] = nil }
    }

    /// `MmAllocatePagesForMdl(LowAddress, HighAddress, SkipBytes, TotalBytes)`: an MDL (from nonpaged
    /// pool) describing zero-filled RAM pages between Low and High, possibly fewer than requested (at
    /// most 4 GiB − PAGE_SIZE); NULL if none. StartVa = NULL, ByteOffset = 0, MDL_PAGES_LOCKED set; the
    /// pages hold one lock reference each until MmFreePagesFromMdl. SkipBytes is accepted and ignored
    /// (the simulation has no physical-contiguity constraint). Verifier: 0xC4/0x7E above DISPATCH_LEVEL.
    public func allocatePagesForMdl(lowAddress: PhysicalAddress, highAddress: PhysicalAddress, skipBytes: UInt64,
                                    totalBytes: UInt64) throws(KernelError) -> VirtualAddress? {
        let k = kernel
        let c = k.constants
        try k.enter("MmAllocatePagesForMdl")
        try k.verifierCheck(k.irql > .dispatchLevel, 0x7E, UInt64(k.irql.rawValue), UInt64(Irql.dispatchLevel.rawValue), 0)
        try k.checkedAssert(k.irql <= .apcLevel, .irqlAtMostApc)
        // Test-only slips (EngineMutation), here so that Benchmarks/mutants/70 and 71 still apply below.
        let highRoundedUp = k.activeMutations.contains(.allocatedPagesHighRoundedUp) && c.byteOffset(highAddress) != 0
        let highAddress = highRoundedUp && highAddress <= .max - c.pageSize ? highAddress + c.pageSize : highAddress
        let lowAddress = k.activeMutations.contains(.allocatedPagesIgnoreLow) && lowAddress <= highAddress ? 0 : lowAddress
        let requested = min(totalBytes & c.pointerMask, 0x1_0000_0000 - c.pageSize)
        let wanted = c.bytesToPages(requested)
        guard wanted > 0, lowAddress <= highAddress else { return nil }
        let range = (lowAddress >> c.pageShift)...(highAddress >> c.pageShift)
        var frames: [PageFrameNumber] = []
        while UInt64(frames.count) < wanted {
            guard k.decide(.frame, amount: 1) == .proceed, let pfn = k.physical.allocate(for: .mdlPages, in: range) else { break }
            k.physical.lock(pfn)
            frames.append(pfn)
        }
        guard !frames.isEmpty else { return nil }
        let bytes = UInt64(frames.count) * c.pageSize
        guard let mdl = k.allocatePool(.nonPagedPool, bytes: c.mdlBytes(for: 0, length: bytes)) else {
            for pfn in frames { _ = k.physical.unlock(pfn) }
            k.physical.release(frames)
            return nil
        }
        let m = try k.openMdl(mdl)
        try k.initialize(m, baseVa: 0, length: bytes)
        try k.setProcess(m, 0)
        let recorded = k.activeMutations.contains(.allocatedPfnsReversed) ? Array(frames.reversed()) : frames
        for (i, pfn) in recorded.enumerated() { try k.setPfn(m, UInt64(i), pfn) }
        try k.setFlags(m, .pagesLocked)
        k.track(mdl, .mmAllocatePagesForMdl)
        return mdl
    }

    /// `MmFreePagesFromMdl(Mdl)`: frees the pages MmAllocatePagesForMdl handed out, writes
    /// (PFN_NUMBER)-1 into their slots and clears MDL_PAGES_LOCKED (Windows 7+ also releases a remaining
    /// system mapping). The MDL itself is freed by the caller (ExFreePool). A slot that does not hold
    /// such a page bug-checks MEMORY_MANAGEMENT (0x1236, MDL, PFN slot address, PFN).
    public func freePagesFromMdl(_ mdl: VirtualAddress) throws(KernelError) {
        let k = kernel
        try k.enter("MmFreePagesFromMdl")
        try k.verifierCheck(k.irql > .dispatchLevel, 0x7E, UInt64(k.irql.rawValue), UInt64(Irql.dispatchLevel.rawValue), 0)
        try k.checkedAssert(k.irql <= .apcLevel, .irqlAtMostApc, mdl)
        let m = try k.openMdl(mdl)
        var header = try k.header(m)
        if k.configuration.version >= .nt61 && header.flags.contains(.mappedToSystemVa) {
            try k.releaseSystemMapping(m, header, base: header.mappedSystemVa)
            header = try k.header(m)
        }
        let pages = k.span(of: header)
        var index: UInt64 = 0
        // Freed frames go back to the free list together (one by one is quadratic in the MDL's pages).
        var freed: [PageFrameNumber] = []
        defer { k.physical.release(freed) }
        while index < pages {
            let pfn = try k.pfn(m, index)
            if pfn == k.constants.emptyPfn { break }
            guard let record = k.physical.record(pfn), record.use == .mdlPages, record.lockCount > 0 else {
                throw k.bugCheck(BugCheck(BugCheck.memoryManagement, 0x1236, mdl, k.pfnSlotAddress(m, index), pfn))
            }
            _ = k.physical.unlock(pfn)
            if record.lockCount == 1 { freed.append(pfn) } else { k.physical.setUse(pfn, .pendingFree) }
            try k.setPfn(m, index, k.constants.emptyPfn)
            index += 1
        }
        var flags = header.flags
        flags.remove(.pagesLocked)
        try k.setFlags(m, flags)
    }
}
