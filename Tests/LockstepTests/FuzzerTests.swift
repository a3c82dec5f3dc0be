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
            let report = Execution().run(program, oracle: InvariantsOnlyOracle())
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

    /// `--check-every N` skips checks, not the checker's bookkeeping: a correct engine stays clean (before
    /// the bookkeeping ran on every step, a third of these programs failed frame-locks or data-integrity).
    @Test func checkingEveryThirdStepFindsNothingOnACorrectEngine() {
        var options = CampaignOptions()
        options.seed = 2
        options.runs = 500
        options.checkEvery = 3
        options.shrinkRuns = 0
        let result = Campaign(options).run { _, _ in }
        #expect(result.findings.isEmpty, "\(result.findings.map(\.signature))")
    }

    /// `--stop-at-first-finding`: the campaign ends at its first reproducible failure and says when.
    @Test func stopAtFirstFindingEndsTheCampaignThere() {
        var options = CampaignOptions()
        options.runs = 400
        options.stopAtFirstFinding = true
        options.shrinkRuns = 0
        options.prepareKernel = { $0.mutations = .unmapKeepsPtes }
        let stopped = Campaign(options).run { _, _ in }
        let first = try! #require(stopped.stats.firstFinding)
        #expect(stopped.stats.programs == first.programs)
        #expect(stopped.findings.count == 1)
        #expect(stopped.findings[0].index == first.programs - 1, "one job: the failing program is run number programs - 1")
        // The same campaign without the stop runs on, and its first finding is the same program.
        options.stopAtFirstFinding = false
        let full = Campaign(options).run { _, _ in }
        #expect(full.stats.programs == 400)
        #expect(full.stats.firstFinding?.programs == first.programs)
        // A correct engine: no first finding at all.
        options.prepareKernel = nil
        options.runs = 100
        #expect(Campaign(options).run { _, _ in }.stats.firstFinding == nil)
    }
}

/// The generator reaches the whole API: a routine it never calls is a routine whose bugs the fuzzer
/// cannot find (MmGetSystemAddressForMdl was missing once, and with it a seeded remapping bug).
@Suite struct GeneratorReachTests {
    @Test(arguments: ["x86", "x64", "alpha"])
    func everyRoutineAndActionIsGenerated(architecture: String) {
        let generator = ProgramGenerator(GenerationOptions(machine: MachineLine(architecture: architecture)))
        var seen = Set<Routine>()
        for seed in 0..<600 as Range<UInt64> { for call in generator.generate(seed: seed).calls { seen.insert(call.routine) } }
        let missing = Routine.allCases.filter { !$0.isDriverRequest && !seen.contains($0) }
        #expect(missing.isEmpty, "never generated: \(missing.map(\.name))")
    }
}
