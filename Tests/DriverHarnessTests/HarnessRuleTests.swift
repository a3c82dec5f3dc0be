import DriverHarness
import ExampleDrivers
import LockstepPrograms
import MemoryManager
import Testing

/// Each harness check on a hand-written program and a driver with exactly that mistake (the correct
/// example driver with one step changed), and the fault gate's counting.
@Suite struct HarnessRuleTests {
    private func run(_ calls: String, faults: String = "", _ make: @escaping @Sendable () -> any Driver) throws -> DriverReport {
        let text = "# lockstep 1\nmachine x86\n\(faults)\n\(calls)"
        return try DriverRunner(name: "test", driver: make, recordTrace: true).run(try ProgramText.parse(text))
    }

    private static let read = """
        b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
        q1 = DriverRead(buffer=b0+0x10, length=0x1800, position=0x100, Neither)
        DriverCompleteDpc(q1)
        DriverUnload()
        """

    @Test func correctDriverPassesAndTheTraceShowsTheRequest() throws {
        let report = try run(Self.read) { CopyDriver() }
        #expect(report.finding == nil, "\(report.finding!)")
        #expect(report.requests == 1)
        #expect(report.trace.contains { $0.contains("DPC of q1 → completed STATUS_SUCCESS information=0x1800") })
    }

    /// Fault lines count only the driver's own decisions: DriverEntry's extension (pool 1) and register
    /// mapping (ptes 1), then for the METHOD_NEITHER read its MDL (pool 2), context block (pool 3), the
    /// demand-zero pages its probe faults in (frame 1, 2) and its system mapping (ptes 2).
    @Test func faultPointsAreTheDriversDecisionsAndTheCorrectDriverSurvivesEach() throws {
        let variants = try DriverSystematicFaults.run(try ProgramText.parse("# lockstep 1\nmachine x86\n" + Self.read),
                                                       runner: DriverRunner(driver: { CopyDriver() }))
        #expect(variants.compactMap { $0.fault?.description } == [
            "fault pool.nonpaged nth=1", "fault pool.nonpaged nth=2", "fault pool.nonpaged nth=3",
            "fault ptes nth=1", "fault ptes nth=2", "fault frame nth=1", "fault frame nth=2",
        ])
        for variant in variants { #expect(variant.report.finding == nil, "\(variant.fault!): \(variant.report.finding!)") }
        let noDriver = try run(Self.read, faults: "fault pool.nonpaged nth=1") { CopyDriver() }
        #expect(noDriver.trace.contains { $0.contains("DriverEntry → STATUS_INSUFFICIENT_RESOURCES") })
        #expect(noDriver.trace.contains { $0.contains("q1 → STATUS_NO_SUCH_DEVICE") })
    }

    @Test func lockedPagesLeftAtProcessEndAreTheEnginesBugCheck() throws {
        let report = try run(Self.read.replacingOccurrences(of: "DriverUnload()", with: ""), faults: "fault ptes nth=2") { ForgetUnlockOnErrorPathDriver() }
        let finding = try #require(report.finding)
        #expect(finding.signature.description == "driver:test:leaked-locked-pages@process-end")
        // Verifier on NT 5.x tracks no locked pages: PROCESS_HAS_LOCKED_PAGES (0, EPROCESS, 2 pages, 0).
        #expect(finding.bugCheck?.code == 0x76 && finding.bugCheck?.parameterList[2] == 2)   // two pages still locked
    }

    @Test func aReadThatReportsOtherDataIsFound() throws {
        let finding = try #require(try run(Self.read) { OffByOneReadDriver() }.finding)
        #expect(finding.rule == .readDataMismatch && finding.bugCheck == nil && finding.request == "q1")
    }

    @Test func aWriteThatNeverReachesTheDeviceIsFound() throws {
        let write = """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            WriteMemory(b0, data=C0FFEE)
            q1 = DriverWrite(buffer=b0, length=0x3, position=0x40, Direct)
            DriverCompleteDpc(q1)
            """
        #expect(try run(write) { CopyDriver() }.finding == nil)
        #expect(try run(write) { DroppedWriteDriver() }.finding?.rule == .writeDataMismatch)
    }

    @Test func overlappingRequestsAreNotJudged() throws {
        // q2 writes the bytes q1 reads while q1 is pending: q1's data cannot be judged, so no finding.
        let report = try run("""
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            WriteMemory(b0+0x1000, data=0102030405)
            q1 = DriverRead(buffer=b0, length=0x10, position=0x0, Buffered)
            q2 = DriverWrite(buffer=b0+0x1000, length=0x5, position=0x4, Buffered)
            DriverCompleteDpc(q2)
            DriverCompleteDpc(q1)
            """) { OffByOneReadDriver() }
        #expect(report.finding == nil)
    }

    @Test func informationBeyondTheBufferIsFound() throws {
        #expect(try run(Self.read) { OverReportingDriver() }.finding?.rule == .informationExceedsLength)
    }

    @Test func registersLeftMappedAtUnloadAreFound() throws {
        let finding = try #require(try run(Self.read) { RegisterLeakDriver() }.finding)
        #expect(finding.signature.description == "driver:test:leaked-io-space-mapping@DriverUnload")
        #expect(finding.bugCheck?.parameterList[0] == 0x62)
    }

    @Test func poolLeftByAFailedDriverEntryIsFound() throws {
        let finding = try #require(try run(Self.read, faults: "fault ptes nth=1") { LeakyEntryDriver() }.finding)
        #expect(finding.signature.description == "driver:test:leaked-pool@DriverEntry" && finding.step == 0)
    }

    @Test func aRequestThatNeverCompletesIsFound() throws {
        #expect(try run(Self.read) { NeverCompletesDriver() }.finding?.signature.description == "driver:test:request-never-completed@DriverUnload")
    }

    @Test func aDpcThatLowersTheIrqlIsFound() throws {
        let finding = try #require(try run(Self.read) { LowersIrqlDriver() }.finding)
        #expect(finding.rule == .irqlNotRestored && finding.phase == .dpc)
    }

    @Test func aNullMdlIsFound() throws {
        let empty = """
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            q1 = DriverRead(buffer=b0, length=0x0, position=0x0, Direct)
            DriverCompleteDpc(q1)
            """
        #expect(try run(empty) { CopyDriver() }.finding == nil)
        #expect(try run(empty) { EmptyDirectDriver() }.finding?.rule == .nullMdl)
    }

    /// Rules the engine's own verdicts decide (Driver Verifier's checks inside the routines), reused
    /// by the harness with the rule named.
    @Test func engineBugChecksBecomeRules() throws {
        let unmapped = try #require(try run(Self.read) { UnmapBeforeTransferDriver() }.finding)
        #expect(unmapped.rule == .useAfterUnmap && unmapped.bugCheck?.code == 0x50 && unmapped.phase == .dpc)
        let twice = try #require(try run(Self.read) { FreeTwiceDriver() }.finding)
        #expect(twice.rule == .useAfterFree && twice.bugCheck?.code == 0xD5)
        let paged = try #require(try run(Self.read) { PagedPoolInDpcDriver() }.finding)
        #expect(paged.rule == .irql && paged.phase == .dpc && paged.bugCheck?.parameterList[0] == 0x01)
    }
}

// MARK: The correct driver with one step changed

/// Reads the device one byte too far on.
final class OffByOneReadDriver: CopyDriver {
    override func transfer(_ request: Request, _ device: SimulatedDevice, _ address: VirtualAddress) throws(KernelError) -> UInt64 {
        guard request.readsDevice else { return try super.transfer(request, device, address) }
        return try device.read(at: request.position + 1, count: request.length, into: address)
    }
}

/// Reports writes as done without moving the data.
final class DroppedWriteDriver: CopyDriver {
    override func transfer(_ request: Request, _ device: SimulatedDevice, _ address: VirtualAddress) throws(KernelError) -> UInt64 {
        request.writesDevice ? request.length : try super.transfer(request, device, address)
    }
}

/// Reports one byte more than the buffer holds.
final class OverReportingDriver: CopyDriver {
    override func transfer(_ request: Request, _ device: SimulatedDevice, _ address: VirtualAddress) throws(KernelError) -> UInt64 {
        try super.transfer(request, device, address) + 1
    }
}

/// Forgets MmUnmapIoSpace for its registers at unload.
final class RegisterLeakDriver: CopyDriver {
    override func unload(_ services: DriverServices) throws(KernelError) {
        try services.kernel.env.freePool(deviceExtension)
    }
}

/// Fails DriverEntry when the register mapping fails, without freeing its extension.
final class LeakyEntryDriver: CopyDriver {
    override func driverEntry(_ services: DriverServices) throws(KernelError) -> NTStatus {
        guard try services.kernel.env.allocatePool(.nonPagedPool, bytes: 0x40) != nil else { return .insufficientResources }
        guard try services.kernel.mm.mapIoSpace(services.registersPhysical, numberOfBytes: 0x1000, cacheType: .mmNonCached) != nil else {
            return .insufficientResources
        }
        return .success
    }

    override func unload(_ services: DriverServices) throws(KernelError) {}
}

/// Its device never finishes and its requests cannot be cancelled.
final class NeverCompletesDriver: CopyDriver {
    override func completionDpc(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult { .pending }
    override func cancel(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult { .pending }
}

/// Drops to PASSIVE_LEVEL inside its DPC.
final class LowersIrqlDriver: CopyDriver {
    override func completionDpc(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        let result = try super.completionDpc(request, services)
        try services.kernel.env.lowerIrql(.passiveLevel)
        return result
    }
}

/// Queues zero-length direct requests and maps Irp->MdlAddress, which is NULL for them.
final class EmptyDirectDriver: CopyDriver {
    override func start(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        request.length == 0 && request.method == .direct ? .pending : try super.start(request, services)
    }
}

/// Unmaps its METHOD_NEITHER mapping in the DPC, then transfers through the stale address.
final class UnmapBeforeTransferDriver: CopyDriver {
    override func systemAddress(_ request: Request, _ kernel: Kernel) throws(KernelError) -> VirtualAddress? {
        guard let neither = request.driverContext as? NeitherTransfer else { return try super.systemAddress(request, kernel) }
        try kernel.mm.unmapLockedPages(neither.systemAddress, neither.mdl)
        request.driverContext = nil
        return neither.systemAddress
    }
}

/// Frees its METHOD_NEITHER MDL twice.
final class FreeTwiceDriver: CopyDriver {
    override func release(_ request: Request, _ kernel: Kernel) throws(KernelError) {
        let mdl = (request.driverContext as? NeitherTransfer)?.mdl
        try super.release(request, kernel)
        if let mdl { try kernel.io.freeMdl(mdl) }
    }
}

/// Allocates paged pool in its DPC, at DISPATCH_LEVEL.
final class PagedPoolInDpcDriver: CopyDriver {
    override func completionDpc(_ request: Request, _ services: DriverServices) throws(KernelError) -> RequestResult {
        _ = try services.kernel.env.allocatePool(.pagedPool, bytes: 0x10)
        return try super.completionDpc(request, services)
    }
}
