import MemoryManager
import Testing

/// MmProbeAndLockPages and MmUnlockPages (spec §2.7, §2.8, §4.2): flags, Process, lock counts and PFNs;
/// the access-violation, page-in, quota and IRQL failures; unlock misuse; device memory; and a process
/// that exits with pages still locked. Most tests use `Construction.userBufferMdl`: a 3-page user buffer
/// and an MDL for 0x2000 bytes at offset 0x10.
@Suite struct ProbeAndLockTests {
    private func eprocess(_ k: Kernel) -> VirtualAddress { k.inspect.processes.first { $0.id == k.currentProcessId }!.eprocess }
    private func lockedPages(_ k: Kernel) -> Int64 { k.inspect.processes.first { $0.id == k.currentProcessId }!.lockedPages }

    @Test func probeAndLockSetsFlagsProcessLockCountsAndPfns() throws {
        let s = try Construction.userBufferMdl()
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
        let ro = try Construction.userBufferMdl(protection: .readOnly)
        #expect(throws: KernelError.raised(.accessViolation)) {
            try ro.kernel.mm.probeAndLockPages(ro.mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        }
        #expect(ro.kernel.inspect.mdl(ro.mdl)?.flags == .allocatedFixedSize)
        #expect(ro.kernel.inspect.mdl(ro.mdl)?.process == 0)
        #expect(ro.kernel.inspect.lockedFrames.isEmpty)
        // ...but read-only for read succeeds.
        try ro.kernel.mm.probeAndLockPages(ro.mdl, accessMode: .kernelMode, operation: .ioReadAccess)

        // A no-access page in the middle of the range.
        let na = try Construction.userBufferMdl()
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
        let s = try Construction.userBufferMdl()
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
        let s = try Construction.userBufferMdl { $0.lockLimitPages = 2 }
        #expect(throws: KernelError.raised(.workingSetQuota)) {
            try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
        #expect(s.kernel.inspect.lockedFrames.isEmpty)
    }

    @Test func verifierCatchesIrqlAndDoubleLock() throws {
        let s = try Construction.userBufferMdl()
        try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        // Locking again: 0xC4/0xB0 (MDL, flags, offending flags = PAGES_LOCKED).
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0xB0, s.mdl, 0x000A, 0x0002))) {
            try s.kernel.mm.probeAndLockPages(s.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
        let t = try Construction.userBufferMdl()
        try t.kernel.env.raiseIrql(.deviceLevel)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x70, 12, t.mdl, 0))) {
            try t.kernel.mm.probeAndLockPages(t.mdl, accessMode: .kernelMode, operation: .ioReadAccess)
        }
    }

    @Test func dispatchLevelProbeOfAPagedOutPageBugChecksButResidentPagesLock() throws {
        let s = try Construction.userBufferMdl(.free)
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

    @Test func unlockMisuseInVerifierMode() throws {
        let s = try Construction.userBufferMdl()
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x7C, s.mdl, 0x0008, 0))) { try s.kernel.mm.unlockPages(s.mdl) }
        let k = try Kernel()
        let pool = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x100))
        let nonpaged = try #require(try k.io.allocateMdl(virtualAddress: pool, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.buildMdlForNonPagedPool(nonpaged)
        #expect(throws: KernelError.bugCheck(BugCheck(0xC4, 0x7D, nonpaged, 0x000C, 0))) { try k.mm.unlockPages(nonpaged) }
    }

    @Test func doubleUnlockInFreeModeBugChecksProcessHasLockedPages() throws {
        let s = try Construction.userBufferMdl(.free)
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

    @Test func checkedModeAssertsInsteadOfVerifierCodes() throws {
        let s = try Construction.userBufferMdl(.checked)
        #expect(throws: KernelError.bugCheck(BugCheck(0x1E, 0x8000_0003, AssertionSite.unlockPagesLocked.rawValue, s.mdl, 0x0008))) {
            try s.kernel.mm.unlockPages(s.mdl)
        }
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
}
