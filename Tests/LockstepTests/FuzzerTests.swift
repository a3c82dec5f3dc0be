@_spi(Mutations) import MemoryManager
import Foundation
@testable import Lockstep
import LockstepPrograms
import Testing

@Suite struct FuzzerTests {
    @Test func sameSeedSameProgramsByteForByte() {
        let generator = ProgramGenerator()
        for seed: UInt64 in [1, 2, 0xDEAD_BEEF] {
            #expect(ProgramText.encode(generator.generate(seed: seed)) == ProgramText.encode(generator.generate(seed: seed)))
        }
        #expect(ProgramText.encode(generator.generate(seed: 1)) != ProgramText.encode(generator.generate(seed: 2)))
    }

    @Test(arguments: ["x86", "x64", "alpha"])
    func generatedProgramsParseBackToThemselves(_ architecture: String) throws {
        let generator = ProgramGenerator(GenerationOptions(machine: MachineLine(architecture: architecture)))
        for seed: UInt64 in 0..<200 {
            let program = generator.generate(seed: seed)
            #expect(try ProgramText.parse(ProgramText.encode(program)) == program)
        }
    }

    /// "Meaningful": the engine accepted the call (it returned; it did not raise, bug-check or refuse).
    /// Under the default options at least 90 % of generated calls must be.
    @Test func atLeastNinetyPercentOfGeneratedCallsAreMeaningful() throws {
        let generator = ProgramGenerator()
        var calls = 0, meaningful = 0
        for seed: UInt64 in 0..<300 {
            let program = generator.generate(seed: seed)
            let report = try LockstepRunner().run(program, oracle: InvariantsOnlyOracle())
            calls += program.calls.count
            meaningful += report.steps.filter { if case .returned = $0.outcome { return true } else { return false } }.count
        }
        let share = Double(meaningful) / Double(calls)
        #expect(share >= 0.90, "only \(Int(share * 100)) % of \(calls) calls were meaningful")
    }

    @Test func campaignIsReproducibleBySeed() {
        var options = CampaignOptions()
        options.runs = 60
        options.seed = 42
        let first = Campaign(options).run { _, _ in }
        let second = Campaign(options).run { _, _ in }
        #expect(first.stats.calls == second.stats.calls)
        #expect(first.stats.signatures == second.stats.signatures)
    }

    /// Without feature guidance, two jobs run exactly the programs one job runs, and shards 1/2 and 2/2
    /// together run them once each. (Guided campaigns mutate each worker's own corpus, so their programs
    /// depend on the job count; for a given seed and job count they are reproducible.)
    @Test func jobsAndShardsPartitionTheRunSpace() {
        var options = CampaignOptions()
        options.runs = 80
        options.seed = 9
        options.guided = false
        let one = Campaign(options).run { _, _ in }.stats
        options.jobs = 2
        let two = Campaign(options).run { _, _ in }.stats
        #expect(one.programs == 80 && two.programs == 80)
        #expect(one.calls == two.calls)
        options.jobs = 1
        options.shard = (1, 2)
        let first = Campaign(options).run { _, _ in }.stats
        options.shard = (2, 2)
        let second = Campaign(options).run { _, _ in }.stats
        #expect(first.programs == 40 && second.programs == 40)
        #expect(first.calls + second.calls == one.calls)
        var guided = CampaignOptions()
        guided.runs = 80
        guided.jobs = 2
        let a = Campaign(guided).run { _, _ in }.stats, b = Campaign(guided).run { _, _ in }.stats
        #expect(a.calls == b.calls && a.features == b.features && a.corpus == b.corpus)
    }

    @Test func theCorrectEngineHasNoFindingsOnTheDefaultMachine() {
        var options = CampaignOptions()
        options.runs = 300
        let result = Campaign(options).run { _, _ in }
        #expect(result.findings.isEmpty, "\(result.findings.map(\.signature))")
    }

    /// A bounded, fixed-seed campaign finds each seeded engine bug.
    @Test(arguments: [("unlockKeepsLockCounts", EngineMutation.unlockKeepsLockCounts), ("unmapKeepsPtes", .unmapKeepsPtes),
                      ("byteOffsetOffByOne", .byteOffsetOffByOne), ("pagedOutCountsAsValid", .pagedOutCountsAsValid),
                      ("partialMdlSkipsFirstPfn", .partialMdlSkipsFirstPfn), ("trimIgnoresLocks", .trimIgnoresLocks)])
    func boundedCampaignFindsASeededBug(_ name: String, _ mutation: EngineMutation) {
        var options = CampaignOptions()
        options.runs = 400
        options.prepareKernel = { $0.mutations = mutation }
        let result = Campaign(options).run { _, _ in }
        #expect(!result.findings.isEmpty, "\(name) was not found in 400 programs")
    }
}

@Suite struct TrapRecoveryTests {
    /// A program left in flight by a campaign that died is saved as a `trap` finding when the next starts.
    @Test func aProgramLeftInFlightBecomesATrapFinding() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-trap-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let program = "# lockstep 1\nmachine x86\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\n"
        try Data(program.utf8).write(to: URL(fileURLWithPath: directory + "/.in-flight-0.txt"))
        var options = CampaignOptions()
        options.findingsDirectory = directory
        options.runs = 3
        let campaign = Campaign(options)
        let traps = campaign.recoverTraps()
        #expect(traps.count == 1)
        let saved = try ProgramFiles.load(traps[0])
        #expect(saved == (try ProgramText.parse(program)))
        #expect(try Corpus.read(traps[0]).recordedSignature == "trap")
        // A campaign that ends normally leaves nothing in flight.
        _ = campaign.run { _, _ in }
        #expect(campaign.recoverTraps().isEmpty)
    }
}

@Suite struct ShrinkerTests {
    /// A campaign against a seeded bug saves its finding shrunk: same signature, 1-minimal, and small.
    @Test func findingsAreShrunkToOneMinimalRepros() throws {
        var options = CampaignOptions()
        options.runs = 200
        options.prepareKernel = { $0.mutations = .byteOffsetOffByOne }
        let result = Campaign(options).run { _, _ in }
        let finding = try #require(result.findings.first { $0.signature.hasPrefix("divergence") })
        let shrunk = try #require(finding.shrunk)
        #expect(shrunk.signature == finding.signature)
        #expect(shrunk.oneMinimal)
        #expect(shrunk.program.calls.count < finding.program.calls.count)
        #expect(shrunk.program.calls.count <= 3, "\(ProgramText.encode(shrunk.program))")
        #expect(try ProgramText.parse(ProgramText.encode(shrunk.program)) == shrunk.program)
    }

    /// Shrinking keeps the failure's signature and removes the fault lines it does not need.
    @Test func shrinkingDropsUnneededFaultsAndKeepsNeededOnes() throws {
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x86
            fault ptes nth=5
            fault pool.nonpaged nth=1
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            x0 = MmIsAddressValid(b0)
            m1 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
            x2 = MmGetMdlByteCount(m1)
            """)
        // The NULL MDL is dereferenced (0x1E), which the model predicts: that passes. Use the runner's
        // verdict on a mutated engine instead: ByteCount is right, so the failing call is the offset read.
        let mutated = Shrinker(maxRuns: 300, prepareKernel: { $0.mutations = .byteOffsetOffByOne })
        #expect(mutated.shrink(program) == nil)   // this program never reads the offset: it passes
        let withRead = Program(machine: program.machine, faults: program.faults.filter { $0.kind == "ptes" },
                               calls: Array(program.calls.prefix(3)) + [Call("x3", .mmGetMdlByteOffset, [.expression(.reference("m1", offset: 0))])])
        let result = try #require(mutated.shrink(withRead))
        #expect(result.program.faults.isEmpty)                 // the PTE fault was never needed
        // The buffer the MDL describes, the MDL, and the read that shows the wrong offset: nothing else.
        #expect(result.program.calls.map(\.routine) == [.allocateUserBuffer, .ioAllocateMdl, .mmGetMdlByteOffset])
        #expect(result.oneMinimal)
    }

    static let offsetRead = """
        # lockstep 1
        machine x64 ram=32M mode=checked
        b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
        x1 = MmIsAddressValid(b0)
        m2 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
        x3 = MmGetMdlByteCount(m2)
        x4 = MmGetMdlByteOffset(m2)
        IoFreeMdl(m2)
        """

    /// The machine shrinks too: x86 instead of x64, each setting back to its default, when the failure
    /// does not need them (a ByteOffset slip shows on any machine).
    @Test func shrinkingSimplifiesTheMachine() throws {
        let shrinker = Shrinker(maxRuns: 500, prepareKernel: { $0.mutations = .byteOffsetOffByOne })
        let result = try #require(shrinker.shrink(try ProgramText.parse(Self.offsetRead)))
        #expect(result.program.machine.description == "machine x86")
        #expect(result.program.calls.count == 3)
        #expect(result.oneMinimal && !result.budgetExhausted)
    }

    /// A run budget stops the shrink early with the best program so far, reported as improvements went
    /// by (each smaller than the last and still failing the same way), and not called 1-minimal.
    @Test func aBudgetStopsWithTheBestSoFarAndEveryImprovementIsReported() throws {
        var shrinker = Shrinker(maxRuns: 4, prepareKernel: { $0.mutations = .byteOffsetOffByOne })
        let program = try ProgramText.parse(Self.offsetRead)
        final class Seen: @unchecked Sendable { var programs: [Program] = [] }
        let seen = Seen()
        shrinker.onImprovement = { best, signature, _ in
            #expect(signature.hasPrefix("divergence"))
            seen.programs.append(best)
        }
        let result = try #require(shrinker.shrink(program))
        #expect(result.budgetExhausted && !result.oneMinimal)
        #expect(!seen.programs.isEmpty && seen.programs.last == result.program)
        #expect(result.program.calls.count < program.calls.count)
        // Resuming from the saved best finishes the job.
        let resumed = try #require(Shrinker(maxRuns: 500, prepareKernel: { $0.mutations = .byteOffsetOffByOne }).shrink(result.program))
        #expect(resumed.oneMinimal && resumed.signature == result.signature)
    }
}

/// A failure on a free build that Driver Verifier would have stopped earlier is the program's
/// corruption, not an engine inconsistency: campaigns label it `misuse:`.
@Suite struct MisuseClassificationTests {
    static let program = """
        # lockstep 1
        machine x86 mode=free
        b0 = AllocateUserBuffer(size=0x0, protect=ReadWrite)
        m1 = IoAllocateMdl(va=b0, length=0x0, secondary=false, quota=false, irp=none)
        MmUnmapLockedPages(0xC1000000, m1)
        """

    @Test func aFreeBuildCorruptionThatVerifierStopsIsClassifiedAsMisuse() throws {
        let program = try ProgramText.parse(Self.program)
        let report = try LockstepRunner().run(program, oracle: try ReferenceOracle.make(for: program))
        #expect(report.verdict.signature == "invariant:resource-accounting:MmUnmapLockedPages")
        let stop = try #require(Campaign.verifierStop(program, before: report.verdict, runner: LockstepRunner()))
        #expect(stop.contains("step 3 (MmUnmapLockedPages) with bug check 0xC4/0xB6"))
    }

    @Test func aVerifierBuildFailureIsNeverMisuse() throws {
        var program = try ProgramText.parse(Self.program)
        program.machine.settings = []
        let report = try LockstepRunner().run(program, oracle: try ReferenceOracle.make(for: program))
        #expect(Campaign.verifierStop(program, before: report.verdict, runner: LockstepRunner()) == nil)
    }
}

