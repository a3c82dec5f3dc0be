import DriverHarness
import Foundation
import Lockstep
import LockstepPrograms
import MemoryManager

/// `lockstep bench --all`: every throughput figure of the table, measured in one run on one
/// machine, with the ratios that matter more than the absolute figures (checked/bare, 2 jobs/1 job).
/// `run` prints the table and returns the same figures for `--json`.
struct ThroughputReport {
    let iterations: Int
    let architecture: String
    let seconds: Double
    let corpus: String

    private let clock = ContinuousClock()

    func run() throws -> BenchJSON.All {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        print("lockstep bench --all: \(cores) cores, \(architecture), campaigns of \(Int(seconds)) s")
        // The 7-call mix: the same calls bare and checked.
        let mix = Benchmarks.mixProgram(iterations: iterations, architecture: architecture)
        var bareCalls = 0
        let bare = try clock.measure { bareCalls = try Benchmarks.runBare(mix) }.inSeconds
        var checkedCalls = 0
        let checked = clock.measure {
            checkedCalls = Execution().run(mix).steps.count
        }.inSeconds
        let bareRate = Double(bareCalls) / bare, checkedRate = Double(checkedCalls) / checked
        row("bare engine (7-call mix)", "\(Int(bareRate)) calls/s")
        row("checked, same mix", "\(Int(checkedRate)) checked calls/s")

        // Campaigns: generated programs, features, fault plans, everything a real run does.
        let one = campaign(jobs: 1), two = campaign(jobs: 2)
        row("campaign, 1 job", "\(Int(one.callRate)) checked calls/s, \(Int(one.programRate)) programs/s")
        row("campaign, 2 jobs", "\(Int(two.callRate)) checked calls/s, \(Int(two.programRate)) programs/s")

        let shrinks = ShrinkBenchmark.run(slips: BenchCommand.shrinkableSlips)
        let shrink = BenchJSON.ShrinkSummary(findings: shrinks.count, medianMs: ShrinkBenchmark.medianSeconds(shrinks) * 1000,
                                             oneMinimal: shrinks.filter(\.oneMinimal).count)
        row("shrink (seeded-slip findings)", String(format: "median %.1f ms over %d findings, %d of them 1-minimal",
                                                  shrink.medianMs, shrink.findings, shrink.oneMinimal))
        let replay = replayRate()
        if let replay {
            row("corpus replay", "\(Int(replay.rate)) entries/s (\(corpus), \(replay.entries) entries: read, gunzip, run in lockstep)")
        } else {
            row("corpus replay", "no readable engine entries in \(corpus)")
        }

        print("")
        row("checked/bare (same mix)", String(format: "%.3f", checkedRate / bareRate))
        row("campaign 1 job/bare", String(format: "%.3f", one.callRate / bareRate))
        row("2 jobs/1 job (campaign)", String(format: "%.2f", two.callRate / one.callRate))

        return BenchJSON.All(
            cores: cores, architecture: architecture, iterations: iterations, campaignSeconds: seconds,
            bareCallsPerSecond: Int(bareRate), checkedCallsPerSecond: Int(checkedRate),
            campaignOneJob: BenchJSON.Campaign(checkedCallsPerSecond: Int(one.callRate), programsPerSecond: Int(one.programRate)),
            campaignTwoJobs: BenchJSON.Campaign(checkedCallsPerSecond: Int(two.callRate), programsPerSecond: Int(two.programRate)),
            shrink: shrink,
            corpusReplay: BenchJSON.Nullable(replay.map { BenchJSON.Replay(corpus: corpus, entries: $0.entries, entriesPerSecond: Int($0.rate)) }),
            checkedPerBare: checkedRate / bareRate, campaignOneJobPerBare: one.callRate / bareRate, twoJobsPerOneJob: two.callRate / one.callRate)
    }

    private func row(_ label: String, _ value: String) {
        print(label.padding(toLength: 34, withPad: " ", startingAt: 0) + value)
    }

    /// A seed-1 campaign with no findings directory: what `lockstep fuzz --jobs N` spends its time on.
    private func campaign(jobs: Int) -> (callRate: Double, programRate: Double) {
        var options = CampaignOptions()
        options.seconds = seconds
        options.jobs = jobs
        options.generation = GenerationOptions(machine: MachineLine(architecture: architecture))
        let stats = Campaign(options).run { _, _ in }.stats
        return (Double(stats.calls) / stats.elapsed, Double(stats.programs) / stats.elapsed)
    }

    /// Entries of the corpus replayed (read, gunzip, parse, run in lockstep) for about two seconds.
    private func replayRate() -> (rate: Double, entries: Int)? {
        let files = Corpus.files(corpus).filter { path in
            guard let entry = try? Corpus.read(path) else { return false }
            return entry.header.driver == nil
        }
        guard !files.isEmpty else { return nil }
        var replayed = 0
        let start = clock.now
        while start.duration(to: clock.now).inSeconds < 2 {
            for file in files {
                guard let entry = try? Corpus.read(file) else { continue }
                _ = Execution().run(entry.program)
                replayed += 1
            }
        }
        return (Double(replayed) / start.duration(to: clock.now).inSeconds, files.count)
    }

}
