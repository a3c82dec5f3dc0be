import Foundation
import LockstepPrograms
import MemoryManager

/// How a fuzzing campaign runs.
public struct CampaignOptions: Sendable {
    /// The campaign seed: with `runs`, the same seed gives the same programs (default 1).
    public var seed: UInt64 = 1
    /// Stop after this many programs (nil: run until `seconds`).
    public var runs: Int?
    /// Stop after this many seconds (the budget decides only when to stop, never what runs).
    public var seconds: Double = 60
    /// How programs are generated (machine, calls per program, misuse and fault percentages).
    public var generation = GenerationOptions()
    /// Where new findings are written (nil: nowhere).
    public var findingsDirectory: String?
    /// Run every program twice and compare a digest of all outcomes.
    public var checkDeterminism = false
    /// Check invariants after every `checkEvery` steps (default 1: every step); see `Execution.checkEvery`.
    public var checkEvery = 1
    /// Called on every fresh engine before a program runs (tests switch on deliberate bugs here).
    public var prepareKernel: (@Sendable (Kernel) -> Void)?
    /// Worker threads.
    public var jobs = 1
    /// This machine's part of the run space: shard `index` of `count` (1-based) runs the programs whose
    /// run number is `index - 1` modulo `count`.
    public var shard: (index: Int, count: Int) = (1, 1)
    /// Keep programs that reach new features and mutate them half the time.
    public var guided = true
    /// Candidate runs spent shrinking each new signature before it is saved (0: do not shrink).
    public var shrinkRuns = Limits.campaignShrinkRuns
    /// Where each worker starts (its first run number), for a campaign resumed after a worker died; nil:
    /// worker `w` starts at its first run of the shard.
    public var startIndices: [Int]?
    /// Programs every worker's feature corpus starts from (`--corpus DIR`); run once each before the
    /// campaign's own programs, not counted as runs.
    public var seedPrograms: [Program] = []
    /// Where the passing programs that reached new features are written at the end (nil: nowhere).
    public var corpusDirectory: String?
    /// How often `progress` is called while the campaign runs.
    public var progressInterval: Duration = .seconds(1)
    /// Stop every worker as soon as one finds a reproducible failure (like libFuzzer stopping at its
    /// first crash): for measuring time to first finding. Which finding comes first may depend on
    /// thread timing when `jobs > 1`.
    public var stopAtFirstFinding = false
    /// Names this campaign's in-flight records (`CampaignLock`): the supervisor's pid for a supervised
    /// session, nil for this process's pid.
    public var campaignID: Int32?
    /// Checked between programs: true stops the campaign early (a SIGINT or SIGTERM, see `StopSignal`);
    /// it then writes what it found so far, unshrunk, and returns.
    public var shouldStop: (@Sendable () -> Bool)?

    /// The defaults: seed 1, 60 seconds, one job, guided, 500 shrink runs, nothing written.
    public init() {}
}

/// One failing program.
public struct Finding: Sendable {
    /// The failure's signature (with `flaky:` or `misuse:` when the campaign judged it so).
    public let signature: FailureSignature
    /// The program's own seed: `lockstep fuzz --seed <campaign seed>` regenerates it as run `index`.
    public let programSeed: UInt64
    /// The run number that produced it (`lockstep fuzz --seed <seed>` regenerates it from this).
    public let index: Int
    /// The failing program as it ran (unshrunk; see `shrunk`).
    public let program: Program
    /// The verdict of its first run.
    public let verdict: Verdict
    /// The failure did not reproduce on a second run.
    public let flaky: Bool
    /// Where it was written, if it was.
    public var path: String?
    /// Why it could not be written (the path and the operating system's reason).
    public var problem: String?
    /// The shrunk program, when the campaign shrank it (same signature).
    public var shrunk: Shrinker.Result?
}

/// Generates programs from a seed, runs each in lockstep, re-runs every failure once before reporting
/// it, and writes each new signature's first program as a finding. With several jobs, worker `w` runs
/// the programs whose index is `w` modulo the job count (within its shard), so `--runs` campaigns give
/// the same programs and the same findings whatever the thread timing.
public struct Campaign: Sendable {
    /// The options it was created with.
    public let options: CampaignOptions

    /// A campaign with these options; nothing runs until `run(progress:)`.
    public init(_ options: CampaignOptions) { self.options = options }

    /// Runs the campaign; `progress` is called about once a second (from one worker) and at the end.
    public func run(progress: @escaping @Sendable (CampaignStats, Bool) -> Void) -> (stats: CampaignStats, findings: [Finding]) {
        let shared = SharedProgress()
        let jobs = max(1, options.jobs)
        let clock = ContinuousClock()
        let start = clock.now
        let results = WorkerResults(count: jobs)
        DispatchQueue.concurrentPerform(iterations: jobs) { worker in
            results.store(worker, work(worker: worker, jobs: jobs, start: start, clock: clock, shared: shared, progress: worker == 0 ? progress : nil))
        }
        if let directory = options.findingsDirectory { InFlightRecord.clear(in: directory, campaign: campaignID) }
        let stopped = options.shouldStop?() ?? false
        // Merge: counts add up; of each signature keep the finding with the lowest run index.
        var stats = CampaignStats()
        var bySignature: [FailureSignature: Finding] = [:]
        for result in results.all {
            stats.addCounters(result.stats)
            stats.corpus += result.stats.corpus
            for finding in result.findings where bySignature[finding.signature].map({ finding.index < $0.index }) ?? true {
                bySignature[finding.signature] = finding
            }
        }
        let elapsed = start.duration(to: clock.now)
        stats.elapsed = elapsed.inSeconds
        stats.firstFinding = shared.snapshot.firstFinding
        stats.stopReason = stopped ? .stopped(signal: nil) : options.stopAtFirstFinding && stats.firstFinding != nil ? .firstFinding
            : options.runs != nil ? .runs : .seconds
        var findings = bySignature.keys.sorted().map { bySignature[$0]! }
        // Every finding is on disk since it was confirmed; shrinking replaces it with the smaller program.
        // A stopped campaign (Ctrl-C) leaves them unshrunk: `lockstep minimize` shrinks one later.
        // Saving again also finds the entry kept when another worker wrote a smaller program.
        for index in findings.indices {
            let oracle = LockstepFailureOracle(Execution(prepareKernel: options.prepareKernel), labelsMisuse: true)
            if !stopped, options.shouldStop?() != true, options.shrinkRuns > 0, !findings[index].flaky, let shrunk = Shrinker(maxRuns: options.shrinkRuns, oracle: oracle).shrink(findings[index].program) {
                findings[index].shrunk = shrunk
            }
            (findings[index].path, findings[index].problem) = save(findings[index])
        }
        if let directory = options.corpusDirectory {
            var problem: String?
            for program in results.all.flatMap(\.kept) {
                let header = CorpusHeader(verdict: .pass, notes: ["kept by lockstep fuzz --seed \(options.seed): it reached new features"])
                do { try Corpus.write(program, header: header, to: directory) } catch {
                    problem = problem ?? error.description
                }
            }
            stats.corpusProblem = problem
        }
        progress(stats, true)
        return (stats, findings)
    }

    private func work(worker: Int, jobs: Int, start: ContinuousClock.Instant, clock: ContinuousClock, shared: SharedProgress,
                      progress: (@Sendable (CampaignStats, Bool) -> Void)?) -> WorkerOutput {
        let generator = ProgramGenerator(options.generation)
        let runner = Execution(checkEvery: options.checkEvery, recordFaultSites: true, prepareKernel: options.prepareKernel)
        let mutator = ProgramMutator()
        var stats = CampaignStats()
        var findings: [FailureSignature: Finding] = [:]
        var features = FeatureSet()
        var corpus: [Program] = []
        var kept: [Program] = []
        // The edges' numbers for each machine programs run on (a campaign may mix machines).
        var edgeConstantsByMachine: [MachineLine: EdgeConstants] = [:]
        func edgeConstants(_ program: Program) -> EdgeConstants {
            if let known = edgeConstantsByMachine[program.machine] { return known }
            let constants = EdgeConstants(program.machine)
            edgeConstantsByMachine[program.machine] = constants
            return constants
        }
        var reachedEdges = [Bool](repeating: false, count: ParameterEdges.all.count)
        // The seed corpus: its features count as reached, its programs are there to mutate.
        for program in options.seedPrograms {
            let report = runner.run(program)
            features.insert(report)
            for edge in EdgeClassifier.edges(of: report, constants: edgeConstants(program)) where !reachedEdges[edge] {
                reachedEdges[edge] = true
                features.insert(edge: edge)
            }
            corpus.append(program)
        }
        let inFlight = options.findingsDirectory.flatMap { InFlightRecord(directory: $0, campaign: campaignID, worker: worker) }
        var lastReport = start
        let step = options.shard.count * jobs
        var index = options.startIndices?[safe: worker] ?? (options.shard.index - 1) + worker * options.shard.count
        while true {
            let seconds = start.duration(to: clock.now).inSeconds
            if let runs = options.runs { if index >= runs { break } } else if seconds >= options.seconds { break }
            if options.stopAtFirstFinding && shared.hasFirstFinding { break }
            if options.shouldStop?() == true { break }
            let programSeed = SeededRandom.derive(options.seed, UInt64(index))
            // Half the time (once there is a corpus) mutate a program that reached something new.
            var choice = SeededRandom(seed: programSeed ^ 0x6D75_7461_7465)
            let program = !corpus.isEmpty && options.guided && choice.chance(50)
                ? mutator.mutate(corpus[choice.below(corpus.count)], random: &choice)
                : generator.generate(seed: programSeed)
            inFlight?.begin(index: index, ProgramText.encode(program))
            let report = runner.run(program)
            // Parameter edges are features too: a program that reaches a new one is kept.
            var newEdges = 0
            for edge in EdgeClassifier.edges(of: report, constants: edgeConstants(program)) where !reachedEdges[edge] {
                reachedEdges[edge] = true
                if features.insert(edge: edge) { newEdges += 1 }
            }
            if options.guided {
                if features.insert(report) + newEdges > 0 && corpus.count < Limits.featureCorpusCap {
                    corpus.append(program)
                    if report.verdict.isPass { kept.append(program) }
                }
                stats.features = features.count
                stats.corpus = corpus.count
            }
            stats.programs += 1
            stats.calls += report.steps.count
            stats.unknownObservations += report.unknownObservations
            stats.unpredictedSteps += report.steps.filter { if case .unpredictable = $0.expectation { return true } else { return false } }.count
            if options.checkDeterminism, Self.digest(report) != Self.digest(runner.run(program)) {
                stats.nondeterministic += 1
            }
            var failed = false, reproduced = false
            if case .unrunnable = report.verdict {
                // Set-up-error policy (`Execution`): a program the generator or mutator made that cannot be
                // set up is a fault of ours, counted apart, never an engine finding.
                stats.unrunnable += 1
                stats.firstUnrunnable = stats.firstUnrunnable ?? "run \(index): \(report.verdict)"
            } else if !report.verdict.isPass {
                let again = runner.run(program)
                let flaky = again.verdict.signature != report.verdict.signature
                let signature = flaky ? report.verdict.signature.qualified(.flaky) : runner.signature(of: program, report)
                let misuse = signature.isMisuse
                stats.findings += 1
                if flaky { stats.flaky += 1 }
                if findings[signature] == nil {
                    var finding = Finding(signature: signature, programSeed: programSeed, index: index, program: program,
                                          verdict: report.verdict, flaky: flaky)
                    // On disk as soon as it is confirmed (re-run), so that no kill can lose it.
                    if options.findingsDirectory != nil {
                        (finding.path, finding.problem) = save(finding)
                        shared.recordWrite(signature: signature, path: finding.path, problem: finding.problem)
                    }
                    findings[signature] = finding
                }
                stats.signatures[signature, default: 0] += 1
                failed = true
                // The first finding is the first engine finding: misuse is the program's own corruption.
                reproduced = !flaky && !misuse
            }
            inFlight?.end(next: index + step)
            shared.add(calls: report.steps.count, failed: failed, reproduced: reproduced, signatures: failed ? Set(findings.keys) : [],
                       features: features.count, seconds: reproduced ? start.duration(to: clock.now).inSeconds : seconds)
            index += step
            if let progress, lastReport.duration(to: clock.now) >= options.progressInterval {
                lastReport = clock.now
                var snapshot = shared.snapshot
                snapshot.elapsed = seconds
                progress(snapshot, false)
            }
        }
        stats.reachedEdges = reachedEdges.indices.filter { reachedEdges[$0] }.map { ParameterEdges.all[$0] }
        return WorkerOutput(stats: stats, findings: findings.keys.sorted().map { findings[$0]! }, kept: kept)
    }

    /// FNV-1a over the outcome of every step (stable across processes, unlike Hasher).
    static func digest(_ report: RunReport) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for step in report.steps {
            for byte in "\(step.index) \(step.outcome)|".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        for byte in report.verdict.signature.description.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }

    /// Serializes this process's finding writes: one signature, one entry.
    private static let saving = NSLock()

    /// Writes the finding as a corpus entry (gzip, content-hash name, atomic) with a `#` header, and
    /// removes the directory's other entries with the same signature: of them all the smallest program
    /// stays (the shrunk one replaces the unshrunk one written when it was confirmed). Returns the path
    /// kept, or why it could not be written.
    func save(_ finding: Finding) -> (path: String?, problem: String?) {
        guard let directory = options.findingsDirectory else { return (nil, nil) }
        var notes = ["found by: lockstep fuzz --seed \(options.seed) (run \(finding.index), program seed \(finding.programSeed))",
                     "verdict (before shrinking): " + finding.verdict.description.replacingOccurrences(of: "\n", with: "\n#   ")]
        if let shrunk = finding.shrunk {
            notes.append("shrunk from \(finding.program.calls.count) calls and \(finding.program.faults.count) faults in \(shrunk.runs) runs; "
                         + "1-minimal: \(shrunk.oneMinimal ? "yes" : "no"); faults it needs: \(shrunk.program.faults.isEmpty ? "none" : shrunk.program.faults.map(\.description).joined(separator: "; "))")
        } else if !finding.flaky {
            notes.append("not shrunk (written when confirmed; lockstep minimize shrinks it)")
        }
        let program = finding.shrunk?.program ?? finding.program
        // A program-induced failure replays with its plain verdict; the qualifier says what it is.
        if finding.signature.isMisuse {
            let execution = Execution()
            if let stop = execution.misuseStop(program, failingAt: finding.shrunk == nil ? finding.verdict : execution.run(program).verdict) {
                notes.append("program-induced: " + stop)
            }
        }
        let header = CorpusHeader(verdict: finding.signature, notes: notes)
        Self.saving.lock()
        defer { Self.saving.unlock() }
        // Misuse and engine findings can share a recorded signature: the finding's own tells them apart.
        let existing = Corpus.files(directory).compactMap { try? Corpus.read($0) }.filter { $0.findingSignature == finding.signature }
        let kept: String
        if let smaller = existing.filter({ $0.program.isSimpler(than: program) }).min(by: { $0.program.isSimpler(than: $1.program) }) {
            kept = smaller.path
        } else {
            do {
                kept = try Corpus.write(program, header: header, to: directory, replacingSameProgram: finding.shrunk != nil)
            } catch {
                // The entry written when the finding was confirmed stays (unshrunk); the problem is still said.
                let fallback = existing.min { $0.program.isSimpler(than: $1.program) }
                return (fallback?.path, error.description + (fallback == nil ? "" : " (the shrunk program; the entry written when it was confirmed is kept)"))
            }
        }
        for other in existing where other.path != kept { unlink(other.path) }
        return (kept, nil)
    }

    /// The id in this campaign's in-flight record names.
    private var campaignID: Int32 { options.campaignID ?? getpid() }
}

extension Array {
    subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
