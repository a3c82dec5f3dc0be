/// The Io* routines of "Address Mappings and MDLs".
public struct IoManagerRoutines {
    let kernel: Kernel
}

extension IoManagerRoutines {
    /// `IoAllocateMdl(VirtualAddress, Length, SecondaryBuffer, ChargeQuota, Irp)`: an initialised MDL or NULL.
    ///
    /// Spans up to the fixed-size threshold (23 pages on NT 4/5, 17 from NT 6.0) come from the MDL
    /// lookaside list (a block sized for the threshold) and carry MDL_ALLOCATED_FIXED_SIZE; larger ones
    /// are pool blocks of exactly header + PFNs. Size is the needed size truncated to 16 bits. Length
    /// limits: NT 4/5 fail when header + PFNs exceeds 0xFFFF or Length >= 2 GiB; NT 6.0 fails
    /// Length >= 2 GiB; NT 6.1 and later accept any ULONG. On a 32-bit target a Length near 4 GiB makes
    /// the span wrap to a few pages: NT 4/5 and 6.0 refuse such lengths anyway, NT 6.1 allocates a pool
    /// block sized from the wrapped span (no MDL_ALLOCATED_FIXED_SIZE), NT 6.2 and later take it from
    /// the lookaside ([SERGE] rows 0xFFFFF000-0xFFFFFFFF). The VA is not validated. With an IRP:
    /// SecondaryBuffer FALSE replaces Irp->MdlAddress;
    /// TRUE appends to the chain (an empty chain dereferences NULL, as on Windows). Under Driver Verifier
    /// the lookaside is bypassed so special pool sees every MDL.
    public func allocateMdl(virtualAddress: VirtualAddress, length: UInt32, secondaryBuffer: Bool, chargeQuota: Bool,
                            irp: VirtualAddress) throws(KernelError) -> VirtualAddress? {
        let k = kernel
        let c = k.constants
        try k.enter("IoAllocateMdl")
        try k.checkedAssert(k.irql <= .dispatchLevel, .irqlAtMostDispatch, virtualAddress, UInt64(length))
        let pages = c.spanPages(virtualAddress, UInt64(length))
        let needed = c.mdlHeaderSize + pages * c.pfnSize
        switch k.configuration.version {
        case .nt40sp3, .nt40, .nt5: if needed > 0xFFFF || length >= 0x8000_0000 { return nil }
        case .nt60: if length >= 0x8000_0000 { return nil }
        case .nt61, .nt62, .nt100: break
        }
        let threshold: UInt64 = k.configuration.version >= .nt60 ? 17 : 23
        // The ULONG_PTR sum behind the span overflowed: only a 32-bit target, only a Length near 4 GiB.
        let wrapped = c.byteOffset(virtualAddress) + UInt64(length) + c.pageSize - 1 > c.pointerMask
        let fixedSize = pages <= threshold && !(wrapped && k.configuration.version == .nt61)
        let blockBytes = fixedSize ? c.mdlHeaderSize + threshold * c.pfnSize : needed
        try k.verifierCheck(k.irql > .dispatchLevel, 0x02, UInt64(k.irql.rawValue), UInt64(PoolType.nonPagedPool.rawValue), blockBytes)
        let mdl: VirtualAddress
        if fixedSize && !k.isVerifier, let recycled = k.mdlLookaside.popLast() {
            mdl = recycled
        } else {
            guard let block = k.allocatePool(.nonPagedPool, bytes: blockBytes) else { return nil }
            mdl = block
        }
        k.track(mdl, .ioAllocateMdl)
        let m = try k.openMdl(mdl)
        try k.initialize(m, baseVa: virtualAddress, length: UInt64(length))
        if fixedSize { try k.setFlags(m, .allocatedFixedSize) }
        guard irp != 0 else { return mdl }
        let mdlAddressField = c.add(irp, c.pointerBytes)
        if !secondaryBuffer {
            try k.writeInteger(mdlAddressField, width: Int(c.pointerBytes), mdl)
            return mdl
        }
        var tail = try k.readInteger(mdlAddressField, width: Int(c.pointerBytes))
        var steps = 0
        while true {
            let next = try k.readInteger(c.add(tail, c.mdlLayout.next), width: Int(c.pointerBytes))
            if next == 0 { break }
            tail = next
            steps += 1
            // A cyclic chain (an MDL freed and reallocated while still linked) makes Windows loop forever.
            if steps > 1 << 16 { throw k.bugCheck(BugCheck(BugCheck.hangConvention, 0, irp, mdl, 0)) }
        }
        try k.writeInteger(c.add(tail, c.mdlLayout.next), width: Int(c.pointerBytes), mdl)
        return mdl
    }

    /// `IoBuildPartialMdl(SourceMdl, TargetMdl, VirtualAddress, Length)`: makes the target describe a
    /// sub-range of the source. Length 0 means "to the end of the source". Target gets StartVa,
    /// ByteOffset, ByteCount, the source's Process, MappedSystemVa = source's + offset, flags =
    /// (its own FIXED_SIZE|MUST_SUCCEED) | (source's IO_PAGE_READ|SOURCE_IS_NONPAGED_POOL|
    /// MAPPED_TO_SYSTEM_VA|IO_SPACE) | PARTIAL, and the source's PFNs for the range. Next and Size are
    /// not touched. Windows' range checks: TARGET_MDL_TOO_SMALL (0x40) when the target's Size cannot
    /// hold the PFNs, and from NT 6.0 INVALID_MDL_RANGE (0x12E) outside the source (spec §2.14 predicates).
    public func buildPartialMdl(source: VirtualAddress, target: VirtualAddress, virtualAddress: VirtualAddress,
                                length: UInt32) throws(KernelError) {
        let k = kernel
        let c = k.constants
        try k.enter("IoBuildPartialMdl")
        try k.checkedAssert(k.irql <= (k.configuration.version <= .nt40 ? .passiveLevel : .dispatchLevel), .irqlAtMostDispatch, target)
        let s = try k.openMdl(source)
        let t = try k.openMdl(target)
        k.track(source, .usedAsMdl, replacing: false)
        k.track(target, .usedAsMdl, replacing: false)
        let sourceHeader = try k.header(s)
        let targetHeader = try k.header(t)
        let sourceVa = k.virtualAddress(of: sourceHeader)
        let offset = (virtualAddress &- sourceHeader.startVa &- UInt64(sourceHeader.byteOffset)) & 0xFFFF_FFFF
        var length = UInt64(length)
        if length == 0 { length = (UInt64(sourceHeader.byteCount) &- offset) & 0xFFFF_FFFF }
        if k.configuration.version >= .nt60 {
            let outside = virtualAddress < sourceVa || virtualAddress &+ length > sourceVa &+ UInt64(sourceHeader.byteCount)
            if outside { throw k.bugCheck(BugCheck(BugCheck.invalidMdlRange, source, target, virtualAddress, length)) }
        }
        let pages = c.spanPages(virtualAddress, length)
        // A Size below the header holds no PFN slots; a zero-page span still fits in none (conventions).
        let size = UInt64(UInt16(bitPattern: targetHeader.size))
        let capacity = size < c.mdlHeaderSize ? 0 : (size - c.mdlHeaderSize) / c.pfnSize
        if pages > capacity {
            throw k.bugCheck(BugCheck(BugCheck.targetMdlTooSmall))
        }
        try k.setStartVa(t, c.pageAlign(virtualAddress))
        try k.setProcess(t, sourceHeader.process)
        try k.setByteCount(t, length)
        try k.setByteOffset(t, c.byteOffset(virtualAddress))
        var flags = targetHeader.flags.intersection([.allocatedFixedSize, .allocatedMustSucceed])
        flags.formUnion(sourceHeader.flags.intersection([.ioPageRead, .sourceIsNonpagedPool, .mappedToSystemVa, .ioSpace]))
        flags.insert(.partial)
        try k.setFlags(t, flags)
        try k.setMappedSystemVa(t, c.add(sourceHeader.mappedSystemVa, offset))
        let first = (((c.pageAlign(virtualAddress) &- sourceHeader.startVa) & c.pointerMask) >> c.pageShift)
            &+ (k.activeMutations.contains(.partialMdlSkipsFirstPfn) ? 1 : 0)
        var index: UInt64 = 0
        while index < pages {
            try k.setPfn(t, index, try k.pfn(s, first &+ index))
            index += 1
        }
    }

    /// `IoFreeMdl(Mdl)`: MmPrepareMdlForReuse (a partial MDL's own mapping is released), then the block
    /// goes back to the lookaside (MDL_ALLOCATED_FIXED_SIZE) or to pool. Never frees the Next chain.
    /// A non-partial MDL still mapped leaks its PTEs on a free build and is 0xC4/0xB8 under Driver
    /// Verifier; locked pages stay locked (and bug-check later at process exit). Freeing a block that is
    /// not allocated is BAD_POOL_CALLER (7, 0, 0, address); under Verifier special pool catches a double
    /// free first (0xD5). Freeing a fixed-size MDL that already sits on the lookaside list never returns
    /// on Windows ("hangs on all Windows, even crashes on Vista", [SERGE] IoMdl.c): the hang convention,
    /// 0xE2 (0, 0, MDL, 0), in free and checked builds.
    public func freeMdl(_ mdl: VirtualAddress) throws(KernelError) {
        let k = kernel
        try k.enter("IoFreeMdl")
        try k.verifierCheck(k.irql > .dispatchLevel, 0x12, UInt64(k.irql.rawValue), UInt64(PoolType.nonPagedPool.rawValue), mdl)
        try k.checkedAssert(k.irql <= .dispatchLevel, .irqlAtMostDispatch, mdl)
        let m = try k.openMdl(mdl)
        if k.mdlLookaside.contains(mdl) {
            throw k.bugCheck(BugCheck(BugCheck.hangConvention, 0, 0, mdl, 0))
        }
        let header = try k.header(m)
        let raw = UInt64(header.flags.rawValue)
        if header.flags.contains(.partialHasBeenMapped) {
            try k.checkedAssert(header.flags.contains(.partial), .prepareForReusePartial, mdl, raw)
            try k.releaseSystemMapping(m, header, base: header.mappedSystemVa)
        } else if !header.flags.contains(.partial) {
            try k.verifierCheck(header.flags.contains(.mappedToSystemVa), 0xB8, mdl, raw, 0)
            try k.checkedAssert(!header.flags.contains(.mappedToSystemVa), .freeMdlNotMapped, mdl, raw)
        }
        k.knownMdls[k.location(mdl)] = nil
        if header.flags.contains(.allocatedFixedSize) && !k.isVerifier && k.mdlLookaside.count < k.mdlLookasideDepth {
            k.mdlLookaside.append(mdl)
            return
        }
        try k.freePoolBlock(mdl)
    }
}

extension Kernel {
    /// ExFreePool: a block that is not allocated is BAD_POOL_CALLER (7, 0, 0, address).
    func freePoolBlock(_ va: VirtualAddress) throws(KernelError) {
        let freed = nonpagedPool.contains(va) ? nonpagedPool.free(va) : pagedPool.contains(va) ? pagedPool.free(va) : nil
        guard let size = freed else { throw bugCheck(BugCheck(BugCheck.badPoolCaller, 7, 0, 0, va)) }
        // MDLs that lived anywhere in the block (caller-allocated ones may sit inside it) are gone.
        for key in knownMdls.keys where key.processId == nil && key.address >= va && key.address - va < size { knownMdls[key] = nil }
    }
}

/// The Hal* routine of "Address Mappings and MDLs".
public struct HalRoutines {
    let kernel: Kernel
}

extension HalRoutines {
    /// `HalTranslateBusAddress(InterfaceType, BusNumber, BusAddress, AddressSpace, TranslatedAddress)`:
    /// TRUE with the system physical address (and the space it lives in, 0 memory / 1 I/O port, written
    /// back to `addressSpace`) when the bus exists and decodes the address; FALSE otherwise, leaving both
    /// out-parameters unchanged.
    public func translateBusAddress(_ interfaceType: InterfaceType, busNumber: UInt32, busAddress: PhysicalAddress,
                                    addressSpace: inout UInt32, translatedAddress: inout PhysicalAddress) throws(KernelError) -> Bool {
        try kernel.enter("HalTranslateBusAddress")
        try kernel.checkedAssert(kernel.irql <= .dispatchLevel, .irqlAtMostDispatch, busAddress)
        guard let result = kernel.buses.translate(interfaceType, bus: busNumber, address: busAddress, space: addressSpace) else { return false }
        translatedAddress = result.address
        addressSpace = result.space
        return true
    }
}
