import MemoryManager
import Testing

/// MmMapLockedPages(SpecifyCache), MmUnmapLockedPages and the MmGetSystemAddressForMdl(Safe) macros
/// (spec §2.9–§2.11, §4.2): kernel and user mappings, their failures and the Verifier's checks. Most
/// tests use `Construction.userBufferMdl`: a 3-page user buffer and an MDL for 0x2000 bytes at offset 0x10.
@Suite struct MappingTests {
    @Test func lockMapUnlockRoundTripOnEveryArchitecture() throws {
        for arch in Architecture.allCases {
            let kernel = try Kernel(MachineConfiguration(architecture: arch))
            let page = kernel.constants.pageSize
            let buffer = try #require(try kernel.env.allocateUserBuffer(size: 3 * page, protection: .readWrite))
            try kernel.env.writeMemory(buffer + 0x10, [1, 2, 3, 4])
            let mdl = try #require(try kernel.io.allocateMdl(virtualAddress: buffer + 0x10, length: UInt32(2 * page),
                                                              secondaryBuffer: false, chargeQuota: false, irp: 0))
            try kernel.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
            let system = try #require(try kernel.mm.getSystemAddressForMdlSafe(mdl, priority: .normalPagePriority))
            #expect(try kernel.env.readMemory(system, count: 4) == [1, 2, 3, 4])
            #expect(kernel.constants.byteOffset(system) == 0x10)
            try kernel.mm.unlockPages(mdl)
            let header = try #require(kernel.inspect.mdl(mdl))
            #expect(header.flags == [.allocatedFixedSize, .writeOperation])
            try kernel.io.freeMdl(mdl)
        }
    }

    @Test func kernelMappingCarriesTheByteOffsetAndAliasesTheUserPages() throws {
        let s = try Construction.userBufferMdl()
        let k = s.kernel
        try k.env.writeMemory(s.buffer + 0x10, Array("user bytes".utf8))
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        let system = try #require(try k.mm.getSystemAddressForMdl(s.mdl))
        #expect(system > 0x8000_0000)
        #expect(system & 0xFFF == 0x10)
        let header = try #require(k.inspect.mdl(s.mdl))
        #expect(header.mappedSystemVa == system)
        #expect(header.flags.contains(.mappedToSystemVa))
        #expect(try k.env.readMemory(system, count: 10) == Array("user bytes".utf8))
        try k.env.writeMemory(system + 0x1FF0, [0x42])
        #expect(try k.env.readMemory(s.buffer + 0x2000, count: 1) == [0x42])
        // A second call returns the same mapping without new PTEs.
        let inUse = k.inspect.systemPteUsage.inUse
        #expect(try k.mm.getSystemAddressForMdl(s.mdl) == system)
        #expect(k.inspect.systemPteUsage.inUse == inUse)
        // MmUnlockPages releases the mapping first.
        try k.mm.unlockPages(s.mdl)
        #expect(k.inspect.mdl(s.mdl)?.flags.contains(.mappedToSystemVa) == false)
        #expect(k.inspect.systemPteUsage.inUse == 0)
        #expect(try !k.mm.isAddressValid(system))
    }

    @Test func unmapLeavesAStaleMappedSystemVaThatFaults() throws {
        let s = try Construction.userBufferMdl()
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let system = try #require(try k.mm.mapLockedPages(s.mdl, accessMode: .kernelMode))
        try k.mm.unmapLockedPages(system, s.mdl)
        let header = try #require(k.inspect.mdl(s.mdl))
        #expect(!header.flags.contains(.mappedToSystemVa))
        #expect(header.mappedSystemVa == system)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB6, s.mdl, 0x000A, 0x0001))) { try k.mm.unmapLockedPages(system, s.mdl) }
        let t = try Construction.userBufferMdl()
        try t.kernel.mm.probeAndLockPages(t.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let stale = try #require(try t.kernel.mm.mapLockedPages(t.mdl, accessMode: .kernelMode))
        try t.kernel.mm.unmapLockedPages(stale, t.mdl)
        #expect(throws: KernelError.bugCheck(BugCheck(0x50, stale, 0, 0, 0))) { try t.kernel.env.readMemory(stale, count: 1) }
    }

    @Test func outOfSystemPtes() throws {
        let s = try Construction.userBufferMdl { $0.systemPtes = 2 }   // the MDL spans 3 pages
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        #expect(try k.mm.getSystemAddressForMdlSafe(s.mdl, priority: .normalPagePriority) == nil)
        #expect(try k.mm.mapLockedPagesSpecifyCache(s.mdl, accessMode: .kernelMode, cacheType: .mmCached, requestedAddress: 0,
                                                      bugCheckOnFailure: false, priority: .normalPagePriority) == nil)
        #expect(throws: KernelError.bugCheck(BugCheck(0x3F, 0, 3, 2, 2))) { try k.mm.mapLockedPages(s.mdl, accessMode: .kernelMode) }
    }

    @Test func mappingCanFailReturnsNullInsteadOfBugChecking() throws {
        let s = try Construction.userBufferMdl(.free) { $0.systemPtes = 2 }
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        // Drivers set the documented flag directly in Mdl->MdlFlags (offset 6 on x86).
        try k.env.writeMemory(s.mdl + 6, [0x0A, 0x20])   // ALLOCATED_FIXED_SIZE | PAGES_LOCKED | MAPPING_CAN_FAIL
        #expect(try k.mm.mapLockedPages(s.mdl, accessMode: .kernelMode) == nil)
        #expect(k.haltedBy == nil)
    }

    @Test func nt4BeforeSp4ReturnsThePageBase() throws {
        let s = try Construction.userBufferMdl { $0.version = .nt40sp3 }
        try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let mapped = try #require(try s.kernel.mm.mapLockedPages(s.mdl, accessMode: .kernelMode))
        #expect(mapped & 0xFFF == 0)
        #expect(s.kernel.inspect.mdl(s.mdl)?.mappedSystemVa == mapped + 0x10)
        // The same for a user-mode mapping (the documented change is not mode-specific). Found by `lockstep fuzz`.
        let user = try #require(try s.kernel.mm.mapLockedPages(s.mdl, accessMode: .userMode))
        #expect(user & 0xFFF == 0)
    }

    @Test func userModeMappingRules() throws {
        let s = try Construction.userBufferMdl()
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        let user = try #require(try k.mm.mapLockedPages(s.mdl, accessMode: .userMode))
        #expect(user < 0x8000_0000 && user & 0xFFF == 0x10)
        #expect(k.inspect.mdl(s.mdl)?.flags.contains(.mappedToSystemVa) == false)
        try k.env.writeMemory(user, [7, 7])
        #expect(try k.env.readMemory(s.buffer + 0x10, count: 2) == [7, 7])
        func specify(_ address: VirtualAddress) throws -> VirtualAddress? {
            try k.mm.mapLockedPagesSpecifyCache(s.mdl, accessMode: .userMode, cacheType: .mmCached, requestedAddress: address,
                                                bugCheckOnFailure: false, priority: .normalPagePriority)
        }
        #expect(throws: KernelError.raised(.invalidAddress)) { try specify(0x5000_0010) }
        #expect(throws: KernelError.raised(.invalidAddress)) { try specify(0x7FFE_0000) }
        #expect(throws: KernelError.raised(.conflictingAddresses)) { try specify(s.buffer) }
        try k.mm.unmapLockedPages(user, s.mdl)
        #expect(try !k.mm.isAddressValid(user))
        // A bogus user VA: 0xC4/0xB9 under Verifier.
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB9, 0x5000_0000, s.mdl, 0))) { try k.mm.unmapLockedPages(0x5000_0000, s.mdl) }
    }

    @Test func bogusUserUnmapIsIgnoredOnAFreeBuild() throws {
        let s = try Construction.userBufferMdl(.free)
        try s.kernel.mm.unmapLockedPages(0x5000_0000, s.mdl)
        #expect(s.kernel.haltedBy == nil)
    }

    @Test func verifierMapChecks() throws {
        let s = try Construction.userBufferMdl()
        // Not locked: 0xB3 (MDL, flags, missing PAGES_LOCKED).
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB3, s.mdl, 0x0008, 0x0002))) { try s.kernel.mm.mapLockedPages(s.mdl, accessMode: .kernelMode) }
        let t = try Construction.userBufferMdl()
        try t.kernel.mm.probeAndLockPages(t.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        _ = try t.kernel.mm.mapLockedPages(t.mdl, accessMode: .kernelMode)
        // Mapped twice: 0xB2 (MDL, flags, offending MAPPED_TO_SYSTEM_VA).
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB2, t.mdl, 0x000B, 0x0001))) { try t.kernel.mm.mapLockedPages(t.mdl, accessMode: .kernelMode) }
    }
}
