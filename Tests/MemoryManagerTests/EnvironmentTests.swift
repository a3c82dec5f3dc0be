import MemoryManager
import Testing

/// The environment the routines run in (`Kernel.env`): the boot processes and process ids, working-set
/// trimming and paging, and pool blocks.
@Suite struct EnvironmentTests {
    /// docs/ENGINE_CONVENTIONS.md: System is process 4, the boot-time user process is 8 and current,
    /// CreateProcess hands out 12, 16, ….
    @Test func bootProcessesAndCreatedProcessIds() throws {
        let kernel = try Kernel()
        #expect(kernel.inspect.processes.map(\.id) == [4, 8])
        #expect(kernel.currentProcessId == 8)
        #expect(try kernel.env.createProcess() == 12)
        #expect(try kernel.env.createProcess() == 16)
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
