@_spi(Mutations) import MemoryManager
import Lockstep
import LockstepPrograms
import Testing

/// MmAllocatePagesForMdl over bounded [LowAddress, HighAddress] ranges (spec §2.20): the model follows
/// them (it bounds the count granted and learns it from the MDL's ByteCount) instead of giving up, so a
/// frame outside the range, or a count the range cannot hold, is a finding. The two slips are
/// Benchmarks/mutants/70 and 71 as engine mutations.
@Suite struct AllocatePagesRangeTests {
    /// Benchmarks/mutants/unreached/70.txt: every frame up to High (page 0x40) is boot's.
    static let highAtBootFrames = """
        # lockstep 1
        machine x86 ram=16M nonpaged=256K ptes=512
        m0 = MmAllocatePagesForMdl(low=0x0, high=0x40FFF, skip=0x0, total=0x1000)
        MmFreePagesFromMdl(m0)
        ExFreePool(m0)
        """
    /// Benchmarks/mutants/unreached/71.txt: free frames lie below Low (8 MiB).
    static let lowAtEightMegabytes = """
        # lockstep 1
        machine x86 ram=16M nonpaged=256K ptes=512
        m0 = MmAllocatePagesForMdl(low=0x800000, high=0xFFFFFFFF, skip=0x0, total=0x1000)
        MmFreePagesFromMdl(m0)
        ExFreePool(m0)
        """

    private func run(_ text: String, _ mutation: EngineMutation = []) throws -> (report: RunReport, kernel: Kernel) {
        let program = try ProgramText.parse(text)
        let kernel = try Execution.boot(program)
        kernel.mutations = mutation
        let report = Execution().run(program, kernel: kernel)
        return (report, kernel)
    }

    private func unpredicted(_ report: RunReport) -> [String] {
        report.steps.compactMap { step in
            if case .unpredictable(let reason) = step.expectation { return "step \(step.index): \(reason)" }
            return nil
        }
    }

    @Test func theUnreachedProgramsPassOnTheCorrectEngineWithEveryStepPredicted() throws {
        for text in [Self.highAtBootFrames, Self.lowAtEightMegabytes] {
            let (report, _) = try run(text)
            #expect(report.verdict == .pass)
            #expect(unpredicted(report).isEmpty, "\(unpredicted(report))")
        }
    }

    @Test func highRoundedUpHandsOutAnMdlWhereTheRangeHasNoFreeFrame() throws {
        let (report, _) = try run(Self.highAtBootFrames, .allocatedPagesHighRoundedUp)
        guard case .divergence(let step, _, _, let expected, _) = report.verdict else { Issue.record("\(report.verdict)"); return }
        #expect(step == 1 && expected == .returns(.null))
    }

    @Test func lowIgnoredHandsOutAFrameBelowLowAddress() throws {
        let (report, _) = try run(Self.lowAtEightMegabytes, .allocatedPagesIgnoreLow)
        guard case .state(let step, _, let difference) = report.verdict else { Issue.record("\(report.verdict)"); return }
        #expect(step == 1 && difference.field == "mdl.PFN", "\(difference)")
    }

    /// One page in the upper half of RAM, two asked for: one granted. Rounded up, High lets a second
    /// frame in, and the header says two pages where the range holds one (Size, the first field
    /// compared, then ByteCount).
    @Test func aCountTheRangeCannotHoldIsAStateDifference() throws {
        let text = """
            # lockstep 1
            machine x86 ram=16M
            m0 = MmAllocatePagesForMdl(low=0x800000, high=0x800FFF, skip=0x0, total=0x2000)
            x0 = MmGetMdlByteCount(m0)
            """
        let (correct, _) = try run(text)
        #expect(correct.verdict == .pass && unpredicted(correct).isEmpty, "\(correct.verdict) \(unpredicted(correct))")
        #expect(correct.steps[1].outcome == .returned(.number(0x1000)))
        let (slipped, _) = try run(text, .allocatedPagesHighRoundedUp)
        guard case .state(let step, _, let difference) = slipped.verdict else { Issue.record("\(slipped.verdict)"); return }
        #expect(step == 1 && difference.field == "mdl.Size", "\(difference)")
    }

    /// Ranges with no RAM (above RAM's end, the legacy hole) and Low above High are NULL, predicted
    /// exactly; the model goes on predicting after them.
    @Test func rangesWithoutRamAreNull() throws {
        for machine in ["x86 ram=16M", "x64 ram=16M", "alpha ram=16M"] {
            let (report, _) = try run("""
                # lockstep 1
                machine \(machine)
                m0 = MmAllocatePagesForMdl(low=0x1000000, high=0xFFFFFFFF, skip=0x0, total=0x1000)
                m1 = MmAllocatePagesForMdl(low=0xA0000, high=0xFFFFF, skip=0x0, total=0x3000)
                m2 = MmAllocatePagesForMdl(low=0x801000, high=0x800000, skip=0x0, total=0x1000)
                m3 = MmAllocatePagesForMdl(low=0x0, high=0xFFFFFFFF, skip=0x0, total=0x1000)
                """)
            #expect(report.verdict == .pass, "\(machine): \(report.verdict)")
            for step in report.steps.prefix(3) {
                #expect(step.expectation == .returns(.null) && step.outcome == .returned(.number(0)), "\(machine) step \(step.index)")
            }
            #expect(report.steps[3].expectation == .returns(.fresh(.mdl)))
        }
    }

    /// A granted MDL's PFNs lie in [Low page, High page], distinct and ascending, and the model learns
    /// the count granted (fewer than asked: the range holds two frames) from ByteCount.
    @Test func everyGrantedFrameLiesInTheRange() throws {
        let (report, kernel) = try run("""
            # lockstep 1
            machine x86 ram=16M nonpaged=256K
            m0 = MmAllocatePagesForMdl(low=0x9E000, high=0x9FFFF, skip=0x0, total=0x3000)
            x0 = MmGetMdlByteCount(m0)
            m1 = MmAllocatePagesForMdl(low=0x200800, high=0x2047FF, skip=0x0, total=0x10000)
            x1 = MmGetMdlByteCount(m1)
            v1 = MmGetSystemAddressForMdlSafe(m1, NormalPagePriority)
            a1 = MmGetPhysicalAddress(v1+0x1000)
            """)
        #expect(report.verdict == .pass && unpredicted(report).isEmpty, "\(report.verdict) \(unpredicted(report))")
        #expect(report.steps[1].expectation == .returns(.exactly(0x2000)) && report.steps[3].expectation == .returns(.exactly(0x5000)))
        for (step, range) in [(0, UInt64(0x9E)...0x9F), (2, UInt64(0x200)...0x204)] {
            guard case .returned(.number(let mdl)) = report.steps[step].outcome else { Issue.record("no MDL"); continue }
            let count = (kernel.inspect.mdl(mdl).map { UInt64($0.byteCount) } ?? 0) / 0x1000
            let pfns = (0..<count).compactMap { kernel.inspect.pfn(mdl, $0) }
            #expect(!pfns.isEmpty && pfns.allSatisfy(range.contains) && pfns == pfns.sorted() && Set(pfns).count == pfns.count, "\(pfns)")
        }
    }

    /// docs/INDEPENDENCE.md I124, derived blind from the spec: the legacy hole has no RAM (NULL), a range
    /// holding two free frames gives two pages of the three asked for, and pages come lowest first.
    @Test func independentDerivationI124() throws {
        let (report, _) = try run("""
            # lockstep 1
            machine x86 mode=verifier ram=16M nonpaged=256K
            m0 = MmAllocatePagesForMdl(low=0xA0000, high=0xFFFFF, skip=0x0, total=0x1000)
            m1 = MmAllocatePagesForMdl(low=0x9E000, high=0x9FFFF, skip=0x0, total=0x3000)
            x0 = MmGetMdlByteCount(m1)
            m2 = MmAllocatePagesForMdl(low=0x200000, high=0x2FFFFF, skip=0x0, total=0x2000)
            v2 = MmGetSystemAddressForMdlSafe(m2, NormalPagePriority)
            a0 = MmGetPhysicalAddress(v2)
            a1 = MmGetPhysicalAddress(v2+0x1000)
            """)
        #expect(report.verdict == .pass && unpredicted(report).isEmpty, "\(report.verdict) \(unpredicted(report))")
        #expect(report.steps[0].expectation == .returns(.null) && report.steps[2].expectation == .returns(.exactly(0x2000)))
        #expect(report.steps[5].outcome == .returned(.number(0x200000)) && report.steps[6].outcome == .returned(.number(0x201000)))
    }

    /// The fault plan's frame decisions bound the count: the second fails, so exactly one page, and the
    /// next allocation's decisions are counted on from there.
    @Test func aFailedFrameDecisionEndsABoundedAllocation() throws {
        let (report, _) = try run("""
            # lockstep 1
            machine x86 ram=16M
            fault frame nth=2
            m0 = MmAllocatePagesForMdl(low=0x800000, high=0x8FFFFF, skip=0x0, total=0x3000)
            x0 = MmGetMdlByteCount(m0)
            m1 = MmAllocatePagesForMdl(low=0x0, high=0x40FFF, skip=0x0, total=0x3000)
            m2 = MmAllocatePagesForMdl(low=0x900000, high=0x9FFFFF, skip=0x0, total=0x2000)
            x2 = MmGetMdlByteCount(m2)
            """)
        #expect(report.verdict == .pass && unpredicted(report).isEmpty, "\(report.verdict) \(unpredicted(report))")
        #expect(report.steps[1].expectation == .returns(.exactly(0x1000)))
        #expect(report.steps[2].expectation == .returns(.null))
        #expect(report.steps[4].expectation == .returns(.exactly(0x2000)))
    }

    /// A write through a one-byte pool block lands in a large MmAllocatePagesForMdl MDL's PFN array
    /// (corpora/regressions/bc42e38fb6995e03): the program's doing, and the model, which keeps MDL fields
    /// in its records, stops judging there rather than report the overwritten slot.
    @Test func aWriteIntoAnMdlsPfnArrayStopsTheJudging() throws {
        let (report, _) = try run("""
            # lockstep 1
            machine x86
            m0 = MmAllocatePagesForMdl(low=0x0, high=0x3FFFFF, skip=0x0, total=0x400000)
            p1 = ExAllocatePoolWithTag(NonPagedPool, size=0x1)
            WriteMemory(p1+0xFFF, data=A183E3111F7F418F)
            x0 = MmGetMdlByteCount(m0)
            """)
        #expect(report.verdict == .pass)
        guard case .unpredictable(let reason) = report.steps[3].expectation else { Issue.record("\(report.steps[3].expectation)"); return }
        #expect(reason.contains("overwrites the MDL"), "\(reason)")
    }

    /// Generated programs ask for bounded ranges, and the model follows every one of them on a correct
    /// engine (without a fault plan it never gives up at MmAllocatePagesForMdl).
    @Test func generatedBoundedRangesAreFollowed() throws {
        var options = GenerationOptions()
        options.faultPercent = 0
        let generator = ProgramGenerator(options)
        var bounded = 0
        for seed: UInt64 in 0..<300 {
            let program = generator.generate(seed: seed)
            let calls = program.calls.filter { call in
                guard call.routine == .mmAllocatePagesForMdl, case .expression(.literal(let low)) = call.arguments[0],
                      case .expression(.literal(let high)) = call.arguments[1] else { return false }
                return low != 0 || high < 16 << 20 - 1
            }
            guard !calls.isEmpty else { continue }
            bounded += calls.count
            let report = Execution().run(program)
            #expect(report.verdict == .pass, "seed \(seed): \(report.verdict)")
            let gaveUp = unpredicted(report).filter { $0.contains("MmAllocatePagesForMdl") }
            #expect(gaveUp.isEmpty, "seed \(seed): \(gaveUp)")
        }
        #expect(bounded >= 20, "\(bounded) bounded calls")
    }

    /// A bounded, fixed-seed campaign on the default machine finds both slips.
    @Test(arguments: [("allocatedPagesHighRoundedUp", EngineMutation.allocatedPagesHighRoundedUp),
                      ("allocatedPagesIgnoreLow", .allocatedPagesIgnoreLow)])
    func boundedCampaignFindsTheRangeSlip(_ name: String, _ mutation: EngineMutation) {
        var options = CampaignOptions()
        options.runs = 400
        options.shrinkRuns = 0
        options.prepareKernel = { $0.mutations = mutation }
        let result = Campaign(options).run { _, _ in }
        #expect(!result.findings.isEmpty, "\(name) was not found in 400 programs")
    }
}
