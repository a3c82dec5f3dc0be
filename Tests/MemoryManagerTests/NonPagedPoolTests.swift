import MemoryManager
import Testing

/// MmBuildMdlForNonPagedPool (§2.6), MmGetSystemAddressForMdl(Safe) on such an MDL (§2.11), and the
/// side-effect-free field macros (§2.12).
@Suite struct NonPagedPoolTests {
    /// Pool blocks of a page or more are page aligned, so [p+0x10, p+0x2010) spans
    /// (0x10 + 0x2000 + 0xFFF) >> 12 = 3 pages.
    @Test(arguments: [CheckingMode.verifier, .free, .checked])
    func buildOnNonPagedPoolOnX86(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode)
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x3000))
        #expect(pool & 0xFFF == 0)
        let mdl = try #require(try Construction.allocate(k, pool + 0x10, 0x2000))
        try Construction.poke(k, mdl + 8, width: 4, 0x1234_5678)    // garbage Process
        try k.mm.buildMdlForNonPagedPool(mdl)
        let h = try Construction.header(k, mdl)
        #expect(h.flags == [.allocatedFixedSize, .sourceIsNonpagedPool])   // no PAGES_LOCKED [KT-MmMdl]
        #expect(h.process == 0)
        #expect(h.mappedSystemVa == pool + 0x10)
        #expect((h.startVa, h.byteOffset, h.byteCount) == (pool, 0x10, 0x2000))
        for i: UInt64 in 0..<3 {
            let pa = try k.mm.getPhysicalAddress(pool + i * 0x1000)
            #expect(pa != 0)
            #expect(k.inspect.pfn(mdl, i) == pa >> 12)
        }
        let ptes = k.inspect.systemPteUsage.inUse
        #expect(try k.mm.getSystemAddressForMdl(mdl) == pool + 0x10)
        #expect(try k.mm.getSystemAddressForMdlSafe(mdl, priority: .lowPagePriority) == pool + 0x10)
        #expect(k.inspect.systemPteUsage.inUse == ptes)       // nothing was mapped
        #expect(try Construction.header(k, mdl).flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
        try k.io.freeMdl(mdl)
        #expect(k.haltedBy == nil)

        // A 0x1800-byte block, [p+0x20, p+0x1020): 2 pages; still no system PTE in use.
        let small = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x1800))
        let other = try #require(try Construction.allocate(k, small + 0x20, 0x1000))
        try k.mm.buildMdlForNonPagedPool(other)
        let header = try Construction.header(k, other)
        #expect(header.flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
        #expect(header.process == 0)
        #expect(header.mappedSystemVa == small + 0x20)
        #expect(k.inspect.pfn(other, 0) == (try k.mm.getPhysicalAddress(small + 0x20)) >> 12)
        #expect(try k.mm.getSystemAddressForMdl(other) == small + 0x20)
        #expect(try k.mm.getSystemAddressForMdlSafe(other, priority: .lowPagePriority) == small + 0x20)
        #expect(k.inspect.systemPteUsage.inUse == 0)
    }

    @Test func buildOnNonPagedPoolOnX64UsesEightBytePfns() throws {
        let k = try Construction.kernel(.x64)
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x2000))
        let mdl = try #require(try Construction.allocate(k, pool + 0xFF8, 0x10))   // straddles: 2 pages
        try Construction.poke(k, mdl + 16, width: 8, 0xDEAD_BEEF_DEAD_BEEF)         // Process at 16 on x64
        try k.mm.buildMdlForNonPagedPool(mdl)
        let h = try Construction.header(k, mdl)
        #expect(h.process == 0)
        #expect(h.mappedSystemVa == pool + 0xFF8)
        #expect(h.flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
        #expect(k.inspect.pfn(mdl, 0) == (try k.mm.getPhysicalAddress(pool)) >> 12)
        #expect(k.inspect.pfn(mdl, 1) == (try k.mm.getPhysicalAddress(pool + 0x1000)) >> 12)
        // The PFN array starts at offset 48: slot 1 is the 8 bytes at 56.
        let raw = try #require(k.inspect.peek(mdl + 56, count: 8))
        let slot1 = raw.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        #expect(slot1 == (try k.mm.getPhysicalAddress(pool + 0x1000)) >> 12)
    }

    @Test func buildOnACallerInitialisedMdl() throws {
        let k = try Construction.kernel(.x86)
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x1000))
        let mdl = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(mdl, baseVa: pool + 0x20, length: 0x40)
        try k.mm.buildMdlForNonPagedPool(mdl)
        let h = try Construction.header(k, mdl)
        #expect(h.flags == .sourceIsNonpagedPool)
        #expect(h.mappedSystemVa == pool + 0x20)
        #expect(h.process == 0)
        #expect(k.inspect.pfn(mdl, 0) == (try k.mm.getPhysicalAddress(pool)) >> 12)
        #expect(k.inspect.pfn(mdl, 1) == 0xABAB_ABAB)    // only span = 1 slot is written
    }

    /// §2.6: "if the (last) PFN has no PFN-database entry -> |= MDL_IO_SPACE". Device memory mapped with
    /// MmMapIoSpace (the standard PCI bus 0 frame buffer at physical 0xF0000000) has no PFN entry.
    @Test(arguments: [CheckingMode.verifier, .free])
    func buildOnMappedDeviceMemorySetsIoSpace(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode)
        let va = try #require(try k.mm.mapIoSpace(0xF000_0010, numberOfBytes: 0x2000, cacheType: .mmNonCached))
        #expect(va & 0xFFF == 0x10)
        let mdl = try #require(try Construction.allocate(k, va, 0x1000))   // 0x10+0x1000+0xFFF -> 2 pages
        try k.mm.buildMdlForNonPagedPool(mdl)
        let h = try Construction.header(k, mdl)
        #expect(h.flags == [.allocatedFixedSize, .sourceIsNonpagedPool, .ioSpace])
        #expect(h.mappedSystemVa == va)
        #expect(k.inspect.pfn(mdl, 0) == 0xF_0000)
        #expect(k.inspect.pfn(mdl, 1) == 0xF_0001)
        #expect(try k.mm.getSystemAddressForMdlSafe(mdl, priority: .normalPagePriority) == va)
    }

    // MARK: Paged-pool misuse (§2.6)

    @Test func pagedPoolUnderVerifierIsC47F() throws {
        let k = try Construction.kernel(.x86, mode: .verifier)
        let paged = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
        try k.env.writeMemory(paged, [1])                 // make the page resident
        let mdl = try #require(try Construction.allocate(k, paged, 0x1000))
        let check = try #require(Construction.bugCheck { try k.mm.buildMdlForNonPagedPool(mdl) })
        #expect(check.code == 0xC4)
        // (0x7F, IRQL, MDL, flags): PASSIVE_LEVEL, flags = ALLOCATED_FIXED_SIZE 0x8.
        #expect(check.parameterList == [0x7F, 0, mdl, 0x8])
        // A 0x100-byte block: the same.
        let v = try Construction.kernel(.x86, mode: .verifier)
        let block = try #require(try v.env.allocatePool(.pagedPool, bytes: 0x100))
        try v.env.writeMemory(block, [1])
        let small = try #require(try Construction.allocate(v, block, 0x100))
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x7F, 0, small, 0x0008))) { try v.mm.buildMdlForNonPagedPool(small) }
    }

    @Test func pagedPoolOnAFreeBuildJustSetsTheFlag() throws {
        let k = try Construction.kernel(.x86, mode: .free)
        let paged = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
        try k.env.writeMemory(paged, [1])
        let mdl = try #require(try Construction.allocate(k, paged, 0x1000))
        try k.mm.buildMdlForNonPagedPool(mdl)
        let h = try Construction.header(k, mdl)
        #expect(h.flags == [.allocatedFixedSize, .sourceIsNonpagedPool])   // [KT-MmMdl] 198-214
        #expect(h.mappedSystemVa == paged)
        #expect(k.inspect.pfn(mdl, 0) == (try k.mm.getPhysicalAddress(paged)) >> 12)
        // A 0x100-byte block: the same.
        let block = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x100))
        try k.env.writeMemory(block, [1])
        let small = try #require(try Construction.allocate(k, block, 0x100))
        try k.mm.buildMdlForNonPagedPool(small)
        #expect(try Construction.header(k, small).flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
        // A non-resident page: NT 5.x does not check (PFN 0 from the frameless PTE, [KT-MmMdl]).
        let untouched = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
        let other = try #require(try Construction.allocate(k, untouched, 0x10))
        try k.mm.buildMdlForNonPagedPool(other)
        #expect(try Construction.header(k, other).flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
        #expect(k.inspect.pfn(other, 0) == 0)
    }

    /// Windows 10 only (NT 5.x to 6.1 do not check; see ConformanceVersionFactsTests).
    @Test(arguments: [CheckingMode.free, .verifier])
    func nonResidentPageIs1A1240OnWindows10(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: .nt100)
        let paged = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))   // demand-zero, never touched
        #expect(try k.mm.isAddressValid(paged) == false)
        let mdl = try #require(try Construction.allocate(k, paged, 0x1000))
        let check = try #require(Construction.bugCheck { try k.mm.buildMdlForNonPagedPool(mdl) })
        #expect(check.code == 0x1A)
        #expect(check.parameters.0 == 0x1240)
        #expect(check.parameters.1 == mdl)        // P2 = MDL
        // 0x10 bytes of it, with every parameter: P3 = the address.
        let w = try Construction.kernel(.x86, mode: mode, version: .nt100)
        let page = try #require(try w.env.allocatePool(.pagedPool, bytes: 0x1000))
        let small = try #require(try Construction.allocate(w, page, 0x10))
        #expect(throws: KernelError.bugCheck(BugCheck(0x1A, 0x1240, small, page, 0))) { try w.mm.buildMdlForNonPagedPool(small) }
    }

    @Test func pagedOutPageIs1A1240OnWindows10() throws {
        let k = try Construction.kernel(.x86, mode: .free, version: .nt100)
        let paged = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
        try k.env.writeMemory(paged, [1])
        #expect(try k.env.pageOut(paged))
        let mdl = try #require(try Construction.allocate(k, paged, 0x1000))
        let check = try #require(Construction.bugCheck { try k.mm.buildMdlForNonPagedPool(mdl) })
        #expect(check.code == 0x1A)
        #expect(check.parameters.0 == 0x1240)
    }

    // MARK: §2.12: the field macros leave the MDL bytes unchanged

    @Test(arguments: [Architecture.x86, .x64, .alpha])
    func fieldMacrosDoNotChangeTheMdl(arch: Architecture) throws {
        let k = try Construction.kernel(arch)
        let page = k.constants.pageSize
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 2 * page))
        let mdl = try #require(try Construction.allocate(k, pool + 0x30, UInt32(page)))
        try k.mm.buildMdlForNonPagedPool(mdl)
        let bytes = Int(k.constants.mdlHeaderSize + 2 * k.constants.pfnSize)
        let before = try #require(k.inspect.peek(mdl, count: bytes))
        #expect(try k.mm.getMdlVirtualAddress(mdl) == pool + 0x30)
        #expect(try k.mm.getMdlByteCount(mdl) == UInt32(page))
        #expect(try k.mm.getMdlByteOffset(mdl) == 0x30)
        #expect(k.inspect.peek(mdl, count: bytes) == before)
    }
}
