import MemoryManager
import Testing

@Suite struct SmokeTests {
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
}

@Suite struct ProcessIdentityTests {
    /// docs/ENGINE_CONVENTIONS.md: System is process 4, the boot-time user process is 8 and current,
    /// CreateProcess hands out 12, 16, ….
    @Test func bootProcessesAndCreatedProcessIds() throws {
        let kernel = try Kernel()
        #expect(kernel.inspect.processes.map(\.id) == [4, 8])
        #expect(kernel.currentProcessId == 8)
        #expect(try kernel.env.createProcess() == 12)
        #expect(try kernel.env.createProcess() == 16)
    }
}
