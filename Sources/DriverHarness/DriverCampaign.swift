import Foundation
import Lockstep
import LockstepPrograms

/// How a driver campaign runs.
public struct DriverCampaignOptions: Sendable {
    /// The campaign seed: program `i` is generated from `SeededRandom.derive(seed, i)`.
    public var seed: UInt64 = 1
    /// Stop after this many programs (nil: run until `seconds`).
    public var runs: Int?
    /// Stop after this many seconds (the budget decides only when to stop, never what runs).
    public var seconds: Double = 60
    /// How programs are generated (machine, requests per program, fault plans).
    public var generation = DriverGenerationOptions()
    /// Percent of programs without a fault plan that also run systematically: once per fault point
    /// the driver passes, each failed in turn.
    public var systematicPercent = 50
    /// Where findings are written as corpus entries (nil: nowhere).
    public var findingsDirectory: String?
    /// Candidate runs spent shrinking each finding before it is saved (0: do not shrink).
    public var shrinkRuns = Limits.driverShrinkRuns
    /// End the campaign at the first failing run (tests).
    public var stopAtFirstFinding = false
    /// Asked between programs: true ends the campaign (a stop signal); what it found is on disk already.
    public var shouldStop: @Sendable () -> Bool = { false }

    /// The defaults: seed 1, 60 s, half the plan-less programs systematic, findings shrunk.
    public init() {}
}

/// Counters of a driver campaign.
public struct DriverCampaignStats: Sendable {
    /// Programs generated.
    public var programs = 0
    /// Program executions (a systematic program runs once per fault point, plus its baseline).
    public var runs = 0
    /// Requests sent to the driver, over all runs.
    public var requests = 0
    /// Calls executed, over all runs.
    public var calls = 0
    /// Failing runs.
    public var failingRuns = 0
    /// Failing runs per signature.
    public var signatures: [FailureSignature: Int] = [:]
    /// Seconds since the campaign started.
    public var elapsed: Double = 0
}

/// One finding of a campaign: the first program (or systematic variant) that failed with its signature.
public struct DriverCampaignFinding: Sendable {
    /// What the first failing run found.
    public let finding: DriverFinding
    /// The program (or systematic variant) that failed.
    public let program: Program
    /// The campaign's run number and the program's own seed.
    public let index: Int
    /// The seed the program was generated from.
    public let programSeed: UInt64
    /// The program after shrinking (same signature), when the campaign shrank it.
    public var shrunk: Shrinker.Result?
    /// Where it was written, if it was.
    public var path: String?

    /// The finding's signature.
    public var signature: FailureSignature { finding.signature }
}

/// Generates request programs from a seed and runs each against one driver (some also systematically,
/// every fault point in turn), keeps the first program of each finding signature, shrinks it to a
/// minimal request sequence and fault plan, and writes it as a corpus entry.
public struct DriverCampaign: Sendable {
    /// The driver under test.
    public let driver: DriverRegistry.Entry
    /// How the campaign runs.
    public let options: DriverCampaignOptions

    /// A campaign against `driver`.
    public init(driver: DriverRegistry.Entry, options: DriverCampaignOptions) {
        self.driver = driver
        self.options = options
    }

    /// Runs the campaign; `progress` is called about once a second with the running totals.
    public func run(progress: (DriverCampaignStats) -> Void = { _ in }) -> (stats: DriverCampaignStats, findings: [DriverCampaignFinding]) {
        let generator = DriverProgramGenerator(options.generation)
        let runner = DriverRunner(driver)
        let clock = ContinuousClock()
        let start = clock.now
        var lastReport = start
        var stats = DriverCampaignStats()
        var found: [FailureSignature: DriverCampaignFinding] = [:]
        var index = 0
        func seconds() -> Double {
            let elapsed = start.duration(to: clock.now)
            return elapsed.inSeconds
        }
        campaign: while true {
            if let runs = options.runs { if index >= runs { break } } else if seconds() >= options.seconds { break }
            if options.shouldStop() { break }
            let programSeed = SeededRandom.derive(options.seed, UInt64(index))
            let program = generator.generate(seed: programSeed)
            var choice = SeededRandom(seed: programSeed ^ 0x7379_7374_656D)
            let systematic = program.faults.isEmpty && choice.chance(options.systematicPercent)
            stats.programs += 1
            guard let baseline = try? runner.run(program) else { index += 1; continue }
            var reports = [(program, baseline)]
            if systematic && baseline.finding == nil {
                for fault in DriverSystematicFaults.faultPoints(of: baseline) {
                    let variant = DriverSystematicFaults.variant(program, failing: fault)
                    if let report = try? runner.run(variant) { reports.append((variant, report)) }
                }
            }
            for (ran, report) in reports {
                stats.runs += 1
                stats.requests += report.requests
                stats.calls += report.steps
                guard let finding = report.finding else { continue }
                stats.failingRuns += 1
                stats.signatures[finding.signature, default: 0] += 1
                if found[finding.signature] == nil {
                    var item = DriverCampaignFinding(finding: finding, program: ran, index: index, programSeed: programSeed)
                    // On disk as soon as it is found (unshrunk): a campaign killed now loses nothing.
                    item.path = save(item, runner: runner)
                    found[finding.signature] = item
                }
                if options.stopAtFirstFinding { break campaign }
            }
            index += 1
            if lastReport.duration(to: clock.now) >= .seconds(1) {
                lastReport = clock.now
                stats.elapsed = seconds()
                progress(stats)
            }
        }
        stats.elapsed = seconds()
        var findings = found.keys.sorted().map { found[$0]! }
        for position in findings.indices where options.shrinkRuns > 0 && !options.shouldStop() {
            guard let shrunk = shrink(findings[position].program, runner: runner) else { continue }
            findings[position].shrunk = shrunk
            // The shrunk program replaces the unshrunk entry (entries are named by their text).
            let unshrunk = findings[position].path
            guard let path = save(findings[position], runner: runner) else { continue }
            findings[position].path = path
            if let unshrunk, unshrunk != path { try? FileManager.default.removeItem(atPath: unshrunk) }
        }
        return (stats, findings)
    }

    /// The smallest program (calls and fault lines) that fails with the same signature.
    public func shrink(_ program: Program, runner: DriverRunner) -> Shrinker.Result? {
        Shrinker(maxRuns: options.shrinkRuns, judge: Self.judge(runner)).shrink(program)
    }

    /// How the shrinker runs a candidate: its finding's signature and step (the end-of-program phase
    /// counts as the last call), or nil when it passes.
    public static func judge(_ runner: DriverRunner) -> @Sendable (Program) -> (signature: FailureSignature, step: Int)? {
        { program in
            guard let report = try? runner.run(program), let finding = report.finding else { return nil }
            return (finding.signature, min(max(finding.step, 1), max(program.calls.count, 1)))
        }
    }

    /// Writes a finding as a corpus entry whose header names the driver, the rule and the bug check.
    private func save(_ item: DriverCampaignFinding, runner: DriverRunner) -> String? {
        guard let directory = options.findingsDirectory else { return nil }
        let program = item.shrunk?.program ?? item.program
        // The header describes the program saved (the shrunk one fails the same way, at another step).
        let finding = item.shrunk.flatMap { try? runner.run($0.program).finding } ?? item.finding
        var header = DriverCorpus.header(finding)
        header.notes.append("found by: lockstep fuzz --driver \(driver.name) --seed \(options.seed) (program \(item.index), program seed \(item.programSeed))")
        if let shrunk = item.shrunk {
            header.notes.append("shrunk from \(item.program.calls.count) calls and \(item.program.faults.count) faults in \(shrunk.runs) runs; "
                          + "1-minimal: \(shrunk.oneMinimal ? "yes" : "no")")
        }
        return try? Corpus.write(program, header: header, to: directory)
    }
}

/// Driver findings in the corpus format: the same gzip program texts as engine findings, with the driver
/// named in the header so that a tool knows what to replay them against.
public enum DriverCorpus {
    /// The header for a finding: its verdict, the driver, and the rule and bug check for people.
    public static func header(_ finding: DriverFinding) -> CorpusHeader {
        CorpusHeader(verdict: finding.signature, driver: finding.driver,
                     notes: ["rule: \(finding.rule.rawValue): \(finding.rule.summary)", "Windows: \(finding.windowsText)",
                             "finding: " + (finding.description.split(separator: "\n").first.map(String.init) ?? "")])
    }
}
