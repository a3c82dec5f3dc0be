import ArgumentParser
import Foundation
import Lockstep
import LockstepPrograms

/// `lockstep fuzz`
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Generate driver call programs and run them in lockstep until the time or run budget is spent.",
        discussion: """
            Every program is generated from the campaign seed and its run number, so --seed reproduces a \
            campaign on any machine. Failures are re-run once (a failure that does not reproduce is reported \
            as flaky) and each new signature's first program is written to the findings directory.

            Examples:
              swift run -c release lockstep fuzz
              lockstep fuzz --seed 7 --runs 2000 --machine x64
              lockstep fuzz --seconds 300 --check-determinism
              lockstep fuzz --corpus corpora/fuzz --jobs 2
              lockstep fuzz --seed 1 --seconds 60 --jobs 2 --junit fuzz.xml    # in CI

            By default each program runs on a machine drawn from its seed out of this mix (the machine line \
            is part of the program, so a finding replays on its machine); --machine x86 (or any machine \
            line) runs every program on one machine:
            \(MachineMix.standard.entries.map { "  \($0.weight)x  \($0.machine)" }.joined(separator: "\n"))

            Ctrl-C (SIGINT) or SIGTERM stops a campaign cleanly: every finding so far is on disk (each is \
            written when it is confirmed, and replaced by its shrunk program at the end), the summary is \
            printed, and the exit status is 130 (SIGINT) or 143 (SIGTERM).

            Exit status: 0 no finding, 1 findings, 2 usage error, a findings or --corpus directory that \
            cannot be used (one line with the path and the reason), a finding that could not be written, \
            or a bad --corpus entry (reported and skipped; the campaign still runs); 128 + N when signal \
            N stopped the campaign.
            """
    )

    @Option(help: "Campaign seed.") var seed: UInt64 = 1
    @Option(help: "Stop after this many seconds (default 60).") var seconds: Double = 60
    @Option(help: "Stop after this many programs instead of a time budget.") var runs: Int?
    @Option(help: "'mix' (a machine per program, see below), an architecture (x86, x64, alpha) or a whole machine line in quotes.", transform: MachineChoice.parse)
    var machine: MachineChoice = .mix
    @Option(help: "Directory for findings.") var findings = "corpora/findings"
    @Option(help: "A corpus directory: its entries seed the campaign's feature corpus, and the passing programs that reach new features are added to it.")
    var corpus: String?
    @Option(help: "Percent of programs that end in a deliberate misuse.") var misuse = 30
    @Option(name: .customLong("check-every"), help: "Check invariants every N steps.") var checkEvery = 1
    @Option(help: "Worker threads.") var jobs = 1
    @Option(help: "Run only shard i of n of the run space (e.g. 2/4), for a CI matrix.", transform: ShardChoice.parse) var shard: ShardChoice = .whole
    @Option(help: "Write the final statistics as JSON to this file.") var json: String?
    @Option(help: "Write a JUnit XML report to this file: one failed case per finding, with its minimized program.") var junit: String?
    @Flag(help: "Stop at the first reproducible failure (time and programs to it are in the summary and --json).")
    var stopAtFirstFinding = false
    /// The old spelling of `lockstep systematic FILE` (hidden; it forwards there).
    @Option(help: .hidden) var systematic: String?
    @Option(help: "Fuzz a registered driver under test instead of the engine ('list' lists them); uses --seed, --runs, --seconds, --machine, --findings, --junit, --quiet. See docs/DRIVER_HARNESS.md.")
    var driver: String?
    @Flag(help: "Run every program twice and compare a digest of all outcomes.") var checkDeterminism = false
    @Flag(name: .shortAndLong, help: "Print only the summary.") var quiet = false
    @Flag(help: "Run the workers in this process, with no supervisor: a trap ends the campaign (its program is saved first and reported by the next campaign).")
    var inProcess = false
    @Option(help: .hidden) var sessionResult: String?
    @Option(help: .hidden) var resume: String?
    /// In a supervised session: the supervisor's pid (the campaign's id; the session dies with it).
    @Option(help: .hidden) var supervisor: Int32?
    @OptionGroup var seededBug: SeededBugOption

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive, e.g. --seconds 60") }
        if let runs, runs <= 0 { throw ValidationError("--runs must be positive, e.g. --runs 1000") }
        guard (0...100).contains(misuse) else { throw ValidationError("--misuse is a percentage from 0 to 100") }
        guard checkEvery >= 1 else { throw ValidationError("--check-every must be 1 or more") }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        _ = try resumePositions()
    }

    func run() throws {
        if let systematic { return try SystematicCommand(file: systematic, driver: driver, checkEvery: checkEvery, quiet: quiet, seededBug: seededBug).run() }
        if let driver { return try runDriver(driver) }
        StopSignal.install()
        if let supervisor { StopSignal.dieWithParent(supervisor) }
        if sessionResult != nil {
            _ = try runInThisProcess()
            if let signal = StopSignal.pending { throw ExitCode(128 + signal) }
            return
        }
        // The directories are checked before anything runs: a bad path is one line, not a false trap.
        let lock: CampaignLock
        do {
            try WritableDirectory.prepare(findings, role: "findings directory")
            if let corpus {
                try WritableDirectory.prepare(corpus, role: "corpus directory")
                try WritableDirectory.checkReadable(corpus, role: "corpus directory")
            }
            lock = try CampaignLock(directory: findings)
        } catch {
            throw CommandFailure.badInput("lockstep fuzz: \(error.description)")
        }
        defer { lock.release() }
        let traps = recoverEarlierCampaigns()
        if !quiet {
            print("lockstep fuzz: seed \(seed), \(runs.map { "\($0) runs" } ?? "\(Int(seconds)) s"), \(machine.mix)"
                  + (inProcess ? "" : ", supervised (a trap is saved and the campaign restarts)"))
            fflush(nil)
        }
        var result = inProcess ? try runInThisProcess() : try runSupervised()
        result.resolvePaths(in: findings)
        let summary = FuzzSummary(result: result, checkDeterminism: checkDeterminism)
        summary.print()
        if let json {
            try summary.writeJSON(to: json, seed: seed, jobs: jobs, shard: "\(shard)", machine: "\(machine.mix)")
        }
        if let junit {
            do { try summary.junit(seed: seed, shard: "\(shard)", machine: "\(machine.mix)").write(to: junit) } catch {
                throw CommandFailure.badInput("--junit \(junit): cannot write the report (\(error.localizedDescription))")
            }
        }
        // Findings that could not be written, and kept programs --corpus could not take: one line each.
        let problems = result.findings.compactMap(\.problem) + (result.stats.corpusProblem.map { ["--corpus: \($0)"] } ?? [])
        for problem in Set(problems).sorted() { FileHandle.standardError.write(Data("lockstep fuzz: \(problem)\n".utf8)) }
        if let signal = result.interruptedBy {
            print("stopped by \(StopSignal.name(signal)): every finding above is on disk"
                  + (result.findings.isEmpty ? "" : " (shrink one with lockstep minimize ENTRY)"))
        }
        if !problems.isEmpty { throw ExitCode(ExitStatus.badInput) }
        if let signal = result.interruptedBy { throw ExitCode(128 + signal) }
        if !result.engineFindings.isEmpty || !traps.isEmpty { throw ExitCode(ExitStatus.failingVerdict) }
        // Bad corpus entries were reported and skipped; the campaign ran, but the input was not clean.
        if let corpus, Corpus.files(corpus).contains(where: { (try? Corpus.read($0)) == nil }) {
            throw ExitCode(ExitStatus.badInput)
        }
    }

    /// The programs campaigns that died here left in flight: each re-run alone in a child and saved as a
    /// `trap` only if it kills that child too; then the dead campaigns' scratch files are removed.
    /// Returns the traps saved.
    private func recoverEarlierCampaigns() -> [String] {
        let oracle = ChildProcessTrapOracle(executable: Self.executable, runArguments: ["run", "--quiet"] + seededBug.arguments, scratchDirectory: findings)
        var engineOnly = oracle
        engineOnly.runArguments += ["--invariants-only"]
        var traps: [String] = []
        for record in TrapRecovery.recoverDeadCampaigns(in: findings, confirmer: TrapConfirmer(oracle: oracle, engineOnlyOracle: engineOnly, findingsDirectory: findings)) {
            let run = record.index.map { "run \($0)" } ?? "a program"
            if let path = record.path {
                print("trap: an earlier campaign died running \(run), which kills a process on its own too: saved as \(path)")
                traps.append(path)
            } else if let problem = record.problem {
                print("trap: an earlier campaign died running \(run), which kills a process on its own too, but it could not be saved: \(problem)")
                traps.append(problem)
            } else if !quiet {
                print("an earlier campaign stopped while running \(run); it passes alone (not a trap)")
            }
        }
        return traps
    }

    /// This `lockstep` executable (children run it).
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
    }

    private func campaignOptions() throws -> CampaignOptions {
        var options = CampaignOptions()
        options.seed = seed
        options.seconds = seconds
        options.runs = runs
        let mix = machine.mix
        options.generation = GenerationOptions(machine: machine.line, mix: mix.entries.count > 1 ? mix : nil, misusePercent: misuse)
        options.findingsDirectory = findings
        options.checkDeterminism = checkDeterminism
        options.stopAtFirstFinding = stopAtFirstFinding
        options.checkEvery = checkEvery
        options.jobs = jobs
        options.shard = (shard.index, shard.count)
        options.prepareKernel = seededBug.prepareKernel
        if let corpus {
            options.seedPrograms = loadCorpus(corpus, architectures: Set(mix.entries.map(\.machine.architecture)))
            options.corpusDirectory = corpus
        }
        options.startIndices = try resumePositions()
        options.campaignID = supervisor
        options.shouldStop = { StopSignal.pending != nil }
        // A supervised session's snapshots are what survives it if it dies: take them often.
        if sessionResult != nil { options.progressInterval = .milliseconds(200) }
        return options
    }

    /// The campaign in this process: with `--in-process`, or as one session of a supervised campaign
    /// (`--session-result`), which writes its counters there every second and at the end.
    private func runInThisProcess() throws -> SessionResult {
        let quiet = self.quiet, runs = self.runs, seconds = self.seconds, resultFile = sessionResult
        let tty = isatty(STDOUT_FILENO) != 0
        let printedAt = ProgressThrottle()
        var (stats, found) = Campaign(try campaignOptions()).run { stats, final in
            // A snapshot for the supervisor, in case this process dies before the end.
            if let resultFile { try? SessionResult(stats: stats).write(to: resultFile) }
            guard !quiet, !final, !printedAt.tooSoon else { return }
            let line = "  \(Int(stats.elapsed)) s  programs \(stats.programs)  checked calls/s \(Int(Double(stats.calls) / max(stats.elapsed, 0.001)))"
                + "  findings \(stats.findings) (\(stats.signatures.count) signatures)  features \(stats.features)"
                + (runs == nil ? "  remaining \(max(0, Int(seconds - stats.elapsed))) s" : "")
            if tty { FileHandle.standardOutput.write(Data(("\r" + line).utf8)) } else { Swift.print(line) }
        }
        if tty && !quiet { print("") }
        if let signal = StopSignal.pending { stats.stopReason = .stopped(signal: signal) }
        let result = SessionResult(stats: stats, findings: stats.signatures.keys.sorted().map { signature in
            let finding = found.first { $0.signature == signature }
            return .init(signature: signature, count: stats.signatures[signature]!, path: finding?.path, problem: finding?.problem)
        }, interruptedBy: StopSignal.pending)
        if let resultFile { try result.write(to: resultFile) }
        return result
    }

    /// The campaign in child processes, restarted after a trap (see `CampaignSupervisor`).
    private func runSupervised() throws -> SessionResult {
        let executable = Self.executable
        var base = ["fuzz", "--supervisor", "\(getpid())", "--seed", "\(seed)", "--machine", "\(machine)", "--findings", findings, "--misuse", "\(misuse)",
                    "--check-every", "\(checkEvery)", "--jobs", "\(jobs)", "--shard", "\(shard)"] + seededBug.arguments
        if let runs { base += ["--runs", "\(runs)"] }
        if let corpus { base += ["--corpus", corpus] }
        if checkDeterminism { base.append("--check-determinism") }
        if stopAtFirstFinding { base.append("--stop-at-first-finding") }
        if quiet { base.append("--quiet") }
        let shardCount = shard.count
        var supervisor = CampaignSupervisor(
            executable: executable,
            sessionArguments: { [seconds] resume, remaining, resultFile in
                base + ["--seconds", "\(remaining ?? seconds)", "--session-result", resultFile]
                    + (resume.map { ["--resume", $0.map(String.init).joined(separator: ",")] } ?? [])
            },
            runArguments: ["run", "--quiet"] + seededBug.arguments,
            findingsDirectory: findings, jobs: jobs, runStep: jobs * shardCount, seconds: runs == nil ? seconds : nil)
        supervisor.stopAtFirstFinding = stopAtFirstFinding
        do {
            return try supervisor.run {
                Swift.print($0)
                fflush(nil)
            }
        } catch let error as PathError {
            throw CommandFailure.badInput("lockstep fuzz: \(error.description)")
        } catch {
            throw CommandFailure.badInput("lockstep fuzz: cannot start a campaign process (\(error.localizedDescription)); --in-process runs without one")
        }
    }

    /// The entries of `directory` for the campaign's architectures; a bad entry is one line and is skipped.
    private func loadCorpus(_ directory: String, architectures: Set<String>) -> [Program] {
        var programs: [Program] = []
        var otherMachines = 0
        let files: [String]
        do { files = try Corpus.listing(directory) } catch {
            FileHandle.standardError.write(Data("lockstep fuzz: --corpus \(error.description)\n".utf8))
            return []
        }
        for path in files where FileManager.default.fileExists(atPath: path) {
            do {
                let entry = try Corpus.read(path)
                if architectures.contains(entry.program.machine.architecture) { programs.append(entry.program) } else { otherMachines += 1 }
            } catch {
                FileHandle.standardError.write(Data("\(error.description) (skipped)\n".utf8))
            }
        }
        if !quiet && sessionResult == nil {
            print("corpus \(directory): \(programs.count) entries" + (otherMachines > 0 ? ", \(otherMachines) for other architectures skipped" : ""))
        }
        return programs
    }

    private func resumePositions() throws -> [Int]? {
        guard let resume else { return nil }
        let positions = resume.split(separator: ",").compactMap { Int($0) }
        guard positions.count == jobs else { throw ValidationError("--resume takes one run number per job, e.g. --resume 12,13 with --jobs 2") }
        return positions
    }
}

/// Progress lines at most once a second, however often the campaign reports.
final class ProgressThrottle: @unchecked Sendable {
    private var last: ContinuousClock.Instant?

    /// True if a line was printed less than a second ago; otherwise records now and returns false.
    var tooSoon: Bool {
        let now = ContinuousClock.now
        if let last, last.duration(to: now) < .seconds(1) { return true }
        last = now
        return false
    }
}
