import MemoryManager
import Testing

/// IoBuildPartialMdl, MmBuildMdlForNonPagedPool, IoFreeMdl, MmPrepareMdlForReuse, MmMapIoSpace,
/// HalTranslateBusAddress, MmAllocatePagesForMdl and paging (spec §2.5, §2.6, §2.13–§2.20).
@Suite struct SpecPartialPoolIoSpaceTests {
    private func lockedSource(_ k: Kernel) throws -> (buffer: VirtualAddress, mdl: VirtualAddress) {
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x4000, protection: .readWrite))
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: buffer + 0x100, length: 0x3800, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        return (buffer, mdl)
    }

    @Test func partialMdlTakesTheSourcesPfnRangeAndFlags() throws {
        let k = try Kernel()
        let (buffer, source) = try lockedSource(k)
        let target = try #require(try k.io.allocateMdl(virtualAddress: 0, length: 0x3000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        let targetSize = k.inspect.mdl(target)!.size
        // Sub-range starting in the source's second page: buffer+0x1800, 0x1000 bytes → pages 1 and 2.
        try k.io.buildPartialMdl(source: source, target: target, virtualAddress: buffer + 0x1800, length: 0x1000)
        let header = try #require(k.inspect.mdl(target))
        #expect(header.startVa == buffer + 0x1000)
        #expect(header.byteOffset == 0x800)
        #expect(header.byteCount == 0x1000)
        #expect(header.process == k.inspect.mdl(source)!.process)
        #expect(header.flags == [.allocatedFixedSize, .partial])   // PAGES_LOCKED and WRITE_OPERATION are not copied
        #expect(header.size == targetSize)                         // Size untouched
        #expect(k.inspect.pfn(target, 0) == k.inspect.pfn(source, 1))
        #expect(k.inspect.pfn(target, 1) == k.inspect.pfn(source, 2))
        // MappedSystemVa = source's + (VA − source VA), computed even though the source is unmapped.
        let sourceHeader = k.inspect.mdl(source)!
        #expect(header.mappedSystemVa == (sourceHeader.mappedSystemVa &+ 0x1700) & 0xFFFF_FFFF)
    }

    @Test func partialMdlOfAMappedSourceInheritsTheMappingAndGetsItsOwnOnlyWhenMapped() throws {
        let k = try Kernel()
        let (buffer, source) = try lockedSource(k)
        let system = try #require(try k.mm.getSystemAddressForMdl(source))
        let target = try #require(try k.io.allocateMdl(virtualAddress: 0, length: 0x3000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.io.buildPartialMdl(source: source, target: target, virtualAddress: buffer + 0x1800, length: 0)
        let header = try #require(k.inspect.mdl(target))
        #expect(header.byteCount == 0x3800 - 0x1700)                // Length 0: to the end of the source
        #expect(header.flags == [.allocatedFixedSize, .partial, .mappedToSystemVa])
        #expect(try k.mm.getSystemAddressForMdl(target) == system + 0x1700) // the inherited mapping, no new PTEs
        // MmPrepareMdlForReuse leaves an inherited mapping alone.
        let inUse = k.inspect.systemPteUsage.inUse
        try k.mm.prepareMdlForReuse(target)
        #expect(k.inspect.systemPteUsage.inUse == inUse)

        // A partial of an unmapped source gets its own mapping, and IoFreeMdl releases it.
        let unmappedTarget = try #require(try k.io.allocateMdl(virtualAddress: 0, length: 0x2000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.unmapLockedPages(system, source)
        try k.io.buildPartialMdl(source: source, target: unmappedTarget, virtualAddress: buffer + 0x100, length: 0x1000)
        _ = try #require(try k.mm.getSystemAddressForMdlSafe(unmappedTarget, priority: .normalPagePriority))
        #expect(k.inspect.mdl(unmappedTarget)?.flags == [.allocatedFixedSize, .partial, .mappedToSystemVa, .partialHasBeenMapped])
        #expect(k.inspect.systemPteUsage.inUse == 2)   // 0x1000 bytes at offset 0x100 span 2 pages
        try k.io.freeMdl(unmappedTarget)
        #expect(k.inspect.systemPteUsage.inUse == 0)
    }

    @Test func partialMdlRangeChecks() throws {
        // 0x40 when the target cannot hold the PFNs (every version).
        let k = try Kernel()
        let (buffer, source) = try lockedSource(k)
        let small = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x40))
        try k.mm.initializeMdl(small, baseVa: 0, length: 0x1000)      // room for 1 PFN
        #expect(throws: KernelError.bugCheck(BugCheck(0x40))) {
            try k.io.buildPartialMdl(source: source, target: small, virtualAddress: buffer + 0x100, length: 0x2000)
        }
        // 0x12E outside the source from NT 6.0; NT 5.1 has no such check.
        let vista = try Kernel(MachineConfiguration(version: .nt60))
        let (vistaBuffer, vistaSource) = try lockedSource(vista)
        let vistaTarget = try #require(try vista.io.allocateMdl(virtualAddress: 0, length: 0x3000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(throws: KernelError.bugCheck(BugCheck(0x12E, vistaSource, vistaTarget, vistaBuffer, 0x10))) {
            try vista.io.buildPartialMdl(source: vistaSource, target: vistaTarget, virtualAddress: vistaBuffer, length: 0x10)
        }
        let xp = try Kernel()
        let (xpBuffer, xpSource) = try lockedSource(xp)
        let xpTarget = try #require(try xp.io.allocateMdl(virtualAddress: 0, length: 0x3000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try xp.io.buildPartialMdl(source: xpSource, target: xpTarget, virtualAddress: xpBuffer, length: 0x10)
        #expect(xp.haltedBy == nil)
    }

    @Test func nonPagedPoolMdlIsNotLockedAndIsItsOwnSystemAddress() throws {
        let k = try Kernel()
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x1800))
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: pool + 0x20, length: 0x1000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.buildMdlForNonPagedPool(mdl)
        let header = try #require(k.inspect.mdl(mdl))
        #expect(header.flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
        #expect(header.process == 0)
        #expect(header.mappedSystemVa == pool + 0x20)
        #expect(k.inspect.pfn(mdl, 0) == (try k.mm.getPhysicalAddress(pool + 0x20)) >> 12)
        #expect(try k.mm.getSystemAddressForMdl(mdl) == pool + 0x20)
        #expect(try k.mm.getSystemAddressForMdlSafe(mdl, priority: .lowPagePriority) == pool + 0x20)
        #expect(k.inspect.systemPteUsage.inUse == 0)
    }

    @Test func nonPagedPoolMdlOverPagedPool() throws {
        // Verifier: 0xC4/0x7F (IRQL, MDL, flags). Free build: the flag is simply set.
        for mode in [CheckingMode.verifier, .free] {
            let k = try Kernel(MachineConfiguration(checking: mode))
            let paged = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x100))
            try k.env.writeMemory(paged, [1])                            // make it resident
            let mdl = try #require(try k.io.allocateMdl(virtualAddress: paged, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: 0))
            if mode == .verifier {
                #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x7F, 0, mdl, 0x0008))) { try k.mm.buildMdlForNonPagedPool(mdl) }
            } else {
                try k.mm.buildMdlForNonPagedPool(mdl)
                #expect(k.inspect.mdl(mdl)?.flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
                // A non-resident page: NT 5.x does not check (PFN 0 from the frameless PTE, [KT-MmMdl]);
                // Windows 10 is 0x1A/0x1240.
                let untouched = try #require(try k.env.allocatePool(.pagedPool, bytes: 0x1000))
                let other = try #require(try k.io.allocateMdl(virtualAddress: untouched, length: 0x10, secondaryBuffer: false, chargeQuota: false, irp: 0))
                try k.mm.buildMdlForNonPagedPool(other)
                #expect(k.inspect.mdl(other)?.flags == [.allocatedFixedSize, .sourceIsNonpagedPool])
                #expect(k.inspect.pfn(other, 0) == 0)
                let win10 = try Kernel(MachineConfiguration(checking: mode, version: .nt100))
                let page10 = try #require(try win10.env.allocatePool(.pagedPool, bytes: 0x1000))
                let mdl10 = try #require(try win10.io.allocateMdl(virtualAddress: page10, length: 0x10, secondaryBuffer: false, chargeQuota: false, irp: 0))
                #expect(throws: KernelError.bugCheck(BugCheck(0x1A, 0x1240, mdl10, page10, 0))) { try win10.mm.buildMdlForNonPagedPool(mdl10) }
            }
        }
    }

    @Test func ioFreeMdlRules() throws {
        // Verifier: freeing a mapped MDL is 0xB8; a double free touches freed special pool (0xD5).
        let k = try Kernel()
        let (_, mdl) = try lockedSource(k)
        _ = try k.mm.getSystemAddressForMdl(mdl)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB8, mdl, 0x008B, 0))) { try k.io.freeMdl(mdl) }
        let v = try Kernel()
        let once = try #require(try v.io.allocateMdl(virtualAddress: 0x10000, length: 0x10, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try v.io.freeMdl(once)
        #expect(throws: KernelError.bugCheck(BugCheck(0xD5, once, 0, 0, 0))) { try v.io.freeMdl(once) }
        // Free build: the fixed-size block returns through the lookaside with its stale fields.
        let f = try Kernel(MachineConfiguration(checking: .free))
        let (_, locked) = try lockedSource(f)
        let process = f.inspect.mdl(locked)!.process
        try f.mm.unlockPages(locked)
        try f.io.freeMdl(locked)
        let reused = try #require(try f.io.allocateMdl(virtualAddress: 0x20000, length: 0x10, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(reused == locked)
        #expect(f.inspect.mdl(reused)?.process == process)        // not initialised by IoAllocateMdl
        #expect(f.inspect.mdl(reused)?.flags == .allocatedFixedSize)
    }

    @Test func halTranslateBusAddressPerBus() throws {
        let k = try Kernel()
        func translate(_ type: InterfaceType, _ bus: UInt32, _ address: UInt64, _ space: UInt32) throws -> (Bool, UInt64, UInt32) {
            var addressSpace = space
            var translated: UInt64 = 0xDEAD
            let ok = try k.hal.translateBusAddress(type, busNumber: bus, busAddress: address, addressSpace: &addressSpace, translatedAddress: &translated)
            return (ok, translated, addressSpace)
        }
        #expect(try translate(.internal_, 0, 0x1234_5678, 0) == (true, 0x1234_5678, 0))
        #expect(try translate(.isa, 0, 0x3F8, 1) == (true, 0x3F8, 1))          // COM1 ports stay in I/O space
        #expect(try translate(.isa, 0, 0xD_0000, 0) == (true, 0xD_0000, 0))
        #expect(try translate(.isa, 0, 0x200_0000, 0) == (true, 0x200_0000, 0)) // past 24 bits: falls back to EISA
        #expect(try translate(.eisa, 0, 0x1_0000, 1) == (false, 0xDEAD, 1))    // I/O ports end at 0xFFFF
        #expect(try translate(.pciBus, 0, 0xF000_0000, 0) == (true, 0xF000_0000, 0))
        #expect(try translate(.pciBus, 1, 0x4000_0010, 0) == (true, 0xF010_0010, 0)) // the bridge window on bus 1
        #expect(try translate(.pciBus, 2, 0x1000, 0) == (false, 0xDEAD, 0))     // no PCI bus 2
        #expect(try translate(.microChannel, 0, 0x1000, 0) == (false, 0xDEAD, 0))
        #expect(try translate(.internal_, 0, 0x1000, 7) == (false, 0xDEAD, 7))  // no such address space
    }

    @Test func ioSpaceMappingOfDeviceMemoryAndOfALockedUserPage() throws {
        let k = try Kernel()
        let device = try #require(try k.mm.mapIoSpace(0xF000_0010, numberOfBytes: 0x20, cacheType: .mmNonCached))
        #expect(device & 0xFFF == 0x10)
        try k.env.writeMemory(device, [0xD0, 0x0D])
        #expect(k.inspect.physicalBytes(0xF000_0010, count: 2) == [0xD0, 0x0D])
        try k.mm.unmapIoSpace(device, numberOfBytes: 0x20)
        #expect(k.inspect.systemPteUsage.inUse == 0)
        // RAM through MmMapIoSpace: a locked user page seen through a second mapping.
        let (buffer, mdl) = try lockedSource(k)
        try k.env.writeMemory(buffer + 0x1234, Array("alias".utf8))
        let physical = try k.mm.getPhysicalAddress(buffer + 0x1234)
        let alias = try #require(try k.mm.mapIoSpace(physical, numberOfBytes: 5, cacheType: .mmCached))
        #expect(try k.env.readMemory(alias, count: 5) == Array("alias".utf8))
        try k.mm.unmapIoSpace(alias, numberOfBytes: 5)
        try k.mm.unlockPages(mdl)
        // An unlocked RAM page is 0xC4/0x83 under Verifier; an invalid cache type returns NULL.
        #expect(try k.mm.mapIoSpace(0xF000_0000, numberOfBytes: 0x10, cacheType: MemoryCachingType(rawValue: 7)) == nil)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x83, physical, 5, physical >> 12))) {
            try k.mm.mapIoSpace(physical, numberOfBytes: 5, cacheType: .mmCached)
        }
    }

    @Test func lockingDeviceMemoryMarksIoSpaceOrTripsVerifier() throws {
        for mode in [CheckingMode.free, .verifier] {
            let k = try Kernel(MachineConfiguration(checking: mode))
            let device = try #require(try k.mm.mapIoSpace(0xF000_0000, numberOfBytes: 0x1000, cacheType: .mmNonCached))
            let mdl = try #require(try k.io.allocateMdl(virtualAddress: device, length: 0x1000, secondaryBuffer: false, chargeQuota: false, irp: 0))
            if mode == .free {
                try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
                #expect(k.inspect.mdl(mdl)?.flags == [.allocatedFixedSize, .pagesLocked, .ioSpace])
                #expect(k.inspect.pfn(mdl, 0) == 0xF0000)
            } else {
                #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x6F, mdl, 0xF0000, 4095))) {
                    try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
                }
            }
        }
    }

    @Test func allocatePagesForMdlAndFreeThem() throws {
        let k = try Kernel()
        let free = k.inspect.freeFrameCount
        let mdl = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 0x3000))
        let header = try #require(k.inspect.mdl(mdl))
        #expect(header.startVa == 0 && header.byteOffset == 0 && header.byteCount == 0x3000)
        #expect(header.flags == .pagesLocked)
        #expect(k.inspect.freeFrameCount == free - 3)
        for index: UInt64 in 0..<3 {
            let pfn = try #require(k.inspect.pfn(mdl, index))
            #expect(pfn != 0 && pfn != 0xFFFF_FFFF)
            #expect(k.inspect.physicalBytes(pfn << 12, count: 16) == [UInt8](repeating: 0, count: 16))
        }
        try k.mm.freePagesFromMdl(mdl)
        #expect(k.inspect.pfn(mdl, 0) == 0xFFFF_FFFF)
        #expect(k.inspect.mdl(mdl)?.flags == [])
        #expect(k.inspect.freeFrameCount == free)
        // A second free finds the all-ones slot and stops; no frame is freed twice.
        try k.mm.freePagesFromMdl(mdl)
        #expect(k.inspect.freeFrameCount == free)
        // Fewer pages than asked when frames run out.
        var frames = 0
        k.faultDecider = { site in
            guard site.kind == .frame else { return .proceed }
            frames += 1
            return frames > 2 ? .fail(.insufficientResources) : .proceed
        }
        let partial = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 0x5000))
        #expect(k.inspect.mdl(partial)?.byteCount == 0x2000)
    }

    @Test func trimAndPageOutKeepDataAndNeverTouchLockedPages() throws {
        let k = try Kernel()
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x3000, protection: .readWrite))
        try k.env.writeMemory(buffer, Array(repeating: 0x11, count: 0x3000))
        try k.env.writeMemory(buffer + 0x2000, Array("kept".utf8))
        #expect(try k.mm.isAddressValid(buffer + 0x2000))
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: buffer, length: 0x1000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        #expect(try k.env.trimWorkingSet(k.currentProcessId) == 2)   // the locked first page stays
        #expect(try k.mm.isAddressValid(buffer))
        #expect(try !k.mm.isAddressValid(buffer + 0x2000))
        #expect(try k.mm.getPhysicalAddress(buffer + 0x2000) == 0)
        #expect(try k.env.readMemory(buffer + 0x2000, count: 4) == Array("kept".utf8))   // page-in restores it
        #expect(try k.mm.isAddressValid(buffer + 0x2000))
        #expect(try !k.env.pageOut(buffer))                                            // locked: refused
        try k.mm.unlockPages(mdl)
        #expect(try k.env.pageOut(buffer))
        #expect(try !k.mm.isAddressValid(buffer))
    }

    @Test func processExitWithLockedPages() throws {
        // Verifier's locked-page tracking (0xCB) exists from Vista on; NT 5.x is 0x76 even under Verifier.
        for (mode, version, code) in [(CheckingMode.free, WindowsVersion.nt60, UInt32(0x76)), (.verifier, .nt5, 0x76), (.verifier, .nt60, 0xCB)] {
            let k = try Kernel(MachineConfiguration(checking: mode, version: version))
            let buffer = try #require(try k.env.allocateUserBuffer(size: 0x2000, protection: .readWrite))
            let mdl = try #require(try k.io.allocateMdl(virtualAddress: buffer, length: 0x2000, secondaryBuffer: false, chargeQuota: false, irp: 0))
            try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
            let eprocess = k.inspect.mdl(mdl)!.process
            let expected = code == 0x76 ? BugCheck(0x76, 0, eprocess, 2, 0) : BugCheck(0xCB, 0, 0, mdl, 2)
            #expect(throws: KernelError.bugCheck(expected)) { try k.env.terminateProcess(8) }
        }
    }

    @Test func machineLineRoundTripsAndRejectsBadInput() throws {
        let configurations = [
            MachineConfiguration(),
            MachineConfiguration(architecture: .x64, ramBytes: 64 << 20, checking: .free, version: .nt61, lockLimitPages: 100),
            MachineConfiguration(architecture: .alpha, systemPtes: 64, checking: .checked, version: .nt40sp3, pciBuses: 4,
                                 devices: [DeviceWindow(.pciBus, bus: 3, busAddress: 0x1000_0000, length: 0x2000, physicalAddress: 0xE000_0000)],
                                 strictMappingChecks: true),
            MachineConfiguration(devices: []),
        ]
        for configuration in configurations {
            #expect(try MachineConfiguration(parsing: configuration.description) == configuration)
        }
        #expect(MachineConfiguration().description == "machine x86 ram=16M nonpaged=256K paged=1M ptes=512 mode=verifier version=5.1")
        #expect(throws: ConfigurationError("unknown architecture 'arm'; use x86, x64 or alpha")) { try MachineConfiguration(parsing: "machine arm") }
        #expect(throws: ConfigurationError("unknown mode 'fast'; use free, checked or verifier")) { try MachineConfiguration(parsing: "machine x86 mode=fast") }
        #expect(throws: ConfigurationError.self) { try MachineConfiguration(parsing: "machine x86 ram=12345") }
        #expect(throws: ConfigurationError.self) { try MachineConfiguration(parsing: "machine x86 colour=blue") }
    }
}

@Suite struct SpecPteTrackingTests {
    /// Driver Verifier tracks system PTE use (spec §4.3, 0xDA): unmapping I/O space with the wrong
    /// length is 0x02 (expected, requested count); at an address that is no mapping, 0x03.
    @Test func verifierCatchesWrongIoSpaceUnmaps() throws {
        let k = try Kernel()
        let va = try #require(try k.mm.mapIoSpace(0xF000_0000, numberOfBytes: 0x2000, cacheType: .mmNonCached))
        #expect(throws: KernelError.bugCheck(BugCheck(0xDA, 2, 0, 2, 1))) { try k.mm.unmapIoSpace(va, numberOfBytes: 0x1000) }
        let other = try Kernel()
        #expect(throws: KernelError.bugCheck(BugCheck(0xDA, 3, 0, 0, 0xC100_0000))) { try other.mm.unmapIoSpace(0xC100_0000, numberOfBytes: 0x1000) }
    }

    /// A free build just releases what it is told, which corrupts the PTE accounting (the invariants' job).
    @Test func freeBuildCorruptsSilently() throws {
        let k = try Kernel(MachineConfiguration(checking: .free))
        let va = try #require(try k.mm.mapIoSpace(0xF000_0000, numberOfBytes: 0x2000, cacheType: .mmNonCached))
        try k.mm.unmapIoSpace(va, numberOfBytes: 0x1000)
        #expect(k.inspect.systemPteUsage.corruptReleases == 1)
        #expect(k.inspect.systemPtesInUse == 1)
    }

    /// ExFreePool of a block forgets every MDL initialised inside it.
    @Test func freeingAPoolBlockForgetsTheMdlsInside() throws {
        let k = try Kernel()
        let block = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x200))
        try k.mm.initializeMdl(block + 0x40, baseVa: 0x10000, length: 0x1000)
        #expect(k.inspect.knownMdls.map(\.location.address) == [block + 0x40])
        try k.env.freePool(block)
        #expect(k.inspect.knownMdls.isEmpty)
    }
}
