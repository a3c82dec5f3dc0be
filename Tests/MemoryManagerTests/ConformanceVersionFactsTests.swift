import MemoryManager
import Testing

/// Four Windows facts established by ReactOS kernel-mode tests that pass on real Windows, with the
/// versions each holds on (docs/CONFORMANCE.md lists them with their sources). Each test is named by
/// routine, fact and versions.
@Suite struct ConformanceVersionFactsTests {
    /// The virtual addresses [SERGE] runs its IoAllocateMdl table at (ntos_io/IoMdl.c, enabled rows).
    static let sergeAddresses: [VirtualAddress] = [0, 1, 2, 0x0F0F_F0F0, 0x0F0F_FB2E, 0x0F0F_FB2F, 0x0F0F_FFFF, 0xFFFF_FFFE, 0xFFFF_FFFF]
    /// Lengths near 4 GiB: the first and last are [SERGE]'s enabled rows, the others lie between.
    static let nearFourGiB: [UInt32] = [0xFFFF_F000, 0xFFFF_F001, 0xFFFF_F800, 0xFFFF_FFFE, 0xFFFF_FFFF]

    /// A machine whose nonpaged pool holds a 4 MiB PFN array, so a NULL is never pool exhaustion.
    private func roomy(_ version: WindowsVersion, _ mode: CheckingMode = .free, _ arch: Architecture = .x86) throws -> Kernel {
        try Kernel(MachineConfiguration(architecture: arch, ramBytes: 48 << 20, nonpagedPoolBytes: 24 << 20, checking: mode, version: version))
    }

    private func allocate(_ k: Kernel, _ va: VirtualAddress, _ length: UInt32) throws -> VirtualAddress? {
        try k.io.allocateMdl(virtualAddress: va, length: length, secondaryBuffer: false, chargeQuota: false, irp: 0)
    }

    // MARK: 1. IoAllocateMdl with a Length near 4 GiB ([SERGE] rows 0xFFFFF000-0xFFFFFFFF)

    /// NT 5.x and 6.0 return NULL for every length from 0xFFFFF000 up, at any byte offset, although on
    /// x86 the 32-bit span wraps to 0 or 1 page for most of them (a 28- or 32-byte MDL would do).
    @Test(arguments: [WindowsVersion.nt5, .nt60], [CheckingMode.free, .verifier])
    func ioAllocateMdlLengthFFFFF000ReturnsNullOn5xAnd60(version: WindowsVersion, mode: CheckingMode) throws {
        for arch in [Architecture.x86, .x64] {
            let k = try roomy(version, mode, arch)
            for va in Self.sergeAddresses {
                for length in Self.nearFourGiB {
                    #expect(try allocate(k, va, length) == nil, "\(arch) \(version) va \(hex(va)) length \(hex(UInt64(length)))")
                }
            }
            #expect(k.haltedBy == nil)
            #expect(k.inspect.lookasideMdls.isEmpty)
        }
    }

    /// NT 6.1 returns an MDL for every such length, sized from the wrapped span (Size 24 + 4 for
    /// 0xFFFFF000 at an unaligned VA, 28 for 0xFFFFF001, 28 or 32 for MAXULONG) and taken from pool:
    /// MDL_ALLOCATED_FIXED_SIZE is clear, and IoFreeMdl returns the block to pool, not the lookaside.
    @Test func ioAllocateMdlLengthFFFFF000ReturnsPoolMdlWithoutFixedSizeOn61() throws {
        let k = try roomy(.nt61)
        for va in Self.sergeAddresses {
            let offsetSize: UInt16 = va & 0xFFF == 0 ? 0 : 4
            let expectedSize: [UInt32: UInt16] = [0xFFFF_F000: 24 + offsetSize, 0xFFFF_F001: 28, 0xFFFF_FFFF: 28 + (va & 0xFFF <= 1 ? 0 : 4)]
            for length in Self.nearFourGiB {
                let mdl = try #require(try allocate(k, va, length), "va \(hex(va)) length \(hex(UInt64(length)))")
                let h = try Construction.header(k, mdl)
                #expect(h.flags == [], "va \(hex(va)) length \(hex(UInt64(length)))")
                #expect(h.byteCount == length && h.startVa == va & ~0xFFF && UInt64(h.byteOffset) == va & 0xFFF)
                if let size = expectedSize[length] { #expect(Construction.size(h) == size, "va \(hex(va)) length \(hex(UInt64(length)))") }
                // The pool block is what the (wrapped) span needs: 28 or 32 bytes, or 4 MiB + 24 bytes for
                // 0xFFFFF000 at an aligned VA, whose 0xFFFFF pages do not wrap.
                let needed = 28 + 4 * k.constants.spanPages(va, UInt64(length))
                let block = try #require(k.inspect.poolBlock(containing: mdl))
                #expect(block.start == mdl && block.size >= needed && block.size < needed + 0x1000)
                try k.io.freeMdl(mdl)
                #expect(k.inspect.lookasideMdls.isEmpty)
                #expect(k.inspect.poolBlock(containing: mdl) == nil)
            }
        }
    }

    /// From 6.2 on a span that wrapped to 0 or 1 page is small enough for the lookaside: the MDL carries
    /// MDL_ALLOCATED_FIXED_SIZE. 0xFFFFF000 at an aligned VA does not wrap (0xFFFFF pages) and stays a
    /// pool MDL on every version.
    @Test(arguments: [WindowsVersion.nt62, .nt100])
    func ioAllocateMdlLengthFFFFF001IsFixedSizeOn62AndLater(version: WindowsVersion) throws {
        let k = try roomy(version)
        for va in Self.sergeAddresses {
            for length in Self.nearFourGiB {
                let mdl = try #require(try allocate(k, va, length))
                let wraps = length != 0xFFFF_F000 || va & 0xFFF != 0
                #expect(try Construction.header(k, mdl).flags == (wraps ? .allocatedFixedSize : []), "va \(hex(va)) length \(hex(UInt64(length)))")
                try k.io.freeMdl(mdl)
            }
        }
    }

    // MARK: 2. IoFreeMdl twice on a fixed-size MDL ([SERGE]: "hangs on all Windows, even crashes on Vista")

    /// The second IoFreeMdl of an MDL parked on the lookaside never returns: the machine stops with the
    /// hang convention 0xE2 (0, 0, MDL, 0), and the block is on the lookaside only once.
    @Test(arguments: WindowsVersion.allCases, [CheckingMode.free, .checked])
    func ioFreeMdlTwiceOnAFixedSizeMdlNeverReturnsOnAllVersions(version: WindowsVersion, mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        let mdl = try #require(try allocate(k, 0x0F0F_FB2E, 1234))
        #expect(try Construction.header(k, mdl).flags == .allocatedFixedSize)
        try k.io.freeMdl(mdl)
        #expect(k.inspect.lookasideMdls == [mdl])
        let check = try #require(Construction.bugCheck { try k.io.freeMdl(mdl) })
        #expect(check == BugCheck(0xE2, 0, 0, mdl, 0))
        #expect(k.haltedBy == check)
        #expect(k.inspect.lookasideMdls == [mdl])
    }

    /// Under Driver Verifier the lookaside is bypassed (special pool): the second free touches freed
    /// special pool, 0xD5. Never a normal return either.
    @Test(arguments: WindowsVersion.allCases)
    func ioFreeMdlTwiceUnderVerifierIsFreedSpecialPoolOnAllVersions(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, mode: .verifier, version: version)
        let mdl = try #require(try allocate(k, 0x0F0F_FB2E, 1234))
        try k.io.freeMdl(mdl)
        #expect(throws: KernelError.bugCheck(BugCheck(0xD5, mdl, 0, 0, 0))) { try k.io.freeMdl(mdl) }
    }

    // MARK: 3. MmBuildMdlForNonPagedPool on a paged-pool page never touched ([KT-MmMdl], Windows Server 2003)

    /// Up to NT 6.1 nothing checks residency: the call returns with MDL_SOURCE_IS_NONPAGED_POOL set and
    /// MDL_PAGES_LOCKED clear; the PTE holds no frame, so the PFN slot is 0.
    @Test(arguments: [WindowsVersion.nt40sp3, .nt40, .nt5, .nt60, .nt61], [CheckingMode.free, .checked])
    func mmBuildMdlForNonPagedPoolOnUntouchedPagedPoolSetsSourceIsNonpagedPoolOn5xTo61(version: WindowsVersion, mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        let page = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
        #expect(try k.mm.isAddressValid(page) == false)
        let mdl = try #require(try allocate(k, page, 0x1000))
        #expect(try Construction.header(k, mdl).flags.isDisjoint(with: [.pagesLocked, .sourceIsNonpagedPool]))
        try k.mm.buildMdlForNonPagedPool(mdl)
        let h = try Construction.header(k, mdl)
        #expect(h.flags.contains(.sourceIsNonpagedPool))
        #expect(!h.flags.contains(.pagesLocked))
        #expect(h.mappedSystemVa == page && h.process == 0)
        #expect(k.inspect.pfn(mdl, 0) == 0)
        #expect(try k.mm.isAddressValid(page) == false)          // nothing was touched or locked
        try k.io.freeMdl(mdl)
        #expect(k.haltedBy == nil)
    }

    /// A page that was resident and is paged out again is no different up to 6.1: its PTE holds a
    /// pagefile slot, not a frame, so the slot gets 0; a resident paged page gives its frame.
    @Test func mmBuildMdlForNonPagedPoolOnPagedOutPageFillsZeroOn5x() throws {
        let k = try Construction.kernel(.x86, mode: .free, version: .nt5)
        let paged = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x2000))
        try k.env.writeMemory(paged, [1])
        try k.env.writeMemory(paged + 0x1000, [2])
        #expect(try k.env.pageOut(paged))
        let mdl = try #require(try allocate(k, paged, 0x2000))
        try k.mm.buildMdlForNonPagedPool(mdl)
        #expect(k.inspect.pfn(mdl, 0) == 0)
        #expect(k.inspect.pfn(mdl, 1) == (try k.mm.getPhysicalAddress(paged + 0x1000)) >> 12)
        #expect(try Construction.header(k, mdl).flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
    }

    /// Driver Verifier's 0xC4/0x7F is about paged pool, resident or not: on NT 5.x to 6.1 (no residency
    /// check) an untouched paged-pool page is 0x7F (IRQL, MDL, flags).
    @Test(arguments: [WindowsVersion.nt5, .nt60, .nt61])
    func mmBuildMdlForNonPagedPoolOnUntouchedPagedPoolIsVerifier7FOn5xTo61(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, mode: .verifier, version: version)
        let page = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
        let mdl = try #require(try allocate(k, page, 0x1000))
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x7F, 0, mdl, 0x8))) { try k.mm.buildMdlForNonPagedPool(mdl) }
    }

    /// Windows 8+ checked builds ASSERT on a page that is not resident (site 62); the 6.2 free build
    /// still returns normally.
    @Test func mmBuildMdlForNonPagedPoolOnUntouchedPagedPoolAssertsOn62CheckedAndReturnsOn62Free() throws {
        let checked = try Construction.kernel(.x86, mode: .checked, version: .nt62)
        let page = try #require(try checked.env.allocatePool(.pagedPool, bytes: 0x1000))
        let mdl = try #require(try allocate(checked, page, 0x1000))
        #expect(throws: KernelError.bugCheck(BugCheck(0x1E, 0x8000_0003, 62, mdl, 0x8))) { try checked.mm.buildMdlForNonPagedPool(mdl) }
        let free = try Construction.kernel(.x86, mode: .free, version: .nt62)
        let freePage = try #require(try free.env.allocatePool(.pagedPool, bytes: 0x1000))
        let freeMdl = try #require(try allocate(free, freePage, 0x1000))
        try free.mm.buildMdlForNonPagedPool(freeMdl)
        #expect(try Construction.header(free, freeMdl).flags.contains(.sourceIsNonpagedPool))
    }

    /// Windows 10 bug-checks 0x1A/0x1240 (MDL, VA of the page, 0) in free builds and under Verifier.
    @Test(arguments: [CheckingMode.free, .verifier])
    func mmBuildMdlForNonPagedPoolOnUntouchedPagedPoolIs1A1240On100(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: .nt100)
        let page = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
        let mdl = try #require(try allocate(k, page, 0x1000))
        #expect(throws: KernelError.bugCheck(BugCheck(0x1A, 0x1240, mdl, page, 0))) { try k.mm.buildMdlForNonPagedPool(mdl) }
    }

    // MARK: 4. Process end with locked pages under Driver Verifier (bug-check 0x76 / 0xCB pages)

    /// Locked pages left in a process that ends.
    private func lockedAndEnding(_ version: WindowsVersion, _ mode: CheckingMode) throws -> (Kernel, mdl: VirtualAddress, eprocess: VirtualAddress) {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x2000, protection: .readWrite))
        let mdl = try #require(try allocate(k, buffer, 0x2000))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        return (k, mdl, try Construction.header(k, mdl).process)
    }

    /// Windows 2000/XP/2003 Driver Verifier does not track locked pages: process end is
    /// PROCESS_HAS_LOCKED_PAGES (0, EPROCESS, locked pages, 0), as without Verifier.
    @Test(arguments: [WindowsVersion.nt40sp3, .nt40, .nt5])
    func terminateProcessWithLockedPagesUnderVerifierIs76On5x(version: WindowsVersion) throws {
        let (k, _, eprocess) = try lockedAndEnding(version, .verifier)
        #expect(throws: KernelError.bugCheck(BugCheck(0x76, 0, eprocess, 2, 0))) { _ = try k.env.terminateProcess(8) }
    }

    /// From Vista Verifier's Pool Tracking tracks locked pages: DRIVER_LEFT_LOCKED_PAGES_IN_PROCESS
    /// (0, 0, MDL, locked pages); a free build is 0x76 on every version.
    @Test(arguments: [WindowsVersion.nt60, .nt61, .nt62, .nt100])
    func terminateProcessWithLockedPagesUnderVerifierIsCBFrom60(version: WindowsVersion) throws {
        let (k, mdl, _) = try lockedAndEnding(version, .verifier)
        #expect(throws: KernelError.bugCheck(BugCheck(0xCB, 0, 0, mdl, 2))) { _ = try k.env.terminateProcess(8) }
        let (f, _, eprocess) = try lockedAndEnding(version, .free)
        #expect(throws: KernelError.bugCheck(BugCheck(0x76, 0, eprocess, 2, 0))) { _ = try f.env.terminateProcess(8) }
    }

    private func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16, uppercase: true) }
}
