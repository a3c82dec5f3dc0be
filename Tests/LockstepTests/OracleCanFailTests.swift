@_spi(Mutations) import MemoryManager
import Lockstep
import LockstepPrograms
import Testing

/// An oracle that constrains nothing: only the invariants can catch a wrong engine.
final class PermissiveOracle: Oracle {
    func expect(_ call: Call) -> LockstepPrograms.Expectation { .unpredictable(reason: "invariants only") }
    func apply(_ call: Call, observed: Outcome) {}
}

/// Each test switches on one deliberate engine bug and asserts the runner reports it, with the
/// invariant that must catch it; and that the same program passes on the correct engine.
@Suite struct OracleCanFailTests {
    private func verdict(_ text: String, _ mutation: EngineMutation) throws -> (correct: Verdict, mutated: Verdict) {
        let program = try ProgramText.parse(text)
        let correct = try LockstepRunner().run(program, oracle: PermissiveOracle()).verdict
        let kernel = try LockstepRunner.makeKernel(for: program)
        kernel.mutations = mutation
        let mutated = try LockstepRunner().run(program, oracle: PermissiveOracle(), kernel: kernel).verdict
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
