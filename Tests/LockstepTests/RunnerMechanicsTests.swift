import Lockstep
import LockstepPrograms
import MemoryManager
import Testing



/// An oracle that returns scripted expectations in order (to test the runner without the model).
final class ScriptedOracle: Oracle {
    var script: [Prediction]
    init(_ script: [Prediction]) { self.script = script }
    func expect(_ call: Call) -> Prediction { script.isEmpty ? .unpredictable(reason: "script ended") : script.removeFirst() }
    func apply(_ call: Call, observed: Outcome) {}
}

@Suite struct RunnerMechanicsTests {
    static let program = """
        # lockstep 1
        machine x86
        b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
        WriteMemory(b0+0x10, data=A1B2C3)
        m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
        MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
        v0 = MmGetSystemAddressForMdlSafe(m0, NormalPagePriority)
        d0 = ReadMemory(v0, length=0x3)
        MmUnlockPages(m0)
        IoFreeMdl(m0)
        """

    static let rightScript: [Prediction] = [
        .returns(.fresh(.buffer)), .returns(.none), .returns(.fresh(.mdl)), .returns(.none),
        .returns(.systemMapping(mdl: "m0", byteOffset: 0x10)), .returns(.bytes([0xA1, 0xB2, 0xC3])),
        .returns(.none), .returns(.none),
    ]

    @Test func correctExpectationsPassWithInvariantsChecked() throws {
        let program = try ProgramText.parse(Self.program)
        let report = Execution().run(program, oracle: ScriptedOracle(Self.rightScript))
        #expect(report.verdict == .pass)
        #expect(report.steps.count == 8)
    }

    @Test func aWrongByteOffsetExpectationIsADivergenceAtThatStep() throws {
        let program = try ProgramText.parse(Self.program)
        var script = Self.rightScript
        script[4] = .returns(.systemMapping(mdl: "m0", byteOffset: 0x20))
        let report = Execution().run(program, oracle: ScriptedOracle(script))
        guard case .divergence(let step, let call, _, _, _) = report.verdict else { Issue.record("got \(report.verdict)"); return }
        #expect(step == 5)
        #expect(call.routine == .mmGetSystemAddressForMdlSafe)
        #expect(report.verdict.signature.description == "divergence:MmGetSystemAddressForMdlSafe:value/value")
    }

    @Test func anUnpredictedBugCheckIsABugcheckVerdict() throws {
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x86 mode=verifier
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmUnlockPages(m0)
            """)
        let report = Execution().run(program, oracle: ScriptedOracle([.returns(.fresh(.buffer)), .returns(.fresh(.mdl)), .returns(.none)]))
        #expect(report.verdict.signature.description == "bugcheck:MmUnlockPages:bugcheck-0xC4-0x7C/returned")
    }

    @Test func aLeakedLockIsAccountedNotReported() throws {
        // Freeing a locked MDL leaks its lock references (a driver bug the engine must model, not an
        // engine inconsistency): the frame lock invariant must still hold.
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x86 mode=free
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            IoFreeMdl(m0)
            m1 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m1, KernelMode, IoReadAccess)
            MmUnlockPages(m1)
            """)
        let oracle = ScriptedOracle(Array(repeating: .unpredictable(reason: "mechanics"), count: 7))
        #expect(Execution().run(program, oracle: oracle).verdict == .pass)
    }
}
