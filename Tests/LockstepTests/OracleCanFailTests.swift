@_spi(Mutations) import MemoryManager
import Lockstep
import LockstepPrograms
import Testing

/// An oracle that constrains nothing: only the invariants can catch a wrong engine.
final class PermissiveOracle: Oracle {
    func expect(_ call: Call) -> Prediction { .unpredictable(reason: "invariants only") }
    func apply(_ call: Call, observed: Outcome) {}
}

/// Each test switches on one deliberate engine bug and asserts the runner reports it, with the
/// invariant that must catch it; and that the same program passes on the correct engine.
@Suite struct OracleCanFailTests {
    private func verdict(_ text: String, _ mutation: EngineMutation) throws -> (correct: Verdict, mutated: Verdict) {
        let program = try ProgramText.parse(text)
        let correct = Execution().run(program, oracle: PermissiveOracle()).verdict
        let kernel = try Execution.boot(program)
        kernel.mutations = mutation
        let mutated = Execution().run(program, oracle: PermissiveOracle(), kernel: kernel).verdict
        return (correct, mutated)
    }

    static let lockMapUnmapUnlock = """
        # lockstep 1
        machine x86 mode=free
        b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
        m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
        MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
        v0 = MmMapLockedPages(m0, KernelMode)
        MmUnmapLockedPages(v0, m0)
        MmUnlockPages(m0)
        IoFreeMdl(m0)
        """

    @Test func lockCountNotDroppedOnUnlockBreaksFrameLockAccounting() throws {
        let (correct, mutated) = try verdict(Self.lockMapUnmapUnlock, .unlockKeepsLockCounts)
        #expect(correct == .pass)
        guard case .invariant(let step, _, let violation) = mutated else { Issue.record("got \(mutated)"); return }
        #expect(step == 6)
        #expect(violation.invariant == .frameLockAccounting)
    }

    @Test func unmapThatKeepsThePtesBreaksPteAccounting() throws {
        let (correct, mutated) = try verdict(Self.lockMapUnmapUnlock, .unmapKeepsPtes)
        #expect(correct == .pass)
        guard case .invariant(let step, _, let violation) = mutated else { Issue.record("got \(mutated)"); return }
        #expect(step == 5)
        #expect(violation.invariant == .resourceAccounting)
    }

    @Test func trimOfALockedPageIsCaught() throws {
        let (correct, mutated) = try verdict("""
            # lockstep 1
            machine x86 mode=free
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            WriteMemory(b0+0x1000, data=C0FFEE)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            x0 = TrimWorkingSet(8)
            MmUnlockPages(m0)
            """, .trimIgnoresLocks)
        #expect(correct == .pass)
        guard case .invariant(let step, _, let violation) = mutated else { Issue.record("got \(mutated)"); return }
        #expect(step == 5)
        #expect(violation.invariant == .frameLockAccounting)
    }
}

/// The same, for slips only the reference model can see: each must be reported as a divergence at
/// the call whose outcome the slip changes, and the correct engine must pass the program.
@Suite struct ModelCatchesEngineSlipsTests {
    /// `comparison: .off` shows what the returned values alone reveal (the state comparison usually
    /// reports the slip a step or more earlier, at the call that made it).
    private func verdicts(_ text: String, _ mutation: EngineMutation, comparison: Execution.StateComparisonMode = .perStep) throws -> (correct: Verdict, mutated: Verdict) {
        let program = try ProgramText.parse(text)
        let correct = Execution(stateComparison: comparison).run(program).verdict
        let kernel = try Execution.boot(program)
        kernel.mutations = mutation
        let mutated = Execution(stateComparison: comparison).run(program, kernel: kernel).verdict
        return (correct, mutated)
    }

    private func expectDivergence(_ verdict: Verdict, at step: Int, in routine: Routine) {
        guard case .divergence(let actualStep, let call, _, _, _) = verdict else { Issue.record("expected a divergence, got \(verdict)"); return }
        #expect(actualStep == step)
        #expect(call.routine == routine)
    }

    @Test func wrongByteOffset() throws {
        let text = """
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
            x0 = MmGetMdlByteOffset(m0)
            """
        // The MDL's header is wrong from the call that built it.
        let (_, caught) = try verdicts(text, .byteOffsetOffByOne)
        guard case .state(2, _, let difference) = caught else { Issue.record("got \(caught)"); return }
        #expect(difference.field == "mdl.ByteOffset" && difference.engine == "0x11" && difference.oracle == "0x10")
        // Returned values alone show it at the read.
        let (correct, mutated) = try verdicts(text, .byteOffsetOffByOne, comparison: .off)
        #expect(correct == .pass)
        expectDivergence(mutated, at: 3, in: .mmGetMdlByteOffset)
        // The report shows both states of the MDL the call read.
        guard case .divergence(_, _, _, _, let reason) = mutated else { return }
        #expect(reason.contains("m0 engine: = 0x") && reason.contains("ByteOffset=0x11"))
        #expect(reason.contains("m0 model:  MDL StartVa=0x10000 ByteOffset=0x10 ByteCount=0x2000"))
    }

    @Test func partialMdlWithTheWrongPfnRange() throws {
        let (correct, mutated) = try verdicts("""
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x4000, protect=ReadWrite)
            WriteMemory(b0+0x1800, data=5A5A)
            m0 = IoAllocateMdl(va=b0, length=0x4000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            m1 = IoAllocateMdl(va=none, length=0x2000, secondary=false, quota=false, irp=none)
            IoBuildPartialMdl(m0, m1, va=b0+0x1800, length=0x10)
            v0 = MmGetSystemAddressForMdlSafe(m1, NormalPagePriority)
            d0 = ReadMemory(v0, length=0x2)
            """, .partialMdlSkipsFirstPfn)
        #expect(correct == .pass)
        // The partial MDL's PFN array is wrong from IoBuildPartialMdl on.
        guard case .state(6, _, let difference) = mutated else { Issue.record("got \(mutated)"); return }
        #expect(difference.field == "mdl.PFN")
    }

    @Test func pagedOutPageReportedValid() throws {
        let (correct, mutated) = try verdicts("""
            # lockstep 1
            machine x64
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            WriteMemory(b0, data=01)
            x0 = PageOut(b0)
            x1 = MmIsAddressValid(b0)
            """, .pagedOutCountsAsValid)
        #expect(correct == .pass)
        expectDivergence(mutated, at: 4, in: .mmIsAddressValid)
    }

    @Test func remappingAnAlreadyMappedMdl() throws {
        let (correct, mutated) = try verdicts("""
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            v0 = MmGetSystemAddressForMdl(m0)
            v1 = MmGetSystemAddressForMdl(m0)
            MmUnlockPages(m0)
            IoFreeMdl(m0)
            """, .remapsMappedMdl)
        #expect(correct == .pass)
        guard case .bugcheck(let step, let call, _, _) = mutated else { Issue.record("got \(mutated)"); return }
        // Verifier sees the second mapping of a mapped MDL (0xC4/0xB2) where the model expected the first mapping back.
        #expect(step == 5 && call.routine == .mmGetSystemAddressForMdl)
    }
}
