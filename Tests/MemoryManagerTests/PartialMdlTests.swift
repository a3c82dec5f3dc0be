import MemoryManager
import Testing

/// IoBuildPartialMdl (§2.14) and MmPrepareMdlForReuse (§2.13).
///
/// Fixture: a 4-page user buffer `b`; the source MDL describes [b+0x100, b+0x3100) — span
/// (0x100 + 0x3000 + 0xFFF) >> 12 = 4 pages — and is probe-locked for write. Some tests take a longer
/// source, [b+0x100, b+0x3900) (`sourceLength: 0x3800`), which spans the same 4 pages.
@Suite struct PartialMdlTests {
    struct Fixture {
        let k: Kernel
        let buffer: VirtualAddress
        let source: VirtualAddress
        let sourcePfns: [PageFrameNumber]
        let eprocess: VirtualAddress
    }

    private func fixture(_ version: WindowsVersion = .nt5, mode: CheckingMode = .verifier, sourceLength: UInt32 = 0x3000) throws -> Fixture {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x4000, protection: .readWrite))
        for page in 0..<4 { try k.env.writeMemory(buffer + UInt64(page) * 0x1000 + 0x100, [UInt8(0xA0 + page)]) }
        let source = try #require(try Construction.allocate(k, buffer + 0x100, sourceLength))
        try k.mm.probeAndLockPages(source, accessMode: .kernelMode, operation: .ioWriteAccess)
        let pfns = try (0..<4).map { try #require(k.inspect.pfn(source, UInt64($0))) }
        let eprocess = try #require(k.inspect.processes.first { $0.id == k.currentProcessId }).eprocess
        return Fixture(k: k, buffer: buffer, source: source, sourcePfns: pfns, eprocess: eprocess)
    }

    @Test func fixtureSourceIsAsTheSpecDescribes() throws {
        let f = try fixture()
        let h = try Construction.header(f.k, f.source)
        #expect(h.flags == [.allocatedFixedSize, .pagesLocked, .writeOperation])
        #expect(h.process == f.eprocess)          // §2.7 step 6: user buffer -> current process
        #expect(Set(f.sourcePfns).count == 4)
        #expect(!f.sourcePfns.contains(0) && !f.sourcePfns.contains(0xFFFF_FFFF))
    }

    @Test func targetFieldsFlagsAndPfns() throws {
        let f = try fixture()
        let k = f.k
        try Construction.poke(k, f.source + 12, width: 4, 0x0C00_0100)   // source MappedSystemVa (unmapped)
        let target = try #require(try Construction.allocate(k, 0, 0x4000))  // 4 PFN slots, Size 44
        try Construction.poke(k, target, width: 4, 0x0BAD_0000)             // a Next link to preserve
        try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x1100, length: 0x1800)
        let h = try Construction.header(k, target)
        #expect(h.startVa == f.buffer + 0x1000)
        #expect(h.byteOffset == 0x100)
        #expect(h.byteCount == 0x1800)
        #expect(h.process == f.eprocess)
        // Offset = (b+0x1100 - b) - 0x100 = 0x1000; MappedSystemVa = source's + 0x1000.
        #expect(h.mappedSystemVa == 0x0C00_1100)
        // PAGES_LOCKED and WRITE_OPERATION are not copied; the target's FIXED_SIZE stays.
        #expect(h.flags == [.allocatedFixedSize, .partial])
        // span(b+0x1100, 0x1800) = (0x100+0x1800+0xFFF)>>12 = 2 pages, from source page index 1.
        #expect(k.inspect.pfn(target, 0) == f.sourcePfns[1])
        #expect(k.inspect.pfn(target, 1) == f.sourcePfns[2])
        #expect(h.next == 0x0BAD_0000)      // Next untouched
        #expect(h.size == 44)               // Size untouched (28 + 4*4 from IoAllocateMdl)
        #expect(try k.mm.getMdlVirtualAddress(target) == f.buffer + 0x1100)

        // The longer source, its MappedSystemVa left as it is: a sub-range starting in the source's second
        // page, b+0x1800 for 0x1000 bytes, takes source pages 1 and 2.
        let g = try fixture(sourceLength: 0x3800)
        let other = try #require(try Construction.allocate(g.k, 0, 0x3000))
        let otherSize = try Construction.header(g.k, other).size
        try g.k.io.buildPartialMdl(source: g.source, target: other, virtualAddress: g.buffer + 0x1800, length: 0x1000)
        let header = try Construction.header(g.k, other)
        let sourceHeader = try Construction.header(g.k, g.source)
        #expect(header.startVa == g.buffer + 0x1000)
        #expect(header.byteOffset == 0x800)
        #expect(header.byteCount == 0x1000)
        #expect(header.process == sourceHeader.process)
        #expect(header.flags == [.allocatedFixedSize, .partial])   // PAGES_LOCKED and WRITE_OPERATION are not copied
        #expect(header.size == otherSize)                          // Size untouched
        #expect(g.k.inspect.pfn(other, 0) == g.k.inspect.pfn(g.source, 1))
        #expect(g.k.inspect.pfn(other, 1) == g.k.inspect.pfn(g.source, 2))
        // MappedSystemVa = source's + (VA − source VA), computed even though the source is unmapped.
        #expect(header.mappedSystemVa == (sourceHeader.mappedSystemVa &+ 0x1700) & 0xFFFF_FFFF)
    }

    @Test func lengthZeroMeansToTheEndOfTheSource() throws {
        let f = try fixture()
        let target = try #require(try Construction.allocate(f.k, 0, 0x4000))
        try f.k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x1100, length: 0)
        let h = try Construction.header(f.k, target)
        #expect(h.byteCount == 0x2000)     // source ends at b+0x3100; 0x3100 - 0x1100
        // span(b+0x1100, 0x2000) = 3 pages: source PFNs 1, 2, 3.
        #expect(f.k.inspect.pfn(target, 0) == f.sourcePfns[1])
        #expect(f.k.inspect.pfn(target, 1) == f.sourcePfns[2])
        #expect(f.k.inspect.pfn(target, 2) == f.sourcePfns[3])
    }

    @Test func partialOfTheFirstByteUsesPfnIndexZero() throws {
        let f = try fixture()
        let target = try #require(try Construction.allocate(f.k, 0, 0x1000))
        try f.k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x100, length: 1)
        let h = try Construction.header(f.k, target)
        #expect((h.startVa, h.byteOffset, h.byteCount) == (f.buffer, 0x100, 1))
        #expect(f.k.inspect.pfn(target, 0) == f.sourcePfns[0])
    }

    @Test func onlyTheFourSourceFlagsAreCopiedAndOnlyFixedAndMustSucceedAreKept() throws {
        let f = try fixture()
        let k = f.k
        let target = try #require(try Construction.allocate(k, 0, 0x4000))
        try Construction.poke(k, f.source + 6, width: 2, 0xFFFF)   // every source flag
        try Construction.poke(k, target + 6, width: 2, 0xFFFF)     // every target flag
        try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x1100, length: 0x100)
        // kept: FIXED 0x8 | MUST_SUCCEED 0x4000; copied: IO_PAGE_READ 0x40 | NONPAGED 0x4 | MAPPED 0x1 |
        // IO_SPACE 0x800; added: PARTIAL 0x10 -> 0x485D.
        #expect(try Construction.header(k, target).flags.rawValue == 0x485D)
    }

    @Test func sourceFlagsCopiedOneAtATime() throws {
        let f = try fixture()
        let k = f.k
        let cases: [(UInt16, MdlFlags)] = [
            (0x0040, [.ioPageRead]), (0x0004, [.sourceIsNonpagedPool]), (0x0001, [.mappedToSystemVa]),
            (0x0800, [.ioSpace]), (0x0002, []), (0x0080, []), (0x0020, []), (0x0010, []), (0x0008, []),
        ]
        for (bits, copied) in cases {
            let target = try #require(try Construction.allocate(k, 0, 0x40 * 0x1000))  // pool-sized: no FIXED
            try Construction.poke(k, f.source + 6, width: 2, UInt64(bits))
            try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x100, length: 0x10)
            #expect(try Construction.header(k, target).flags == copied.union(.partial), "source bits \(bits)")
        }
    }

    // MARK: Mapping interplay and MmPrepareMdlForReuse (§2.9 "Partial MDLs", §2.13)

    @Test func partialOfAMappedSourceInheritsTheMappingAndReuseLeavesIt() throws {
        let f = try fixture()
        let k = f.k
        let system = try #require(try k.mm.getSystemAddressForMdlSafe(f.source, priority: .normalPagePriority))
        #expect(system & 0xFFF == 0x100)
        let ptes = k.inspect.systemPteUsage.inUse
        let target = try #require(try Construction.allocate(k, 0, 0x4000))
        try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x1100, length: 0x1800)
        var h = try Construction.header(k, target)
        #expect(h.mappedSystemVa == system + 0x1000)
        #expect(h.flags == [.allocatedFixedSize, .partial, .mappedToSystemVa])
        // MmGetSystemAddressForMdlSafe returns the inherited address without mapping again.
        #expect(try k.mm.getSystemAddressForMdlSafe(target, priority: .normalPagePriority) == system + 0x1000)
        #expect(try k.mm.getSystemAddressForMdl(target) == system + 0x1000)
        #expect(k.inspect.systemPteUsage.inUse == ptes)
        #expect(try k.env.readMemory(system + 0x1000, count: 1) == [0xA1])   // b+0x1100 was written 0xA1
        // PARTIAL without PARTIAL_HAS_BEEN_MAPPED: MmPrepareMdlForReuse does nothing.
        try k.mm.prepareMdlForReuse(target)
        h = try Construction.header(k, target)
        #expect(h.flags == [.allocatedFixedSize, .partial, .mappedToSystemVa])
        #expect(k.inspect.systemPteUsage.inUse == ptes)
        #expect(try Construction.header(k, f.source).flags.contains(.mappedToSystemVa))
        #expect(k.haltedBy == nil)

        // The longer source mapped with MmGetSystemAddressForMdl; a partial with Length 0 (to the end of
        // the source) inherits the mapping too, and MmPrepareMdlForReuse leaves it alone.
        let g = try fixture(sourceLength: 0x3800)
        let mapped = try #require(try g.k.mm.getSystemAddressForMdl(g.source))
        let other = try #require(try Construction.allocate(g.k, 0, 0x3000))
        try g.k.io.buildPartialMdl(source: g.source, target: other, virtualAddress: g.buffer + 0x1800, length: 0)
        let header = try Construction.header(g.k, other)
        #expect(header.byteCount == 0x3800 - 0x1700)
        #expect(header.flags == [.allocatedFixedSize, .partial, .mappedToSystemVa])
        #expect(try g.k.mm.getSystemAddressForMdl(other) == mapped + 0x1700)
        let inUse = g.k.inspect.systemPteUsage.inUse
        try g.k.mm.prepareMdlForReuse(other)
        #expect(g.k.inspect.systemPteUsage.inUse == inUse)
    }

    /// §2.5/§2.13: IoFreeMdl on a partial MDL that only inherited MAPPED_TO_SYSTEM_VA unmaps nothing and,
    /// being partial, is not the 0xC4/0xB8 case.
    @Test func freeingAPartialWithAnInheritedMappingLeavesTheSourceMapped() throws {
        let f = try fixture()
        let k = f.k
        let system = try #require(try k.mm.getSystemAddressForMdlSafe(f.source, priority: .normalPagePriority))
        let ptes = k.inspect.systemPteUsage.inUse
        let target = try #require(try Construction.allocate(k, 0, 0x4000))
        try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x100, length: 0x10)
        try k.io.freeMdl(target)
        #expect(k.haltedBy == nil)
        #expect(k.inspect.systemPteUsage.inUse == ptes)
        #expect(try Construction.header(k, f.source).flags.contains(.mappedToSystemVa))
        #expect(try k.env.readMemory(system, count: 1) == [0xA0])
    }

    @Test func prepareMdlForReuseUnmapsAPartialMdlsOwnMapping() throws {
        let f = try fixture()
        let k = f.k
        let ptes = k.inspect.systemPteUsage.inUse
        let target = try #require(try Construction.allocate(k, 0, 0x4000))
        try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x1100, length: 0x1800)
        let mapped = try #require(try k.mm.getSystemAddressForMdlSafe(target, priority: .normalPagePriority))
        #expect(mapped & 0xFFF == 0x100)
        #expect(try k.env.readMemory(mapped, count: 1) == [0xA1])
        #expect(try Construction.header(k, target).flags == [.allocatedFixedSize, .partial, .mappedToSystemVa, .partialHasBeenMapped])
        #expect(k.inspect.systemPteUsage.inUse == ptes + 2)
        try k.mm.prepareMdlForReuse(target)
        #expect(try Construction.header(k, target).flags == [.allocatedFixedSize, .partial])
        #expect(k.inspect.systemPteUsage.inUse == ptes)
        #expect(k.haltedBy == nil)
    }

    // MARK: Windows range checks (§2.14, §4.3)

    /// 0x40 exists as a code; the exact predicate is [inferred] (span > (Size - sizeof(MDL)) / sizeof(PFN)).
    /// Here the target's Size holds 1 PFN and the range needs 2, which fails under any reading.
    @Test func targetTooSmallIsBugCheck40() throws {
        let f = try fixture()
        let k = f.k
        let target = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(target, baseVa: 0, length: 0x1000)           // Size 32: one PFN
        let check = try #require(Construction.bugCheck {
            try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x1100, length: 0x1800)
        })
        #expect(check.code == 0x40)
        #expect(check.parameterList == [0, 0, 0, 0])   // TARGET_MDL_TOO_SMALL has no parameters
        // A target in a 0x40-byte pool block, room for 1 PFN, asked for b+0x100 + 0x2000 (3 pages).
        let g = try fixture(sourceLength: 0x3800)
        let small = try #require(try g.k.env.allocatePool(.nonPagedPool, bytes: 0x40))
        try g.k.mm.initializeMdl(small, baseVa: 0, length: 0x1000)
        #expect(throws: KernelError.bugCheck(BugCheck(0x40))) {
            try g.k.io.buildPartialMdl(source: g.source, target: small, virtualAddress: g.buffer + 0x100, length: 0x2000)
        }
    }

    /// Spec silent: a target whose Size is below the header holds no PFN slots, and a zero-page range
    /// needs none, so the inferred predicate (span > slots) does not fire (docs/ENGINE_CONVENTIONS.md).
    @Test func specUnsureTargetSizeBelowHeaderWithZeroSpanIsNotBugCheck40() throws {
        let f = try fixture()
        let k = f.k
        let target = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(target, baseVa: 0, length: 0x1000)
        try k.env.writeMemory(target + 4, [0x10, 0x00])                      // Size 16 < sizeof(MDL) 28
        // A source that ends on a page boundary, asked for its end with Length 0: the length defaults
        // to what is left (nothing) and the page-aligned empty range spans 0 pages.
        let source = try #require(try Construction.allocate(k, f.buffer + 0x1000, 0x1000))
        try k.mm.probeAndLockPages(source, accessMode: .kernelMode, operation: .ioReadAccess)
        try k.io.buildPartialMdl(source: source, target: target, virtualAddress: f.buffer + 0x2000, length: 0)
        #expect(k.haltedBy == nil)
        #expect(try Construction.header(k, target).byteCount == 0)
    }

    @Test func targetExactlyBigEnoughIsAccepted() throws {
        let f = try fixture()
        let k = f.k
        let target = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(target, baseVa: 0, length: 0x2000)           // Size 36: two PFNs
        try k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x1100, length: 0x1800)
        #expect(k.inspect.pfn(target, 1) == f.sourcePfns[2])
        #expect(k.haltedBy == nil)
    }

    /// 0x12E is "modern Windows"; the spec does not say which version introduced it, nor the exact
    /// predicate (suggested: VA < MmGetMdlVirtualAddress(Src) or VA+Length > its end).
    @Test(arguments: [WindowsVersion.nt60, .nt61])
    func invalidMdlRangeFromNT60SpecUnsureVersion(version: WindowsVersion) throws {
        let f = try fixture(version)
        let target = try #require(try Construction.allocate(f.k, 0, 0x4000))
        // b+0x3000 + 0x200 = b+0x3200 > end b+0x3100.
        let check = try #require(Construction.bugCheck {
            try f.k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x3000, length: 0x200)
        })
        #expect(check.code == 0x12E)
        #expect(check.parameterList == [f.source, target, f.buffer + 0x3000, 0x200])
    }

    @Test(arguments: [WindowsVersion.nt60, .nt61])
    func rangeBeforeTheSourceStartIs12E(version: WindowsVersion) throws {
        let f = try fixture(version)
        let target = try #require(try Construction.allocate(f.k, 0, 0x4000))
        let check = try #require(Construction.bugCheck {
            try f.k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x80, length: 0x10)
        })
        #expect(check.code == 0x12E)
        // The buffer's first byte (before the longer source's start), with every parameter.
        let g = try fixture(version, sourceLength: 0x3800)
        let other = try #require(try Construction.allocate(g.k, 0, 0x3000))
        #expect(throws: KernelError.bugCheck(BugCheck(0x12E, g.source, other, g.buffer, 0x10))) {
            try g.k.io.buildPartialMdl(source: g.source, target: other, virtualAddress: g.buffer, length: 0x10)
        }
    }

    @Test(arguments: [WindowsVersion.nt60, .nt61])
    func rangeEndingExactlyAtTheSourceEndIsAccepted(version: WindowsVersion) throws {
        let f = try fixture(version)
        let target = try #require(try Construction.allocate(f.k, 0, 0x4000))
        try f.k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x3000, length: 0x100)
        #expect(f.k.haltedBy == nil)
        #expect(f.k.inspect.pfn(target, 0) == f.sourcePfns[3])
    }

    /// NT 5.x has no range check (§2.14: ReactOS has none; 0x12E is modern). The ReactOS algorithm then
    /// computes Offset in 32 bits: (b+0x80 - b) - 0x100 = 0xFFFFFF80, so MappedSystemVa = source's - 0x80.
    @Test func nt5RangeBeforeTheSourceFollowsTheAlgorithm() throws {
        let f = try fixture(.nt5)
        try Construction.poke(f.k, f.source + 12, width: 4, 0x0C00_0100)
        let target = try #require(try Construction.allocate(f.k, 0, 0x4000))
        try f.k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x80, length: 0x10)
        #expect(f.k.haltedBy == nil)
        let h = try Construction.header(f.k, target)
        #expect(h.mappedSystemVa == 0x0C00_0080)
        #expect((h.startVa, h.byteOffset, h.byteCount) == (f.buffer, 0x80, 0x10))
        #expect(f.k.inspect.pfn(target, 0) == f.sourcePfns[0])
        // The buffer's first byte, before the longer source: no check either.
        let g = try fixture(.nt5, sourceLength: 0x3800)
        let other = try #require(try Construction.allocate(g.k, 0, 0x3000))
        try g.k.io.buildPartialMdl(source: g.source, target: other, virtualAddress: g.buffer, length: 0x10)
        #expect(g.k.haltedBy == nil)
    }

    @Test func nt5HasNoRangeCheck() throws {
        let f = try fixture(.nt5)
        let target = try #require(try Construction.allocate(f.k, 0, 0x4000))
        try f.k.io.buildPartialMdl(source: f.source, target: target, virtualAddress: f.buffer + 0x3000, length: 0x200)
        #expect(f.k.haltedBy == nil)
        let h = try Construction.header(f.k, target)
        #expect((h.byteCount, h.byteOffset) == (0x200, 0))
        #expect(f.k.inspect.pfn(target, 0) == f.sourcePfns[3])
    }
}
