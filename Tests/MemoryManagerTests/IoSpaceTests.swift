import MemoryManager
import Testing

/// MmMapIoSpace and MmUnmapIoSpace (spec §2.17, §2.18, §4.3): device memory and RAM aliases, and the
/// Verifier's system PTE tracking of wrong unmaps.
@Suite struct IoSpaceTests {
    @Test func ioSpaceMappingOfDeviceMemoryAndOfALockedUserPage() throws {
        let k = try Kernel()
        let device = try #require(try k.mm.mapIoSpace(0xF000_0010, numberOfBytes: 0x20, cacheType: .mmNonCached))
        #expect(device & 0xFFF == 0x10)
        try k.env.writeMemory(device, [0xD0, 0x0D])
        #expect(k.inspect.physicalBytes(0xF000_0010, count: 2) == [0xD0, 0x0D])
        try k.mm.unmapIoSpace(device, numberOfBytes: 0x20)
        #expect(k.inspect.systemPteUsage.inUse == 0)
        // RAM through MmMapIoSpace: a locked user page seen through a second mapping.
        let (buffer, mdl) = try Construction.lockedUserMdl(k)
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
    @Test func freeBuildWrongLengthUnmapCorruptsThePteAccountingSilently() throws {
        let k = try Kernel(MachineConfiguration(checking: .free))
        let va = try #require(try k.mm.mapIoSpace(0xF000_0000, numberOfBytes: 0x2000, cacheType: .mmNonCached))
        try k.mm.unmapIoSpace(va, numberOfBytes: 0x1000)
        #expect(k.inspect.systemPteUsage.corruptReleases == 1)
        #expect(k.inspect.systemPtesInUse == 1)
    }
}
