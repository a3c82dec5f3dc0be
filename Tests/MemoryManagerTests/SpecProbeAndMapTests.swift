import MemoryManager
import Testing

/// MmProbeAndLockPages, MmUnlockPages, MmMapLockedPages(SpecifyCache), MmUnmapLockedPages and the
/// MmGetSystemAddressForMdl macros (spec §2.7–§2.11, §4.2).
@Suite struct SpecProbeAndMapTests {
    struct Setup {
        let kernel: Kernel
        let buffer: VirtualAddress
        let mdl: VirtualAddress
    }

    /// A 3-page user buffer and an MDL for 0x2000 bytes at offset 0x10 (3 pages spanned).
    private func setup(_ mode: CheckingMode = .verifier, protection: PageProtection = .readWrite,
                       configure: (inout MachineConfiguration) -> Void = { _ in }) throws -> Setup {
        var configuration = MachineConfiguration(checking: mode)
        configure(&configuration)
        let kernel = try Kernel(configuration)
        let buffer = try #require(try kernel.env.allocateUserBuffer(size: 0x3000, protection: protection))
        let mdl = try #require(try kernel.io.allocateMdl(virtualAddress: buffer + 0x10, length: 0x2000, secondaryBuffer: false,
                                                         chargeQuota: false, irp: 0))
        return Setup(kernel: kernel, buffer: buffer, mdl: mdl)
    }

    private func eprocess(_ k: Kernel) -> VirtualAddress { k.inspect.processes.first { $0.id == k.currentProcessId }!.eprocess }
    private func lockedPages(_ k: Kernel) -> Int64 { k.inspect.processes.first { $0.id == k.currentProcessId }!.lockedPages }

    @Test func probeAndLockSetsFlagsProcessLockCountsAndPfns() throws {
        let s = try setup()
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioModifyAccess)
        let header = try #require(k.inspect.mdl(s.mdl))
        #expect(header.flags == [.allocatedFixedSize, .pagesLocked, .writeOperation])
        #expect(header.process == eprocess(k))
        #expect(lockedPages(k) == 3)
        for index: UInt64 in 0..<3 {
            let pfn = try #require(k.inspect.pfn(s.mdl, index))
            #expect(pfn != 0 && pfn != 0xFFFF_FFFF)
            #expect(k.inspect.frame(pfn)?.lockCount == 1)
            #expect(try k.mm.getPhysicalAddress(s.buffer + index * 0x1000 + 0x123) == pfn << 12 | 0x123)
        }
        try k.mm.unlockPages(s.mdl)
        let after = try #require(k.inspect.mdl(s.mdl))
        // Unlock clears PAGES_LOCKED only; Process and WRITE_OPERATION stay (spec §2.8 step 5).
        #expect(after.flags == [.allocatedFixedSize, .writeOperation])
        #expect(after.process == eprocess(k))
        #expect(lockedPages(k) == 0)
        #expect(k.inspect.frame(k.inspect.pfn(s.mdl, 0)!)?.lockCount == 0)
    }

    @Test func readAccessClearsWriteOperationAndSystemBuffersHaveNoProcess() throws {
        let k = try Kernel()
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x800))
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: pool, length: 0x800, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        #expect(k.inspect.mdl(mdl)?.flags == [.allocatedFixedSize, .pagesLocked])
        #expect(k.inspect.mdl(mdl)?.process == 0)
        #expect(lockedPages(k) == 0)
    }

    @Test func everyAccessViolationCaseRaisesAndLocksNothing() throws {
        // Read-only buffer locked for write.
        let ro = try setup(protection: .readOnly)
        #expect(throws: KernelError.raised(.accessViolation)) {
            try ro.kernel.mm.probeAndLockPages(ro.mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        }
        #expect(ro.kernel.inspect.mdl(ro.mdl)?.flags == .allocatedFixedSize)
        #expect(ro.kernel.inspect.mdl(ro.mdl)?.process == 0)
        #expect(ro.kernel.inspect.lockedFrames.isEmpty)
        // ...but read-only for read succeeds.
        try ro.kernel.mm.probeAndLockPages(ro.mdl, accessMode: .kernelMode, operation: .ioReadAccess)

        // A no-access page in the middle of the range.
        let na = try setup()
        #expect(try na.kernel.env.protectUserBuffer(na.buffer + 0x1000, size: 0x1000, protection: .noAccess))
        #expect(throws: KernelError.raised(.accessViolation)) {
            try na.kernel.mm.probeAndLockPages(na.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
        #expect(na.kernel.inspect.lockedFrames.isEmpty)
        #expect(na.kernel.inspect.pfn(na.mdl, 1) == 0xFFFF_FFFF) // the failing page's slot holds (PFN_NUMBER)-1

        // An unmapped user range.
        let k = try Kernel()
        let unmapped = try #require(try k.io.allocateMdl(virtualAddress: 0x5000_0000, length: 0x10, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(throws: KernelError.raised(.accessViolation)) { try k.mm.probeAndLockPages(unmapped, accessMode: .kernelMode, operation: .ioReadAccess) }

        // UserMode with a kernel address, and UserMode with zero length.
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x100))
        let kernelRange = try #require(try k.io.allocateMdl(virtualAddress: pool, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(throws: KernelError.raised(.accessViolation)) { try k.mm.probeAndLockPages(kernelRange, accessMode: .userMode, operation: .ioReadAccess) }
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x1000, protection: .readWrite))
        let empty = try #require(try k.io.allocateMdl(virtualAddress: buffer, length: 0, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(throws: KernelError.raised(.accessViolation)) { try k.mm.probeAndLockPages(empty, accessMode: .userMode, operation: .ioReadAccess) }
        #expect(k.haltedBy == nil)
    }

    @Test func pageInFailureRaisesInPageErrorAndTheAddressStaysInvalid() throws {
        let s = try setup()
        let k = s.kernel
        try k.env.writeMemory(s.buffer + 0x1000, [0xAB])
        #expect(try k.env.pageOut(s.buffer + 0x1000))
        #expect(try !k.mm.isAddressValid(s.buffer + 0x1000))
        k.faultDecider = { $0.kind == .pageIn ? .fail(.deviceDataError) : .proceed }
        #expect(throws: KernelError.raised(.inPageError)) {
            try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
        #expect(try !k.mm.isAddressValid(s.buffer + 0x1000))
        #expect(k.inspect.lockedFrames.isEmpty)
        #expect(k.inspect.mdl(s.mdl)?.flags.contains(.pagesLocked) == false)
        // Once the pagefile reads again, the page comes back with its contents.
        k.faultDecider = nil
        #expect(try k.env.readMemory(s.buffer + 0x1000, count: 1) == [0xAB])
    }

    @Test func lockLimitRaisesWorkingSetQuota() throws {
        let s = try setup { $0.lockLimitPages = 2 }
        #expect(throws: KernelError.raised(.workingSetQuota)) {
            try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
        #expect(s.kernel.inspect.lockedFrames.isEmpty)
    }

    @Test func verifierCatchesIrqlAndDoubleLock() throws {
        let s = try setup()
        try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        // Locking again: 0xC4/0xB0 (MDL, flags, offending flags = PAGES_LOCKED).
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB0, s.mdl, 0x000A, 0x0002))) {
            try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
        let t = try setup()
        try t.kernel.env.raiseIrql(.deviceLevel)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x70, 12, t.mdl, 0))) {
            try t.kernel.mm.probeAndLockPages(t.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
    }

    @Test func dispatchLevelProbeOfAPagedOutPageBugChecksButResidentPagesLock() throws {
        let s = try setup(.free)
        let k = s.kernel
        try k.env.writeMemory(s.buffer, [UInt8](repeating: 1, count: 0x3000))
        try k.env.raiseIrql(.dispatchLevel)
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        try k.mm.unlockPages(s.mdl)
        try k.env.lowerIrql(.passiveLevel)
        #expect(try k.env.pageOut(s.buffer + 0x2000))
        try k.env.raiseIrql(.dispatchLevel)
        #expect(throws: KernelError.bugCheck(BugCheck(0x0A, s.buffer + 0x2000, 2, 0, 0))) {
            try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
    }

    @Test func unlockMisuseInVerifierMode() throws {
        let s = try setup()
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x7C, s.mdl, 0x0008, 0))) { try s.kernel.mm.unlockPages(s.mdl) }
        let k = try Kernel()
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x100))
        let nonpaged = try #require(try k.io.allocateMdl(virtualAddress: pool, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.buildMdlForNonPagedPool(nonpaged)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x7D, nonpaged, 0x000C, 0))) { try k.mm.unlockPages(nonpaged) }
    }

    @Test func doubleUnlockInFreeModeBugChecksProcessHasLockedPages() throws {
        let s = try setup(.free)
        try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        try s.kernel.mm.unlockPages(s.mdl)
        // The process has 0 locked pages and the MDL still names it: 0x76 (1, MDL, 0, 0).
        #expect(throws: KernelError.bugCheck(BugCheck(0x76, 1, s.mdl, 0, 0))) { try s.kernel.mm.unlockPages(s.mdl) }
    }

    @Test func unlockingMoreThanLockedIsPfnListCorrupt() throws {
        let k = try Kernel(MachineConfiguration(checking: .free))
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x100))
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: pool, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let pfn = try #require(k.inspect.pfn(mdl, 0))
        try k.mm.unlockPages(mdl)
        // A system buffer's MDL has no Process, so the second unlock reaches the PFN: 0x4E (7, PFN, 1, 0).
        #expect(throws: KernelError.bugCheck(BugCheck(0x4E, 7, pfn, 1, 0))) { try k.mm.unlockPages(mdl) }
    }

    @Test func kernelMappingCarriesTheByteOffsetAndAliasesTheUserPages() throws {
        let s = try setup()
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
        let s = try setup()
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let system = try #require(try k.mm.mapLockedPages(s.mdl, accessMode: .kernelMode))
        try k.mm.unmapLockedPages(system, s.mdl)
        let header = try #require(k.inspect.mdl(s.mdl))
        #expect(!header.flags.contains(.mappedToSystemVa))
        #expect(header.mappedSystemVa == system)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB6, s.mdl, 0x000A, 0x0001))) { try k.mm.unmapLockedPages(system, s.mdl) }
        let t = try setup()
        try t.kernel.mm.probeAndLockPages(t.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let stale = try #require(try t.kernel.mm.mapLockedPages(t.mdl, accessMode: .kernelMode))
        try t.kernel.mm.unmapLockedPages(stale, t.mdl)
        #expect(throws: KernelError.bugCheck(BugCheck(0x50, stale, 0, 0, 0))) { try t.kernel.env.readMemory(stale, count: 1) }
    }

    @Test func outOfSystemPtes() throws {
        let s = try setup { $0.systemPtes = 2 }   // the MDL spans 3 pages
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        #expect(try k.mm.getSystemAddressForMdlSafe(s.mdl, priority: .normalPagePriority) == nil)
        #expect(try k.mm.mapLockedPagesSpecifyCache(s.mdl, accessMode: .kernelMode, cacheType: .mmCached, requestedAddress: 0,
                                                      bugCheckOnFailure: false, priority: .normalPagePriority) == nil)
        #expect(throws: KernelError.bugCheck(BugCheck(0x3F, 0, 3, 2, 2))) { try k.mm.mapLockedPages(s.mdl, accessMode: .kernelMode) }
    }

    @Test func mappingCanFailReturnsNullInsteadOfBugChecking() throws {
        let s = try setup(.free) { $0.systemPtes = 2 }
        let k = s.kernel
        try k.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        // Drivers set the documented flag directly in Mdl->MdlFlags (offset 6 on x86).
        try k.env.writeMemory(s.mdl + 6, [0x0A, 0x20])   // ALLOCATED_FIXED_SIZE | PAGES_LOCKED | MAPPING_CAN_FAIL
        #expect(try k.mm.mapLockedPages(s.mdl, accessMode: .kernelMode) == nil)
        #expect(k.haltedBy == nil)
    }

    @Test func nt4BeforeSp4ReturnsThePageBase() throws {
        let s = try setup { $0.version = .nt40sp3 }
        try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        let mapped = try #require(try s.kernel.mm.mapLockedPages(s.mdl, accessMode: .kernelMode))
        #expect(mapped & 0xFFF == 0)
        #expect(s.kernel.inspect.mdl(s.mdl)?.mappedSystemVa == mapped + 0x10)
        // The same for a user-mode mapping (the documented change is not mode-specific). Found by `lockstep fuzz`.
        let user = try #require(try s.kernel.mm.mapLockedPages(s.mdl, accessMode: .userMode))
        #expect(user & 0xFFF == 0)
    }

    @Test func userModeMappingRules() throws {
        let s = try setup()
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
        let s = try setup(.free)
        try s.kernel.mm.unmapLockedPages(0x5000_0000, s.mdl)
        #expect(s.kernel.haltedBy == nil)
    }

    @Test func verifierMapChecks() throws {
        let s = try setup()
        // Not locked: 0xB3 (MDL, flags, missing PAGES_LOCKED).
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB3, s.mdl, 0x0008, 0x0002))) { try s.kernel.mm.mapLockedPages(s.mdl, accessMode: .kernelMode) }
        let t = try setup()
        try t.kernel.mm.probeAndLockPages(t.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        _ = try t.kernel.mm.mapLockedPages(t.mdl, accessMode: .kernelMode)
        // Mapped twice: 0xB2 (MDL, flags, offending MAPPED_TO_SYSTEM_VA).
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB2, t.mdl, 0x000B, 0x0001))) { try t.kernel.mm.mapLockedPages(t.mdl, accessMode: .kernelMode) }
    }

    @Test func checkedModeAssertsInsteadOfVerifierCodes() throws {
        let s = try setup(.checked)
        #expect(throws: KernelError.bugCheck(BugCheck(0x1E, 0x8000_0003, AssertionSite.unlockPagesLocked.rawValue, s.mdl, 0x0008))) {
            try s.kernel.mm.unlockPages(s.mdl)
        }
    }
}
