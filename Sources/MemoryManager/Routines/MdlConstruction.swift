/// The Mm* routines and macros of "Address Mappings and MDLs". Each method's doc names the NT routine.
public struct MemoryManagerRoutines {
    let kernel: Kernel
}

extension MemoryManagerRoutines {
    /// `MmSizeOfMdl(Base, Length)`: header plus one PFN_NUMBER per spanned page. No 16-bit truncation,
    /// never fails; Base is used only for its page offset. Any IRQL.
    public func sizeOfMdl(base: VirtualAddress, length: UInt64) throws(KernelError) -> UInt64 {
        try kernel.enter("MmSizeOfMdl")
        // The slip traps explicitly: a bare `_ = length - 1` is dead code the release optimizer removes.
        if kernel.activeMutations.contains(.sizeOfMdlTrapsOnZeroLength), length.subtractingReportingOverflow(1).overflow {
            fatalError("arithmetic overflow computing MmSizeOfMdl's last page (seeded slip size-of-mdl-traps-on-zero-length)")
        }
        return kernel.constants.mdlBytes(for: base, length: kernel.lengthParameter(length))
    }

    /// `MmInitializeMdl(Mdl, BaseVa, Length)` (macro): Next = NULL, Size = (CSHORT)(header + PFNs),
    /// MdlFlags = 0, StartVa, ByteOffset, ByteCount. Process, MappedSystemVa and the PFN array are not touched.
    public func initializeMdl(_ mdl: VirtualAddress, baseVa: VirtualAddress, length: UInt64) throws(KernelError) {
        try kernel.enter("MmInitializeMdl")
        try kernel.checkedAssert(kernel.irql <= .dispatchLevel, .irqlAtMostDispatch, mdl)
        let m = try kernel.openMdl(mdl)
        try kernel.initialize(m, baseVa: baseVa, length: kernel.lengthParameter(length))
        kernel.track(mdl, .mmInitializeMdl, replacing: false)
    }

    /// `MmCreateMdl(MemoryDescriptorList, Base, Length)` (obsolete): with a NULL MDL, allocates
    /// MmSizeOfMdl bytes of nonpaged pool (NULL if that fails); then MmInitializeMdl. Never sets
    /// MDL_ALLOCATED_FIXED_SIZE.
    public func createMdl(_ mdl: VirtualAddress?, base: VirtualAddress, length: UInt64) throws(KernelError) -> VirtualAddress? {
        try kernel.enter("MmCreateMdl")
        let length = kernel.lengthParameter(length)
        var address = mdl ?? 0
        if address == 0 {
            // NT 4.0: allocating callers must be below DISPATCH_LEVEL.
            try kernel.checkedAssert(kernel.irql < .dispatchLevel, .irqlAtMostApc)
            let bytes = kernel.constants.mdlBytes(for: base, length: length)
            try kernel.verifierCheck(kernel.irql > .dispatchLevel, 0x02, UInt64(kernel.irql.rawValue), 0, bytes)
            guard let block = kernel.allocatePool(.nonPagedPool, bytes: bytes) else { return nil }
            address = block
            kernel.track(address, .mmCreateMdl)
        } else {
            kernel.track(address, .mmCreateMdl, replacing: false)
        }
        try kernel.initialize(try kernel.openMdl(address), baseVa: base, length: length)
        return address
    }

    /// `MmGetMdlVirtualAddress(Mdl)` (macro): StartVa + ByteOffset. Any IRQL, no side effects.
    public func getMdlVirtualAddress(_ mdl: VirtualAddress) throws(KernelError) -> VirtualAddress {
        try kernel.enter("MmGetMdlVirtualAddress")
        return kernel.virtualAddress(of: try kernel.header(try kernel.openMdl(mdl)))
    }

    /// `MmGetMdlByteCount(Mdl)` (macro): the ByteCount field.
    public func getMdlByteCount(_ mdl: VirtualAddress) throws(KernelError) -> UInt32 {
        try kernel.enter("MmGetMdlByteCount")
        return try kernel.header(try kernel.openMdl(mdl)).byteCount
    }

    /// `MmGetMdlByteOffset(Mdl)` (macro): the ByteOffset field.
    public func getMdlByteOffset(_ mdl: VirtualAddress) throws(KernelError) -> UInt32 {
        try kernel.enter("MmGetMdlByteOffset")
        return try kernel.header(try kernel.openMdl(mdl)).byteOffset
    }

    /// `MmBuildMdlForNonPagedPool(Mdl)`: fills the PFN array from the PTEs that map the buffer, sets
    /// MDL_SOURCE_IS_NONPAGED_POOL (and MDL_IO_SPACE if the last page is device memory), Process = NULL,
    /// MappedSystemVa = the buffer's own VA. Locks nothing; MDL_PAGES_LOCKED stays clear.
    ///
    /// Misuse: a page of paged pool is 0xC4/0x7F under Driver Verifier (a free build just fills the
    /// PFN). A page that is not resident: up to NT 6.1 nothing checks it, the PFN slot gets the frame
    /// field of the PTE, 0 when the PTE holds no frame ([KT-MmMdl]: Windows Server 2003 returns with
    /// MDL_SOURCE_IS_NONPAGED_POOL set); NT 6.2+ checked builds ASSERT; NT 10.0 free builds (and
    /// Verifier) bug-check 0x1A/0x1240 (MDL, VA of the page, 0).
    public func buildMdlForNonPagedPool(_ mdl: VirtualAddress) throws(KernelError) {
        try kernel.enter("MmBuildMdlForNonPagedPool")
        try kernel.checkedAssert(kernel.irql <= .dispatchLevel, .irqlAtMostDispatch, mdl)
        let m = try kernel.openMdl(mdl)
        kernel.track(mdl, .usedAsMdl, replacing: false)
        let header = try kernel.header(m)
        let c = kernel.constants
        try kernel.checkedAssert(header.byteCount != 0, .buildNonPagedByteCountNonZero, mdl, UInt64(header.flags.rawValue))
        try kernel.checkedAssert(header.flags.isDisjoint(with: [.pagesLocked, .mappedToSystemVa, .sourceIsNonpagedPool, .partial]),
                                 .buildNonPagedFlagsClear, mdl, UInt64(header.flags.rawValue))
        try kernel.setProcess(m, 0)
        let base = kernel.virtualAddress(of: header)
        try kernel.setMappedSystemVa(m, base)
        let pages = c.spanPages(base, UInt64(header.byteCount))
        var lastPfn: PageFrameNumber = 0
        var index: UInt64 = 0
        let version = kernel.configuration.version
        while index < pages {
            let va = c.add(header.startVa, index &* c.pageSize)
            let entry = kernel.pte(va)
            if entry?.isHardwareValid != true && version >= .nt62 {
                try kernel.checkedAssert(false, .buildNonPagedResident, mdl, UInt64(header.flags.rawValue))
                if version >= .nt100 { throw kernel.bugCheck(BugCheck(BugCheck.memoryManagement, 0x1240, mdl, va, 0)) }
            }
            try kernel.verifierCheck(entry?.pageable == true, 0x7F, UInt64(kernel.irql.rawValue), mdl, UInt64(header.flags.rawValue))
            let pfn = entry?.frame ?? 0
            try kernel.setPfn(m, index, pfn)
            lastPfn = pfn
            index += 1
        }
        var flags = try kernel.flags(m)
        flags.insert(.sourceIsNonpagedPool)
        if pages > 0 && !kernel.physical.isInDatabase(lastPfn) { flags.insert(.ioSpace) }
        try kernel.setFlags(m, flags)
    }

    /// `MmPrepareMdlForReuse(Mdl)` (macro): a partial MDL with its own mapping
    /// (MDL_PARTIAL_HAS_BEEN_MAPPED) is unmapped; anything else is only ASSERTed about.
    public func prepareMdlForReuse(_ mdl: VirtualAddress) throws(KernelError) {
        try kernel.enter("MmPrepareMdlForReuse")
        let m = try kernel.openMdl(mdl)
        let header = try kernel.header(m)
        if header.flags.contains(.partialHasBeenMapped) {
            try kernel.checkedAssert(header.flags.contains(.partial), .prepareForReusePartial, mdl, UInt64(header.flags.rawValue))
            try unmapLockedPages(header.mappedSystemVa, mdl)
        } else if !header.flags.contains(.partial) {
            try kernel.checkedAssert(!header.flags.contains(.mappedToSystemVa), .prepareForReuseNotMapped, mdl, UInt64(header.flags.rawValue))
        }
    }
}

extension Kernel {
    /// A Length parameter as the routine receives it: ULONG on NT 4.0, SIZE_T later.
    func lengthParameter(_ length: UInt64) -> UInt64 {
        configuration.version <= .nt40 ? length & 0xFFFF_FFFF : length & constants.pointerMask
    }

    /// The body of MmInitializeMdl.
    func initialize(_ m: MdlRef, baseVa: VirtualAddress, length: UInt64) throws(KernelError) {
        let c = constants
        try setNext(m, 0)
        try setSize(m, c.mdlBytes(for: baseVa, length: length))
        try setFlags(m, [])
        try setStartVa(m, c.pageAlign(baseVa))
        try setByteOffset(m, c.byteOffset(activeMutations.contains(.byteOffsetOffByOne) ? baseVa &+ 1 : baseVa))
        try setByteCount(m, length)
    }
}
