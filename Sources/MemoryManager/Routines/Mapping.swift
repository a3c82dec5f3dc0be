extension MemoryManagerRoutines {
    /// `MmMapLockedPages(Mdl, AccessMode)`: MmMapLockedPagesSpecifyCache(Mdl, AccessMode, MmCached, NULL,
    /// TRUE, HighPagePriority). Kernel mode bug-checks NO_MORE_SYSTEM_PTES when out of PTEs unless the MDL
    /// has MDL_MAPPING_CAN_FAIL; user mode raises. Returns the mapping including the byte offset (before
    /// NT 4.0 SP4: the first page's address).
    public func mapLockedPages(_ mdl: VirtualAddress, accessMode: ProcessorMode) throws(KernelError) -> VirtualAddress? {
        try kernel.enter("MmMapLockedPages")
        return try kernel.mapLockedPages(mdl, accessMode: accessMode, cacheType: .mmCached, requestedAddress: 0,
                                         bugCheckOnFailure: true, legacyEntry: true)
    }

    /// `MmMapLockedPagesSpecifyCache(Mdl, AccessMode, CacheType, RequestedAddress, BugCheckOnFailure, Priority)`.
    ///
    /// Kernel mode: reserves span(StartVa+ByteOffset, ByteCount) system PTEs, maps the PFNs, sets
    /// MappedSystemVa and MDL_MAPPED_TO_SYSTEM_VA (+MDL_PARTIAL_HAS_BEEN_MAPPED for a partial MDL);
    /// NULL when out of PTEs and the MDL has MDL_MAPPING_CAN_FAIL or BugCheckOnFailure is FALSE, else
    /// NO_MORE_SYSTEM_PTES (0, pages, free PTEs, total PTEs). User mode: maps into the current process
    /// (a VAD), raising STATUS_INVALID_ADDRESS, STATUS_CONFLICTING_ADDRESSES, STATUS_NO_MEMORY or
    /// STATUS_INSUFFICIENT_RESOURCES on failure; does not touch the MDL's flags or MappedSystemVa.
    public func mapLockedPagesSpecifyCache(_ mdl: VirtualAddress, accessMode: ProcessorMode, cacheType: MemoryCachingType,
                                           requestedAddress: VirtualAddress, bugCheckOnFailure: Bool,
                                           priority: PagePriority) throws(KernelError) -> VirtualAddress? {
        try kernel.enter("MmMapLockedPagesSpecifyCache")
        return try kernel.mapLockedPages(mdl, accessMode: accessMode, cacheType: cacheType, requestedAddress: requestedAddress,
                                         bugCheckOnFailure: bugCheckOnFailure, legacyEntry: false)
    }

    /// `MmGetSystemAddressForMdl(Mdl)` (macro): MappedSystemVa if the MDL is mapped or describes nonpaged
    /// pool, else MmMapLockedPages(Mdl, KernelMode), which bug-checks when out of PTEs.
    public func getSystemAddressForMdl(_ mdl: VirtualAddress) throws(KernelError) -> VirtualAddress? {
        try kernel.enter("MmGetSystemAddressForMdl")
        let header = try kernel.header(try kernel.openMdl(mdl))
        let remap = kernel.activeMutations.contains(.remapsMappedMdl) && !header.flags.contains(.sourceIsNonpagedPool)
        if !remap && !header.flags.isDisjoint(with: [.mappedToSystemVa, .sourceIsNonpagedPool]) { return header.mappedSystemVa }
        return try kernel.mapLockedPages(mdl, accessMode: .kernelMode, cacheType: .mmCached, requestedAddress: 0,
                                         bugCheckOnFailure: true, legacyEntry: true)
    }

    /// `MmGetSystemAddressForMdlSafe(Mdl, Priority)` (macro): like MmGetSystemAddressForMdl but maps
    /// with MmMapLockedPagesSpecifyCache(…, BugCheckOnFailure FALSE), so it returns NULL on failure.
    public func getSystemAddressForMdlSafe(_ mdl: VirtualAddress, priority: PagePriority) throws(KernelError) -> VirtualAddress? {
        try kernel.enter("MmGetSystemAddressForMdlSafe")
        let header = try kernel.header(try kernel.openMdl(mdl))
        if !header.flags.isDisjoint(with: [.mappedToSystemVa, .sourceIsNonpagedPool]) { return header.mappedSystemVa }
        return try kernel.mapLockedPages(mdl, accessMode: .kernelMode, cacheType: .mmCached, requestedAddress: 0,
                                         bugCheckOnFailure: false, legacyEntry: false)
    }

    /// `MmUnmapLockedPages(BaseAddress, Mdl)`. A system address releases the MDL's system PTEs and clears
    /// MDL_MAPPED_TO_SYSTEM_VA, MDL_PARTIAL_HAS_BEEN_MAPPED and MDL_FREE_EXTRA_PTES (MappedSystemVa keeps
    /// its stale value). A user address removes the user mapping (VAD) in the current process; a user
    /// address that is no such mapping is ignored by a free build and is 0xC4/0xB9 under Driver Verifier.
    ///
    /// Verifier also checks 0x79/0x7A (IRQL), 0xB5 (a partial MDL without a mapping of its own; the
    /// MmPrepareMdlForReuse path, which requires MDL_PARTIAL_HAS_BEEN_MAPPED, passes) [inferred] and 0xB6
    /// (MDL not mapped to system VA).
    public func unmapLockedPages(_ baseAddress: VirtualAddress, _ mdl: VirtualAddress) throws(KernelError) {
        let k = kernel
        try k.enter("MmUnmapLockedPages")
        let m = try k.openMdl(mdl)
        let header = try k.header(m)
        let raw = UInt64(header.flags.rawValue)
        let irql = UInt64(k.irql.rawValue)
        if !k.constants.isUserAddress(baseAddress) {
            try k.verifierCheck(k.irql > .dispatchLevel, 0x79, irql, baseAddress, mdl)
            try k.verifierCheck(header.flags.contains(.partial) && !header.flags.contains(.partialHasBeenMapped),
                                0xB5, mdl, raw, UInt64(MdlFlags.partial.rawValue))
            try k.verifierCheck(!header.flags.contains(.mappedToSystemVa), 0xB6, mdl, raw, UInt64(MdlFlags.mappedToSystemVa.rawValue))
            try k.checkedAssert(k.irql <= .dispatchLevel, .irqlAtMostDispatch, mdl)
            try k.checkedAssert(header.flags.contains(.mappedToSystemVa), .unmapMappedToSystemVa, mdl, raw)
            try k.checkedAssert(!header.flags.contains(.parentMappedSystemVa), .unmapParentMapped, mdl, raw)
            let base = k.constants.pageAlign(baseAddress)
            let live = k.mdlSystemMappings[base].flatMap { $0.mdl == mdl ? $0.pages : nil }
            try k.verifierPteCheck(expectedPages: live, requestedPages: k.span(of: header), requested: base)
            try k.releaseSystemMapping(m, header, base: baseAddress)
            return
        }
        try k.verifierCheck(k.irql > .apcLevel, 0x7A, irql, baseAddress, mdl)
        try k.checkedAssert(k.irql <= .apcLevel, .irqlAtMostApc, mdl)
        let process = k.currentProcess
        guard let index = process.vad(containing: baseAddress),
              case .lockedPagesMapping = process.vads[index].kind else {
            try k.verifierCheck(true, 0xB9, baseAddress, mdl, 0)
            return
        }
        let vad = process.vads.remove(at: index)
        var va = vad.start
        while va < vad.end {
            process.pageTable[k.constants.pageNumber(va)] = nil
            va += k.constants.pageSize
        }
    }
}

extension Kernel {
    /// The shared body of MmMapLockedPages, MmMapLockedPagesSpecifyCache and the two
    /// MmGetSystemAddressForMdl macros. `legacyEntry` selects MmMapLockedPages' Verifier codes.
    func mapLockedPages(_ mdl: VirtualAddress, accessMode: ProcessorMode, cacheType: MemoryCachingType,
                        requestedAddress: VirtualAddress, bugCheckOnFailure: Bool, legacyEntry: Bool) throws(KernelError) -> VirtualAddress? {
        let c = constants
        let m = try openMdl(mdl)
        let header = try header(m)
        let raw = UInt64(header.flags.rawValue)
        let irqlValue = UInt64(irql.rawValue)
        let pages = span(of: header)
        if accessMode == .kernelMode {
            try verifierCheck(irql > .dispatchLevel, legacyEntry ? 0x74 : 0x76, irqlValue, mdl, 0)
            let bad = header.flags.intersection([.mappedToSystemVa, .sourceIsNonpagedPool, .partialHasBeenMapped])
            try verifierCheck(!bad.isEmpty, 0xB2, mdl, raw, UInt64(bad.rawValue))
            try verifierCheck(header.flags.isDisjoint(with: [.pagesLocked, .partial]), 0xB3, mdl, raw, UInt64(MdlFlags.pagesLocked.rawValue))
            let policy = configuration.strictMappingChecks && configuration.verifierPolicyStops
            try verifierCheck(policy && legacyEntry, 0x81, mdl, raw, 0)
            try verifierCheck(policy && !legacyEntry && bugCheckOnFailure, 0x82, mdl, raw, 0)
            try checkedAssert(irql <= .dispatchLevel, .irqlAtMostDispatch, mdl)
            try checkedAssert(header.byteCount != 0, .mapByteCountNonZero, mdl, raw)
            try checkedAssert(bad.isEmpty, .mapNotAlreadyMapped, mdl, raw)
            try checkedAssert(!header.flags.isDisjoint(with: [.pagesLocked, .partial]), .mapLockedOrPartial, mdl, raw)
        } else {
            try verifierCheck(irql > .apcLevel, legacyEntry ? 0x75 : 0x77, irqlValue, mdl, 1)
            try checkedAssert(irql <= .apcLevel, .irqlAtMostApc, mdl)
        }
        if isVerifier { try verifyPagesLocked(m, header, pages: pages, mdl: mdl) }
        guard cacheType.isValid else { return nil }
        let frames = try framesToMap(m, pages: pages)
        if accessMode == .userMode {
            return try mapIntoUserSpace(mdl, header, frames: frames, requestedAddress: requestedAddress, cacheType: cacheType)
        }

        // A reservation of 0 PTEs fails before it asks for any (no fault decision is taken for it).
        guard pages > 0, decide(.systemPtes, amount: pages) == .proceed, let base = systemPtes.reserve(Int(pages)) else {
            if header.flags.contains(.mappingCanFail) || !bugCheckOnFailure { return nil }
            throw bugCheck(BugCheck(BugCheck.noMoreSystemPtes, 0, pages, UInt64(systemPtes.freeCount), UInt64(systemPtes.count)))
        }
        let attribute = activeMutations.contains(.systemMappingIgnoresCacheType) ? .writeBack : CacheAttribute(cacheType)
        for (i, pfn) in frames.enumerated() {
            systemPageTable[c.pageNumber(base) + UInt64(i)] = PageTableEntry(state: .valid(pfn), protection: .readWrite, pageable: false, cache: attribute)
        }
        mdlSystemMappings[base] = (mdl, Int(pages))
        let mapped = c.add(base, UInt64(header.byteOffset))
        try setMappedSystemVa(m, mapped)
        var flags = header.flags
        flags.insert(.mappedToSystemVa)
        if flags.contains(.partial) && !activeMutations.contains(.mapOmitsPartialHasBeenMapped) { flags.insert(.partialHasBeenMapped) }
        try setFlags(m, flags)
        return configuration.version == .nt40sp3 ? base : mapped
    }

    /// The PFNs a mapping writes: one per spanned page, stopping at a (PFN_NUMBER)-1 slot.
    private func framesToMap(_ m: MdlRef, pages: UInt64) throws(KernelError) -> [PageFrameNumber] {
        var frames: [PageFrameNumber] = []
        // A span past the PTE supply cannot be mapped; do not read a huge garbage array for it.
        guard pages <= UInt64(systemPtes.count) || pages <= 4096 else { return frames }
        frames.reserveCapacity(Int(pages))
        var index: UInt64 = 0
        while index < pages {
            let pfn = try pfn(m, index)
            if pfn == constants.emptyPfn { break }
            frames.append(pfn)
            index += 1
        }
        return frames
    }

    /// Driver Verifier's 0x85 (a RAM page that is not locked down) and 0x89 (device memory in an MDL
    /// not marked MDL_IO_SPACE).
    private func verifyPagesLocked(_ m: MdlRef, _ header: MdlHeader, pages: UInt64, mdl: VirtualAddress) throws(KernelError) {
        guard pages <= UInt64(systemPtes.count) else { return }
        var index: UInt64 = 0
        while index < pages {
            let pfn = try pfn(m, index)
            if pfn == constants.emptyPfn { break }
            if let record = physical.record(pfn) {
                let lockedDown = record.lockCount > 0 || record.use == .nonpagedPool
                try verifierCheck(!lockedDown, 0x85, mdl, pages, pfn)
            } else {
                try verifierCheck(!header.flags.contains(.ioSpace), 0x89, mdl, pfnSlotAddress(m, index), pfn)
            }
            index += 1
        }
    }

    private func mapIntoUserSpace(_ mdl: VirtualAddress, _ header: MdlHeader, frames: [PageFrameNumber],
                                  requestedAddress: VirtualAddress, cacheType: MemoryCachingType) throws(KernelError) -> VirtualAddress {
        let c = constants
        let process = currentProcess
        guard !process.terminated, process.id != systemProcessId else { throw .raised(.processIsTerminating) }
        let bytes = UInt64(frames.count) * c.pageSize
        guard bytes > 0 else { throw .raised(.invalidParameter) }
        // Charging the VAD's quota and allocating it come from nonpaged pool.
        if case .fail = decide(.nonpagedPool, amount: 0x40) { throw .raised(.insufficientResources) }
        let start: VirtualAddress
        if requestedAddress != 0 {
            let end = requestedAddress &+ bytes
            guard c.byteOffset(requestedAddress) == 0, end > requestedAddress, end - 1 <= c.highestVadAddress else {
                throw .raised(.invalidAddress)
            }
            guard !process.overlaps(start: requestedAddress, end: end) else { throw .raised(.conflictingAddresses) }
            start = requestedAddress
        } else {
            guard let found = process.findFreeRange(bytes: bytes, lowest: c.lowestUserAddress, limit: c.highestVadAddress) else {
                throw .raised(.noMemory)
            }
            start = found
        }
        process.insert(VirtualAddressDescriptor(start: start, end: start + bytes, kind: .lockedPagesMapping(mdl: mdl)))
        // A page's own cache attribute overrides the request in user space (spec §2.9 step 3): RAM is
        // cached; device memory has no PFN entry to record one, so the request stands.
        let requested = CacheAttribute(cacheType)
        for (i, pfn) in frames.enumerated() {
            let attribute = physical.isInDatabase(pfn) ? CacheAttribute.writeBack : requested
            process.pageTable[c.pageNumber(start) + UInt64(i)] = PageTableEntry(state: .valid(pfn), protection: .readWrite, pageable: false, cache: attribute)
        }
        // Before NT 4.0 SP4 MmMapLockedPages returned the first page's address in either mode.
        return configuration.version == .nt40sp3 ? start : start + UInt64(header.byteOffset)
    }

    /// Releases an MDL's system mapping at `base` (MmUnmapLockedPages' system-space path, also used by
    /// MmUnlockPages, MmPrepareMdlForReuse and IoFreeMdl).
    func releaseSystemMapping(_ m: MdlRef, _ header: MdlHeader, base: VirtualAddress) throws(KernelError) {
        let c = constants
        let pages = span(of: header)
        let pageBase = c.pageAlign(base)
        // Verifier tracks the PTEs whichever call releases them (MmUnlockPages and IoFreeMdl too): an
        // MDL whose MappedSystemVa names no mapping of its own is 0xDA like a bad MmUnmapLockedPages.
        let tracked = mdlSystemMappings[pageBase].flatMap { $0.mdl == m.address ? $0.pages : nil }
        try verifierPteCheck(expectedPages: tracked, requestedPages: pages, requested: pageBase)
        if activeMutations.contains(.unmapKeepsPtes) {
            // Mutation: the PTEs stay valid and reserved.
        } else if pages > 0 && systemPtes.contains(pageBase) {
            let last = min(pages, UInt64(systemPtes.count - systemPtes.index(of: pageBase)))
            for i in 0..<last { systemPageTable[c.pageNumber(pageBase) + i] = nil }
            systemPtes.release(pageBase, pages: Int(pages))
        } else {
            systemPtes.release(pageBase, pages: 0)
        }
        mdlSystemMappings[pageBase] = nil
        var flags = header.flags
        flags.subtract([.mappedToSystemVa, .partialHasBeenMapped, .freeExtraPtes])
        try setFlags(m, flags)
    }
}
