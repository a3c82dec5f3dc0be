import Lockstep
import LockstepPrograms
import MemoryManager
import Testing

/// Fault plans drive the engine's decision point; the model counts the same decisions and agrees.
@Suite struct FaultPlanTests {
    private func run(_ text: String) throws -> RunReport {
        let program = try ProgramText.parse(text)
        return Execution().run(program)
    }

    @Test func nthNonpagedPoolFailureMakesThatAllocationNull() throws {
        let report = try run("""
            # lockstep 1
            machine x86
            fault pool.nonpaged nth=2
            m0 = IoAllocateMdl(va=0x10000, length=0x100, secondary=false, quota=false, irp=none)
            m1 = IoAllocateMdl(va=0x10000, length=0x100, secondary=false, quota=false, irp=none)
            m2 = IoAllocateMdl(va=0x10000, length=0x100, secondary=false, quota=false, irp=none)
            """)
        #expect(report.verdict == .pass)
        #expect(report.steps.map(\.outcome).map { if case .returned(.number(0)) = $0 { true } else { false } } == [false, true, false])
    }

    @Test func failedPageInRaisesInPageErrorAndLocksNothing() throws {
        let report = try run("""
            # lockstep 1
            machine x86
            fault pagein page=b0+0x1000 status=STATUS_DEVICE_DATA_ERROR
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            WriteMemory(b0, data=0102)
            WriteMemory(b0+0x1000, data=0304)
            x0 = TrimWorkingSet(8)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            x1 = MmIsAddressValid(b0+0x1000)
            d0 = ReadMemory(b0, length=0x2)
            """)
        #expect(report.verdict == .pass, "\(report.verdict)")
        #expect(report.steps[5].outcome == .raised(status: 0xC000_0006))
        #expect(report.steps[6].outcome == .returned(.boolean(false)))
        #expect(report.steps[7].outcome == .returned(.bytes([1, 2])))   // the first page did come back
    }

    @Test func pteFailureMakesTheSafeMacroReturnNullAndTheLegacyOneBugCheck() throws {
        let text = """
            # lockstep 1
            machine x86
            fault ptes after=0
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            v0 = MmGetSystemAddressForMdlSafe(m0, NormalPagePriority)
            v1 = MmGetSystemAddressForMdl(m0)
            """
        let report = try run(text)
        #expect(report.verdict == .pass, "\(report.verdict)")
        #expect(report.steps[3].outcome == .returned(.number(0)))
        #expect(report.steps[4].outcome == .bugCheck(code: 0x3F, parameters: [0, 1, 512, 512]))
    }

    /// The shared plan names the engine's decision points and statuses as the engine does.
    @Test func theSharedPlanSpeaksTheEnginesNames() {
        #expect(FaultKind.allCases.map(\.rawValue) == ResourceKind.allCases.map(\.rawValue))
        for kind in ResourceKind.allCases { #expect(FaultKind(kind).rawValue == kind.rawValue) }
        for (name, value) in FaultPlan.statusNames { #expect(NTStatus(name: name)?.rawValue == value, "\(name)") }
    }

    /// The model reads fault lines through the same plan, so one it refuses is one the runner refuses,
    /// with the same words (before this plan was shared the model took `nth=0`, `page=` on pool faults
    /// and knew four status names).
    @Test func theModelAndTheRunnerReadFaultLinesAlike() throws {
        for line in ["fault disk nth=1", "fault ptes nth=0", "fault ptes colour=red", "fault pool.paged page=b0", "fault ptes nth=abc"] {
            let program = try ProgramText.parse("# lockstep 1\nmachine x86\n\(line)\n")
            guard case .unrunnable(let reason) = Execution().run(program).verdict else { Issue.record("\(line)"); continue }
            #expect(reason.hasPrefix("fault plan: "), "\(line): \(reason)")
            #expect(throws: Execution.SetupError.self) { try ReferenceOracle.make(for: program) }
        }
        let status = try ProgramText.parse("# lockstep 1\nmachine x86\nfault pagein status=STATUS_ACCESS_VIOLATION\nb0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)\n")
        #expect(Execution().run(status).verdict == .pass)
    }

    @Test func badFaultLinesAreSetupErrors() throws {
        for line in ["fault disk nth=1", "fault ptes nth=0", "fault ptes colour=red", "fault pool.paged page=b0"] {
            let program = try ProgramText.parse("# lockstep 1\nmachine x86\n\(line)\n")
            // Set-up-error policy: no step runs, and the verdict says why.
            let report = Execution().run(program, oracle: InvariantsOnlyOracle())
            guard case .unrunnable(let reason) = report.verdict else { Issue.record("\(line): \(report.verdict)"); continue }
            #expect(report.steps.isEmpty && reason.hasPrefix("fault plan: ") && report.verdict.signature == .unrunnable)
        }
    }
}

@Suite struct SystematicModeTests {
    /// A program with k fault points runs k + 1 variants, each failing one more point, all in lockstep.
    @Test func kFaultPointsGiveKPlusOneRuns() throws {
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            v0 = MmGetSystemAddressForMdlSafe(m0, NormalPagePriority)
            MmUnlockPages(m0)
            IoFreeMdl(m0)
            """)
        let variants = SystematicFaults.run(program)
        // Fault points: 1 nonpaged pool (the MDL), 2 frames (the demand-zero pages), 1 PTE reservation.
        #expect(variants.count == 4 + 1)
        #expect(variants.map { $0.fault?.description ?? "-" } == ["-", "fault pool.nonpaged nth=1", "fault ptes nth=1", "fault frame nth=1", "fault frame nth=2"])
        for variant in variants { #expect(variant.verdict.isPass, "\(variant.fault?.description ?? "baseline"): \(variant.verdict)") }
    }
}
