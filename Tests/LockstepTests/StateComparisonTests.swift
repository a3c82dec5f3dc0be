@_spi(Mutations) import MemoryManager
import Lockstep
import LockstepPrograms
import Testing

/// Slips that change no returned value: the runner's comparison of the observable state (MDL headers,
/// PTE attributes, charges, PFN arrays) must report each at the step that made it, naming the field.
/// Each test also runs the correct engine (it passes) and, where no invariant looks at the field, the
/// slipped engine with the comparison off (it passes too: the slip is silent without the comparison).
@Suite struct StateComparisonCatchesSilentSlipsTests {
    private struct Verdicts {
        let correct: Verdict
        let slippedWithoutComparison: Verdict
        let slipped: Verdict
    }

    private func verdicts(_ text: String, _ mutation: EngineMutation) throws -> Verdicts {
        let program = try ProgramText.parse(text)
        func run(_ mutation: EngineMutation, _ mode: Execution.StateComparisonMode) throws -> Verdict {
            let kernel = try Execution.boot(program)
            kernel.mutations = mutation
            return Execution(stateComparison: mode).run(program, kernel: kernel).verdict
        }
        return Verdicts(correct: try run([], .perStep), slippedWithoutComparison: try run(mutation, .off), slipped: try run(mutation, .perStep))
    }

    private func expectState(_ verdict: Verdict, step expectedStep: Int, field expectedField: String, sourceLocation: SourceLocation = #_sourceLocation) {
        guard case .state(let step, _, let difference) = verdict else {
            Issue.record("expected a state difference, got \(verdict)", sourceLocation: sourceLocation)
            return
        }
        #expect(step == expectedStep, sourceLocation: sourceLocation)
        #expect(difference.field == expectedField, "\(difference)", sourceLocation: sourceLocation)
    }

    @Test func mdlFlagBitPartialHasBeenMappedMissingIsCaughtAtTheMapping() throws {
        let v = try verdicts("""
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x4000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0+0x100, length=0x3800, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoModifyAccess)
            m1 = IoAllocateMdl(va=none, length=0x3000, secondary=false, quota=false, irp=none)
            IoBuildPartialMdl(m0, m1, va=b0+0x1800, length=0x1000)
            v1 = MmGetSystemAddressForMdlSafe(m1, NormalPagePriority)
            """, .mapOmitsPartialHasBeenMapped)
        #expect(v.correct == .pass)
        #expect(v.slippedWithoutComparison == .pass)
        expectState(v.slipped, step: 6, field: "mdl.MdlFlags")
    }

    @Test func pteCachingAttributeOfASystemMappingIsCaughtAtTheMapping() throws {
        let v = try verdicts("""
            # lockstep 1
            machine x64
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            v0 = MmMapLockedPagesSpecifyCache(m0, KernelMode, MmNonCached, requested=none, bugcheck=false, NormalPagePriority)
            d0 = ReadMemory(v0, length=0x4)
            MmUnmapLockedPages(v0, m0)
            MmUnlockPages(m0)
            IoFreeMdl(m0)
            """, .systemMappingIgnoresCacheType)
        #expect(v.correct == .pass)
        #expect(v.slippedWithoutComparison == .pass)
        expectState(v.slipped, step: 4, field: "mapping.caching")
    }

    @Test func processChargeForASystemBufferIsCaughtAtTheProbe() throws {
        let v = try verdicts("""
            # lockstep 1
            machine x86
            p0 = ExAllocatePoolWithTag(NonPagedPool, size=0x2000)
            m0 = IoAllocateMdl(va=p0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            MmUnlockPages(m0)
            IoFreeMdl(m0)
            """, .probeChargesSystemBuffers)
        #expect(v.correct == .pass)
        // The process-locks invariant sees a charge no locked MDL accounts for, too; the comparison
        // reports it first, as the field that changed.
        expectState(v.slipped, step: 3, field: "process.NumberOfLockedPages")
    }

    @Test func pfnArrayOrderOfMmAllocatePagesForMdlIsCaughtAtTheAllocation() throws {
        let v = try verdicts("""
            # lockstep 1
            machine x86
            m0 = MmAllocatePagesForMdl(low=0x0, high=0xFFFFFFFF, skip=0x0, total=0x3000)
            x0 = MmGetMdlByteCount(m0)
            MmFreePagesFromMdl(m0)
            ExFreePool(m0)
            """, .allocatedPfnsReversed)
        #expect(v.correct == .pass)
        #expect(v.slippedWithoutComparison == .pass)
        expectState(v.slipped, step: 1, field: "mdl.PFN")
    }

    /// A slip whose object no later call names still shows in the full comparison at the end, and the
    /// report pins it to the step that made it, not to the last step.
    @Test func aDifferenceFoundAtTheEndIsPinnedToTheStepThatMadeIt() throws {
        let v = try verdicts("""
            # lockstep 1
            machine x86
            p0 = ExAllocatePoolWithTag(NonPagedPool, size=0x1000)
            m0 = IoAllocateMdl(va=p0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            WriteMemory(b0, data=01)
            d0 = ReadMemory(b0, length=0x1)
            """, .probeChargesSystemBuffers)
        #expect(v.correct == .pass)
        expectState(v.slipped, step: 3, field: "process.NumberOfLockedPages")
    }

    /// Spec §2.9 step 3: in user space a RAM page's own attribute wins over CacheType, so a user-mode
    /// MmNonCached mapping of RAM is write-back; engine and model agree, and the PTE says so.
    @Test func userModeMappingOfRamIsCachedWhateverCacheTypeAsks() throws {
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            v0 = MmMapLockedPagesSpecifyCache(m0, UserMode, MmNonCached, requested=none, bugcheck=false, NormalPagePriority)
            """)
        let kernel = try Execution.boot(program)
        let report = Execution().run(program, kernel: kernel)
        #expect(report.verdict == .pass)
        guard case .returned(.number(let va)) = report.steps[3].outcome else { Issue.record("no mapping: \(report.steps[3].outcome)"); return }
        #expect(kernel.inspect.pte(va, processId: nil)?.cache == .writeBack)
    }

    @Test func theSignatureNamesRoutineAndField() throws {
        let verdict = Verdict.state(step: 2, call: try ProgramText.parse("""
            # lockstep 1
            machine x86
            a0 = HalTranslateBusAddress(PCIBus, bus=0x1, address=0x40000010, space=0x0)
            """).calls[0], difference: StateDifference(object: "mapping 0xC0000000", field: "mapping.caching", engine: "page 0 writeBack", oracle: "uncached"))
        #expect(verdict.signature.description == "state:HalTranslateBusAddress:mapping.caching")
    }
}
