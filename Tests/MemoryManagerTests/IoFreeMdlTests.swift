import MemoryManager
import Testing

/// IoFreeMdl (§2.5): lookaside reuse, the Verifier checks of §4.2/§4.3, and the unmapping of a partial
/// MDL's own mapping (via MmPrepareMdlForReuse, §2.13).
@Suite struct IoFreeMdlTests {
    /// x86 MDL header offsets (§1.1): Process 8, MappedSystemVa 12.
    private let processOffset: UInt64 = 8, mappedOffset: UInt64 = 12

    @Test func freedFixedSizeMdlComesBackFromTheNextAllocationWithStaleFields() throws {
        let k = try Construction.kernel(.x86, mode: .free)
        let mdl = try #require(try Construction.allocate(k, 0x1_0000, 0x1000))
        #expect(try Construction.header(k, mdl).flags == .allocatedFixedSize)
        try Construction.poke(k, mdl + processOffset, width: 4, 0x1111_2222)
        try Construction.poke(k, mdl + mappedOffset, width: 4, 0x3333_4444)
        try k.io.freeMdl(mdl)
        #expect(k.inspect.lookasideMdls == [mdl])
        let again = try #require(try Construction.allocate(k, 0x5_0123, 0x10))
        #expect(again == mdl)
        #expect(k.inspect.lookasideMdls.isEmpty)
        let h = try Construction.header(k, again)
        // §2.4 step 4: Process/MappedSystemVa are not initialised (lookaside blocks are recycled).
        #expect(h.process == 0x1111_2222)
        #expect(h.mappedSystemVa == 0x3333_4444)
        // MmInitializeMdl's fields are fresh.
        #expect(h.startVa == 0x5_0000)
        #expect(h.byteOffset == 0x123)
        #expect(h.byteCount == 0x10)
        #expect(h.size == 32)
        #expect(h.next == 0)
        #expect(h.flags == .allocatedFixedSize)

        // The same with the Process a probe-and-lock set: unlocked and freed, the MDL keeps naming it.
        let f = try Construction.kernel(.x86, mode: .free)
        let (_, locked) = try Construction.lockedUserMdl(f)
        let process = try Construction.header(f, locked).process
        try f.mm.unlockPages(locked)
        try f.io.freeMdl(locked)
        let reused = try #require(try Construction.allocate(f, 0x2_0000, 0x10))
        #expect(reused == locked)
        #expect(try Construction.header(f, reused).process == process)    // not initialised by IoAllocateMdl
        #expect(try Construction.header(f, reused).flags == .allocatedFixedSize)
    }

    @Test func nonFixedMdlGoesBackToPoolNotTheLookaside() throws {
        let k = try Construction.kernel(.x86, mode: .free)
        let before = k.inspect.poolBytesInUse(.nonPagedPool)
        let mdl = try #require(try Construction.allocate(k, 0x1_0000, 30 * 0x1000))   // 30 pages > 23
        #expect(try Construction.header(k, mdl).flags == [])
        #expect(k.inspect.poolBytesInUse(.nonPagedPool) > before)
        try k.io.freeMdl(mdl)
        #expect(k.inspect.lookasideMdls.isEmpty)
        #expect(k.inspect.poolBytesInUse(.nonPagedPool) == before)
    }

    @Test func freeDoesNotFreeTheNextChain() throws {
        let k = try Construction.kernel(.x86)
        let irp = try #require(try k.env.allocateIrp())
        let m1 = try #require(try k.io.allocateMdl(virtualAddress: 0x1_0000, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: irp))
        let m2 = try #require(try k.io.allocateMdl(virtualAddress: 0x2_0040, length: 0x80, secondaryBuffer: true, chargeQuota: false, irp: irp))
        try k.io.freeMdl(m1)
        // m2 is still a live MDL: reading it through the macros does not fault in special pool.
        #expect(try k.mm.getMdlByteCount(m2) == 0x80)
        #expect(try k.mm.getMdlVirtualAddress(m2) == 0x2_0040)
        try k.io.freeMdl(m2)
        #expect(k.haltedBy == nil)
    }

    // MARK: Misuse under Driver Verifier (§2.5, §4.2, §4.3)

    @Test func verifierFreeOfAStillMappedMdlIsC4B8() throws {
        let k = try Construction.kernel(.x86, mode: .verifier)
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x2000, protection: .readWrite))
        let mdl = try #require(try Construction.allocate(k, buffer, 0x2000))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        _ = try #require(try k.mm.getSystemAddressForMdlSafe(mdl, priority: .normalPagePriority))
        let check = try #require(Construction.bugCheck { try k.io.freeMdl(mdl) })
        #expect(check.code == 0xC4)
        #expect(check.parameters.0 == 0xB8)
        #expect(check.parameters.1 == mdl)
        // P3 = flags: ALLOCATED_FIXED_SIZE 0x8 | PAGES_LOCKED 0x2 | MAPPED_TO_SYSTEM_VA 0x1.
        #expect(check.parameters.2 == 0x0B)

        // Locked for write and mapped with MmGetSystemAddressForMdl: P3 has WRITE_OPERATION 0x80 too.
        let w = try Construction.kernel(.x86, mode: .verifier)
        let (_, written) = try Construction.lockedUserMdl(w)
        _ = try w.mm.getSystemAddressForMdl(written)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB8, written, 0x008B, 0))) { try w.io.freeMdl(written) }
    }

    /// §2.5: the free build frees the MDL and leaks the system PTEs — marked [inferred] in the spec.
    @Test func freeBuildFreeOfAMappedMdlLeaksItsPtesSpecUnsure() throws {
        let k = try Construction.kernel(.x86, mode: .free)
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x2000, protection: .readWrite))
        let mdl = try #require(try Construction.allocate(k, buffer, 0x2000))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let before = k.inspect.systemPteUsage.inUse
        _ = try #require(try k.mm.getSystemAddressForMdlSafe(mdl, priority: .normalPagePriority))
        #expect(k.inspect.systemPteUsage.inUse == before + 2)
        try k.io.freeMdl(mdl)
        #expect(k.haltedBy == nil)
        #expect(k.inspect.systemPteUsage.inUse == before + 2)
    }

    /// §2.5: on a checked build the MmPrepareMdlForReuse ASSERT fires. The spec says only "ASSERT"; the
    /// bug check code that results is the engine's convention, so only "some bug check" is asserted.
    @Test func checkedFreeOfAStillMappedMdlAssertsSpecUnsureCode() throws {
        let k = try Construction.kernel(.x86, mode: .checked)
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x1000, protection: .readWrite))
        let mdl = try #require(try Construction.allocate(k, buffer, 0x1000))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        _ = try #require(try k.mm.getSystemAddressForMdlSafe(mdl, priority: .normalPagePriority))
        #expect(Construction.bugCheck { try k.io.freeMdl(mdl) } != nil)
    }

    /// §2.4 step 2: the lookaside is tried before pool, so a parked block satisfies a fixed-size request
    /// even when every pool allocation would fail.
    @Test func lookasideBlockIsUsedEvenWhenPoolFails() throws {
        let k = try Construction.kernel(.x86, mode: .free)
        let mdl = try #require(try Construction.allocate(k, 0x1_0000, 0x1000))
        try k.io.freeMdl(mdl)
        k.faultDecider = { site in site.kind == .nonpagedPool ? .fail(.insufficientResources) : .proceed }
        #expect(try Construction.allocate(k, 0x2_0000, 0x2000) == mdl)
        #expect(try Construction.allocate(k, 0x2_0000, 0x2000) == nil)     // lookaside now empty
        #expect(try Construction.allocate(k, 0x2_0000, 40 * 0x1000) == nil) // non-fixed never uses it
    }

    @Test func verifierDoubleFreeIsD5() throws {
        let k = try Construction.kernel(.x86, mode: .verifier)
        let mdl = try #require(try Construction.allocate(k, 0x1_0000, 0x1000))
        try k.io.freeMdl(mdl)
        let check = try #require(Construction.bugCheck { try k.io.freeMdl(mdl) })
        #expect(check.code == 0xD5)
        #expect(check.parameters.0 == mdl)     // (VA, R/W, IP, 0)
        // A 0x10-byte MDL, with every parameter.
        let v = try Construction.kernel(.x86, mode: .verifier)
        let once = try #require(try Construction.allocate(v, 0x1_0000, 0x10))
        try v.io.freeMdl(once)
        #expect(throws: KernelError.bugCheck(BugCheck(0xD5, once, 0, 0, 0))) { try v.io.freeMdl(once) }
    }

    @Test func verifierDoubleFreeOfAPoolSizedMdlIsD5() throws {
        let k = try Construction.kernel(.x86, mode: .verifier)
        let mdl = try #require(try Construction.allocate(k, 0x1_0000, 40 * 0x1000))
        try k.io.freeMdl(mdl)
        let check = try #require(Construction.bugCheck { try k.io.freeMdl(mdl) })
        #expect(check.code == 0xD5)
    }

    // MARK: Partial MDL with its own mapping (§2.5 "MmPrepareMdlForReuse(Mdl) … unmapped first")

    @Test(arguments: [CheckingMode.verifier, .free, .checked])
    func freeingAPartialMdlReleasesItsOwnMapping(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode)
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x3000, protection: .readWrite))
        let source = try #require(try Construction.allocate(k, buffer, 0x3000))
        try k.mm.probeAndLockPages(source, accessMode: .kernelMode, operation: .ioWriteAccess)
        let before = k.inspect.systemPteUsage.inUse
        let target = try #require(try Construction.allocate(k, buffer + 0x1000, 0x2000))
        try k.io.buildPartialMdl(source: source, target: target, virtualAddress: buffer + 0x1000, length: 0x2000)
        _ = try #require(try k.mm.getSystemAddressForMdlSafe(target, priority: .normalPagePriority))
        let mapped = try Construction.header(k, target).flags
        #expect(mapped.isSuperset(of: [.partial, .mappedToSystemVa, .partialHasBeenMapped]))
        #expect(k.inspect.systemPteUsage.inUse == before + 2)
        try k.io.freeMdl(target)
        #expect(k.inspect.systemPteUsage.inUse == before)
        #expect(k.inspect.mdlSystemMappings.isEmpty)
        // A partial built after the source was mapped and unmapped again inherits no mapping: its own
        // is made on demand and IoFreeMdl releases it.
        let system = try #require(try k.mm.getSystemAddressForMdl(source))
        try k.mm.unmapLockedPages(system, source)
        let second = try #require(try Construction.allocate(k, 0, 0x2000))
        try k.io.buildPartialMdl(source: source, target: second, virtualAddress: buffer + 0x100, length: 0x1000)
        _ = try #require(try k.mm.getSystemAddressForMdlSafe(second, priority: .normalPagePriority))
        #expect(try Construction.header(k, second).flags == [.allocatedFixedSize, .partial, .mappedToSystemVa, .partialHasBeenMapped])
        #expect(k.inspect.systemPteUsage.inUse == 2)   // 0x1000 bytes at offset 0x100 span 2 pages
        try k.io.freeMdl(second)
        #expect(k.inspect.systemPteUsage.inUse == 0)
        try k.mm.unlockPages(source)
        try k.io.freeMdl(source)
        #expect(k.haltedBy == nil)
    }
}
