import MemoryManager
import Testing

/// Facts the ReactOS kernel-mode tests establish on real Windows for IoAllocateMdl/IoFreeMdl
/// ([KT-IoMdl], [SERGE] ntos_io/IoMdl.c), MmBuildMdlForNonPagedPool and MmAllocatePagesForMdl
/// ([KT-MmMdl] ntos_mm/MmMdl.c) and MmMapLockedPagesSpecifyCache ([KT-MLPSC] ntos_mm/
/// MmMapLockedPagesSpecifyCache_drv.c / _user.c), which the engine already followed. The expected values
/// are the tests' own, restated; see docs/CONFORMANCE.md for the list and what is not followed.
@Suite struct ConformanceKmtestsTests {
    private func machine(_ version: WindowsVersion = .nt5, _ mode: CheckingMode = .free, nonpaged: UInt64 = 24 << 20,
                         ram: UInt64 = 48 << 20, ptes: UInt64 = 1024) throws -> Kernel {
        try Kernel(MachineConfiguration(architecture: .x86, ramBytes: ram, nonpagedPoolBytes: nonpaged, systemPtes: ptes,
                                        checking: mode, version: version))
    }

    private func allocate(_ k: Kernel, _ va: VirtualAddress, _ length: UInt32, secondary: Bool = false, quota: Bool = false,
                          irp: VirtualAddress = 0) throws -> VirtualAddress? {
        try k.io.allocateMdl(virtualAddress: va, length: length, secondaryBuffer: secondary, chargeQuota: quota, irp: irp)
    }

    // MARK: IoAllocateMdl ([KT-IoMdl]: the upstream test, written against Windows Server 2003)

    /// IoAllocateMdl(NULL, 2 GiB) is NULL on NT 5.x and 6.0; [SERGE]'s 2 GiB row succeeds from 6.1 on.
    @Test(arguments: [WindowsVersion.nt5, .nt60, .nt61, .nt62, .nt100])
    func ioAllocateMdlTwoGiBReturnsNullOn5xAnd60AndSucceedsFrom61(version: WindowsVersion) throws {
        let k = try machine(version)
        let mdl = try allocate(k, 0, 0x8000_0000)
        #expect((mdl != nil) == (version >= .nt61))
        if let mdl { #expect(try Construction.header(k, mdl).size == 28) }   // 28 + 4 * 0x80000 truncated to 16 bits
    }

    /// The 16-bit Size limit of NT 5.x: (0x10000 − 28) / 4 pages (67,080,192 bytes) is NULL, 4095 bytes
    /// less is still NULL, a page less succeeds, half of it succeeds. From 6.0 all four succeed.
    @Test(arguments: [WindowsVersion.nt5, .nt60, .nt61])
    func ioAllocateMdlSixteenBitSizeLimitOn5xOnly(version: WindowsVersion) throws {
        let k = try machine(version)
        let tooLarge: UInt32 = (0x1_0000 - 28) / 4 * 4096
        for (length, on5x) in [(tooLarge, false), (tooLarge - 4095, false), (tooLarge - 4096, true), (tooLarge / 2, true)] {
            let mdl = try allocate(k, 0, length)
            #expect((mdl != nil) == (on5x || version >= .nt60), "length \(length)")
            if let mdl { try k.io.freeMdl(mdl) }
        }
    }

    /// A valid MDL over a nonpaged buffer of 2 pages + 184 bytes: Next NULL, ByteCount the length; with
    /// an IRP, Irp->MdlAddress is the MDL.
    @Test(arguments: WindowsVersion.allCases)
    func ioAllocateMdlWithAnIrpSetsMdlAddressOnAllVersions(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, mode: .free, version: version)
        let size: UInt32 = 2 * 4096 + 184
        let buffer = try #require(try k.env.allocatePool(.nonPagedPool, bytes: UInt64(size)))
        let mdl = try #require(try allocate(k, buffer, size))
        let h = try Construction.header(k, mdl)
        #expect(h.next == 0 && h.byteCount == size)
        try k.io.freeMdl(mdl)
        let irp = try #require(try k.env.allocateIrp())
        let withIrp = try #require(try allocate(k, buffer, size, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == withIrp)
    }

    // MARK: IoAllocateMdl ([SERGE]: the extended test, run on NT 5.0 to 10)

    /// [SERGE]'s Size/MdlFlags table (enabled rows below 4 GiB − PAGE_SIZE, x86) at each of its virtual
    /// addresses. OSize is 4 at an unaligned address. A nil row is a NULL return.
    @Test(arguments: [WindowsVersion.nt5, .nt60, .nt61, .nt62, .nt100])
    func ioAllocateMdlSizeAndFixedSizeTableOn5xTo10(version: WindowsVersion) throws {
        let k = try machine(version)
        let nt6 = version >= .nt60
        let fixed: MdlFlags = .allocatedFixedSize
        for va: VirtualAddress in [0, 1, 2, 0x0F0F_F0F0, 0x0F0F_FB2E, 0x0F0F_FB2F, 0x0F0F_FFFF, 0xFFFF_FFFE, 0xFFFF_FFFF] {
            let aligned = va & 0xFFF == 0
            let oSize: UInt16 = aligned ? 0 : 4
            let rows: [(length: UInt32, expected: (size: UInt16, flags: MdlFlags)?)] = [
                (0, (28 + oSize, fixed)),
                (1, (32, fixed)),
                (68 * 1024, (96 + oSize, !nt6 || aligned ? fixed : [])),
                (68 * 1024 + 1, (100, !nt6 ? fixed : [])),
                (92 * 1024, (120 + oSize, !nt6 && aligned ? fixed : [])),
                (92 * 1024 + 1, (124, [])),
                (67_076_096, aligned ? (65532, []) : nt6 ? (0, []) : nil),          // MAX_NT50_SIZE − PAGE_SIZE + 1024
                (67_076_097, nt6 ? (0, []) : nil),
                (0x7FFF_FFFF, nt6 ? (28 + (va & 0xFFF <= 1 ? 0 : 4), []) : nil),  // 2 GiB − 1
                (0x8000_0000, version >= .nt61 ? (28 + oSize, []) : nil),         // 2 GiB
                (1234, (32 + (va & 0xFFF <= 0xB2E ? 0 : 4), fixed)),
            ]
            for row in rows {
                let mdl = try allocate(k, va, row.length)
                let place = "va \(va) length \(row.length)"
                guard let expected = row.expected else { #expect(mdl == nil, "\(place)"); continue }
                let m = try #require(mdl, "\(place)")
                let h = try Construction.header(k, m)
                #expect(Construction.size(h) == expected.size, "\(place)")
                #expect(h.flags == expected.flags, "\(place)")
                #expect(h.next == 0 && h.byteCount == row.length && h.startVa == va & ~0xFFF && UInt64(h.byteOffset) == va & 0xFFF)
                #expect(try k.mm.getMdlVirtualAddress(m) == va)
                try k.io.freeMdl(m)
            }
        }
    }

    /// SecondaryBuffer FALSE replaces Irp->MdlAddress; TRUE appends to the end of the chain; the MDLs
    /// are distinct and fixed size (2 pages + 184 bytes: Size 40); ChargeQuota TRUE and SecondaryBuffer
    /// TRUE without an IRP both succeed.
    @Test(arguments: [WindowsVersion.nt5, .nt61, .nt100])
    func ioAllocateMdlChainsSecondaryBuffersOnAllVersions(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, mode: .free, version: version)
        let irp = try #require(try k.env.allocateIrp())
        let length: UInt32 = 2 * 4096 + 184
        let first = try #require(try allocate(k, 0, length, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == first)
        let replacing = try #require(try allocate(k, 0, length, irp: irp))
        #expect(replacing != first)
        #expect(try k.env.irpMdlAddress(irp) == replacing)
        #expect(try Construction.header(k, replacing).next == 0)
        try Construction.poke(k, irp + 4, width: 4, first)                       // Irp->MdlAddress = Mdl
        let second = try #require(try allocate(k, 0, length, secondary: true, irp: irp))
        let third = try #require(try allocate(k, 0, length, secondary: true, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == first)
        #expect(try Construction.header(k, first).next == second)
        #expect(try Construction.header(k, second).next == third)
        for mdl in [first, second, third] {
            #expect(Construction.size(try Construction.header(k, mdl)) == 40)
            #expect(try Construction.header(k, mdl).flags == .allocatedFixedSize)
        }
        #expect(try allocate(k, 0, length, quota: true) != nil)
        #expect(try allocate(k, 0, length, secondary: true) != nil)
    }

    /// [SERGE]'s commented-out calls: IoFreeMdl(NULL) "crashes (all) Windows", and so does
    /// IoAllocateMdl with SecondaryBuffer TRUE on an IRP whose MdlAddress is NULL. Kernel code reads the
    /// MDL (or the chain head) at address 0: KMODE_EXCEPTION_NOT_HANDLED (0xC0000005, 0, 0, 0).
    @Test(arguments: WindowsVersion.allCases, [CheckingMode.free, .verifier])
    func ioFreeMdlNullAndSecondaryBufferOnAnEmptyIrpCrashOnAllVersions(version: WindowsVersion, mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        #expect(Construction.bugCheck { try k.io.freeMdl(0) } == BugCheck(0x1E, 0xC000_0005, 0, 0, 0))
        let j = try Construction.kernel(.x86, mode: mode, version: version)
        let irp = try #require(try j.env.allocateIrp())
        #expect(Construction.bugCheck { _ = try allocate(j, 0, 0x1000, secondary: true, irp: irp) } == BugCheck(0x1E, 0xC000_0005, 0, 0, 0))
    }

    // MARK: MmAllocatePagesForMdl and its mappings ([KT-MmMdl])

    /// 2 MiB from MmAllocatePagesForMdl(0, −1, 0, …): ByteCount 2 MiB, virtual address NULL, not mapped,
    /// 512 PFNs none of which is 0 or (PFN_NUMBER)−1.
    @Test(arguments: [WindowsVersion.nt5, .nt60, .nt61, .nt100])
    func mmAllocatePagesForMdlTwoMiBIsUnmappedWithValidPfnsFrom5x(version: WindowsVersion) throws {
        let k = try machine(version)
        let mdl = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 2 << 20))
        #expect(try k.mm.getMdlByteCount(mdl) == 2 << 20)
        #expect(try k.mm.getMdlVirtualAddress(mdl) == 0)
        #expect(!(try Construction.header(k, mdl)).flags.contains(.mappedToSystemVa))
        #expect(k.constants.spanPages(0, 2 << 20) == 512)
        for index: UInt64 in 0..<512 {
            let pfn = try #require(k.inspect.pfn(mdl, index))
            #expect(pfn != 0 && pfn != 0xFFFF_FFFF)
        }
        try k.mm.freePagesFromMdl(mdl)
        try k.env.freePool(mdl)
    }

    /// Mapping it with MmMapLockedPagesSpecifyCache(KernelMode, MmCached, NULL, FALSE, Normal): the
    /// return value is MappedSystemVa, MDL_MAPPED_TO_SYSTEM_VA is set, ByteCount and the (NULL) virtual
    /// address do not change; unmapping clears the flag and leaves both.
    @Test(arguments: [WindowsVersion.nt5, .nt61, .nt100])
    func mmMapLockedPagesSpecifyCacheOfAllocatedPagesSetsMappedSystemVaFrom5x(version: WindowsVersion) throws {
        let k = try machine(version)
        let mdl = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 2 << 20))
        let va = try #require(try k.mm.mapLockedPagesSpecifyCache(mdl, accessMode: .kernelMode, cacheType: .mmCached, requestedAddress: 0,
                                                                   bugCheckOnFailure: false, priority: .normalPagePriority))
        var h = try Construction.header(k, mdl)
        #expect(h.mappedSystemVa == va && h.flags.contains(.mappedToSystemVa))
        #expect(h.byteCount == 2 << 20)
        #expect(try k.mm.getMdlVirtualAddress(mdl) == 0)
        try k.mm.unmapLockedPages(va, mdl)
        h = try Construction.header(k, mdl)
        #expect(!h.flags.contains(.mappedToSystemVa))
        #expect(h.byteCount == 2 << 20)
        #expect(try k.mm.getMdlVirtualAddress(mdl) == 0)
        try k.mm.freePagesFromMdl(mdl)
        try k.env.freePool(mdl)
    }

    /// [KT-MmMdl] frees a still-mapped MDL with MmFreePagesFromMdl; Windows 7 and later release the
    /// mapping with the pages ([MSDOC]).
    @Test(arguments: [WindowsVersion.nt61, .nt62, .nt100])
    func mmFreePagesFromMdlReleasesAStillMappedMdlFrom61(version: WindowsVersion) throws {
        let k = try machine(version)
        let mdl = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 2 << 20))
        _ = try #require(try k.mm.mapLockedPagesSpecifyCache(mdl, accessMode: .kernelMode, cacheType: .mmCached, requestedAddress: 0,
                                                             bugCheckOnFailure: false, priority: .normalPagePriority))
        #expect(k.inspect.systemPtesInUse == 512)
        try k.mm.freePagesFromMdl(mdl)
        #expect(k.inspect.systemPtesInUse == 0)
        try k.env.freePool(mdl)
        #expect(k.haltedBy == nil)
    }

    /// Asking for 2 GiB succeeds with fewer pages (ByteCount ≤ 2 GiB, valid PFNs); mapping all of them
    /// with BugCheckOnFailure FALSE returns NULL (not enough system PTEs) and leaves the flag clear.
    @Test func mmMapLockedPagesSpecifyCacheOfTwoGiBReturnsNullWithoutBugCheckFrom5x() throws {
        let k = try machine(.nt5, ram: 32 << 20, ptes: 1024)
        let mdl = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 0x8000_0000))
        let count = try k.mm.getMdlByteCount(mdl)
        #expect(count <= 0x8000_0000 && count > 0)
        for index in 0..<UInt64(count / 4096) {
            let pfn = try #require(k.inspect.pfn(mdl, index))
            #expect(pfn != 0 && pfn != 0xFFFF_FFFF)
        }
        #expect(try k.mm.mapLockedPagesSpecifyCache(mdl, accessMode: .kernelMode, cacheType: .mmCached, requestedAddress: 0,
                                                    bugCheckOnFailure: false, priority: .normalPagePriority) == nil)
        #expect(!(try Construction.header(k, mdl)).flags.contains(.mappedToSystemVa))
        #expect(try k.mm.getMdlVirtualAddress(mdl) == 0)
        try k.mm.freePagesFromMdl(mdl)
        try k.env.freePool(mdl)
    }

    // MARK: MmBuildMdlForNonPagedPool ([KT-MmMdl])

    /// An MDL fresh from IoAllocateMdl has neither MDL_PAGES_LOCKED nor MDL_SOURCE_IS_NONPAGED_POOL;
    /// after MmBuildMdlForNonPagedPool over nonpaged pool it has SOURCE_IS_NONPAGED_POOL, still not locked.
    @Test(arguments: WindowsVersion.allCases, [CheckingMode.free, .checked, .verifier])
    func mmBuildMdlForNonPagedPoolSetsSourceIsNonpagedPoolNotLockedOnAllVersions(version: WindowsVersion, mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        let page = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x1000))
        let mdl = try #require(try allocate(k, page, 0x1000))
        #expect(try Construction.header(k, mdl).flags.isDisjoint(with: [.pagesLocked, .sourceIsNonpagedPool]))
        try k.mm.buildMdlForNonPagedPool(mdl)
        let h = try Construction.header(k, mdl)
        #expect(h.flags.contains(.sourceIsNonpagedPool) && !h.flags.contains(.pagesLocked))
        #expect(k.inspect.pfn(mdl, 0) == (try k.mm.getPhysicalAddress(page)) >> 12)
        try k.io.freeMdl(mdl)
        try k.env.freePool(page)
    }

    // MARK: MmMapLockedPagesSpecifyCache into user space ([KT-MLPSC])

    /// A nonpaged buffer, its MDL probe-locked for IoWriteAccess in kernel mode (no exception).
    private func lockedNonPaged(_ k: Kernel, _ length: UInt32) throws -> VirtualAddress {
        let buffer = try #require(try k.env.allocatePool(.nonPagedPool, bytes: UInt64(length)))
        let mdl = try #require(try allocate(k, buffer, length))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        return mdl
    }

    private func mapUser(_ k: Kernel, _ mdl: VirtualAddress, _ cache: MemoryCachingType, at requested: VirtualAddress = 0) throws -> VirtualAddress? {
        try k.mm.mapLockedPagesSpecifyCache(mdl, accessMode: .userMode, cacheType: cache, requestedAddress: requested,
                                            bugCheckOnFailure: false, priority: .normalPagePriority)
    }

    /// For 2048 to 10240 bytes, cached and non-cached: the user mapping is not NULL, a pattern written
    /// through it reads back through MmGetSystemAddressForMdlSafe, and MmUnmapLockedPages then
    /// MmUnlockPages raise nothing.
    @Test(arguments: [WindowsVersion.nt5, .nt61, .nt100], [CheckingMode.free, .verifier])
    func mmMapLockedPagesSpecifyCacheUserMappingAliasesTheSystemMappingFrom5x(version: WindowsVersion, mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        for length: UInt32 in [2048, 4096, 4096 + 2048, 2 * 4096, 2 * 4096 + 2048] {
            for cache in [MemoryCachingType.mmNonCached, .mmCached] {
                let mdl = try lockedNonPaged(k, length)
                let user = try #require(try mapUser(k, mdl, cache))
                #expect(k.constants.isUserAddress(user))
                let pattern = [UInt8](repeating: 0, count: Int(length)).enumerated().map { UInt8(truncatingIfNeeded: $0.offset % 4 == 0 ? 0x5A : 0xA5) }
                try k.env.writeMemory(user, pattern)
                let system = try #require(try k.mm.getSystemAddressForMdlSafe(mdl, priority: .normalPagePriority))
                #expect(try k.env.readMemory(system, count: Int(length)) == pattern)
                try k.mm.unmapLockedPages(user, mdl)
                try k.mm.unlockPages(mdl)
                try k.io.freeMdl(mdl)
            }
        }
    }

    /// A requested address that is free (where the previous mapping was) is honoured exactly; the same
    /// address plus 2048 raises STATUS_INVALID_ADDRESS; HighestUser − 15 pages (0x7FFE0000) raises
    /// STATUS_INVALID_ADDRESS; HighestUser − 16 pages (0x7FFDF000) succeeds or raises
    /// STATUS_CONFLICTING_ADDRESSES.
    @Test(arguments: [WindowsVersion.nt5, .nt61, .nt100])
    func mmMapLockedPagesSpecifyCacheRequestedAddressRulesFrom5x(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, mode: .free, version: version)
        let mdl = try lockedNonPaged(k, 4096)
        let first = try #require(try mapUser(k, mdl, .mmNonCached))
        try k.mm.unmapLockedPages(first, mdl)
        #expect(try mapUser(k, mdl, .mmNonCached, at: first) == first)
        try k.mm.unmapLockedPages(first, mdl)
        #expect(throws: KernelError.raised(.invalidAddress)) { _ = try mapUser(k, mdl, .mmNonCached, at: first + 2048) }
        let highest = k.constants.highestUserAddress & ~0xFFF                      // 0x7FFEF000
        #expect(throws: KernelError.raised(.invalidAddress)) { _ = try mapUser(k, mdl, .mmNonCached, at: highest - 15 * 4096) }
        do {
            let high = try mapUser(k, mdl, .mmNonCached, at: highest - 16 * 4096)
            #expect(high == 0x7FFD_F000)
        } catch let error as KernelError {
            #expect(error == .raised(.conflictingAddresses))
        }
        #expect(k.haltedBy == nil)
    }
}
