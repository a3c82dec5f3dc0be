import ArgumentParser
import Foundation
import Lockstep
import LockstepPrograms

/// The options that say which campaign runs: shared by `lockstep fuzz` and the hidden `fuzz-session`
/// subcommand that a supervised campaign runs in each child process, so both parse them alike and the
/// supervisor passes them on with `childArguments`.
struct CampaignArguments: ParsableArguments {
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
    @Flag(help: "Stop at the first reproducible failure (time and programs to it are in the summary and --json).")
    var stopAtFirstFinding = false
    @Flag(help: "Run every program twice and compare a digest of all outcomes.") var checkDeterminism = false
    @Flag(name: .shortAndLong, help: "Print only the summary.") var quiet = false
    @OptionGroup var seededBug: SeededBugOption

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive, e.g. --seconds 60") }
        if let runs, runs <= 0 { throw ValidationError("--runs must be positive, e.g. --runs 1000") }
        guard (0...100).contains(misuse) else { throw ValidationError("--misuse is a percentage from 0 to 100") }
        guard checkEvery >= 1 else { throw ValidationError("--check-every must be 1 or more") }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
    }

    /// The same options for a child process (`--seconds` is the session's own).
    var childArguments: [String] {
        var arguments = ["--seed", "\(seed)", "--machine", "\(machine)", "--findings", findings, "--misuse", "\(misuse)",
                         "--check-every", "\(checkEvery)", "--jobs", "\(jobs)", "--shard", "\(shard)"] + seededBug.arguments
        if let runs { arguments += ["--runs", "\(runs)"] }
        if let corpus { arguments += ["--corpus", corpus] }
        if checkDeterminism { arguments.append("--check-determinism") }
        if stopAtFirstFinding { arguments.append("--stop-at-first-finding") }
        if quiet { arguments.append("--quiet") }
        return arguments
    }

    /// The campaign these options describe; `session` when it runs as one session of a supervised campaign.
    func campaignOptions(session: SessionArguments?) throws -> CampaignOptions {
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
            options.seedPrograms = loadCorpus(corpus, architectures: Set(mix.entries.map(\.machine.architecture)), announce: session == nil)
            options.corpusDirectory = corpus
        }
        options.startIndices = try session?.resumePositions(jobs: jobs)
        options.campaignID = session?.supervisor
        options.shouldStop = { StopSignal.pending != nil }
        // A supervised session's snapshots are what survives it if it dies: take them often.
        if session != nil { options.progressInterval = .milliseconds(200) }
        return options
    }

    /// The campaign in this process: with `--in-process`, or as one session of a supervised campaign,
    /// which writes its counters to the session's result file every 200 ms and at the end.
    func runInThisProcess(session: SessionArguments?) throws -> SessionResult {
        let quiet = self.quiet, runs = self.runs, seconds = self.seconds, resultFile = session?.sessionResult
        let tty = isatty(STDOUT_FILENO) != 0
        let printedAt = ProgressThrottle()
        var (stats, found) = Campaign(try campaignOptions(session: session)).run { stats, final in
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

    /// The entries of `directory` for the campaign's architectures; a bad entry is one line and is skipped.
    private func loadCorpus(_ directory: String, architectures: Set<String>, announce: Bool) -> [Program] {
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
        if !quiet && announce {
            print("corpus \(directory): \(programs.count) entries" + (otherMachines > 0 ? ", \(otherMachines) for other architectures skipped" : ""))
        }
        return programs
    }
}

/// What a supervised campaign's child session is told beside the campaign: where to write its result,
/// where each worker resumes, and whose child it is.
struct SessionArguments: ParsableArguments {
    @Option(help: "Write the session's counters and findings here (JSON), as it goes and at the end.") var sessionResult: String
    @Option(help: "Each worker's first run number, comma-separated (a session resumed after a trap).") var resume: String?
    @Option(help: "The supervisor's pid: the campaign's id in scratch file names; the session dies with it.") var supervisor: Int32?

    func resumePositions(jobs: Int) throws -> [Int]? {
        guard let resume else { return nil }
        let positions = resume.split(separator: ",").compactMap { Int($0) }
        guard positions.count == jobs else { throw ValidationError("--resume takes one run number per job, e.g. --resume 12,13 with --jobs 2") }
        return positions
    }
}

/// `lockstep fuzz-session` (hidden): one session of a supervised campaign, run by `lockstep fuzz` in a
/// child process (`CampaignSupervisor`), which restarts it after a trap.
struct FuzzSessionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz-session",
        abstract: "One session of a supervised campaign (run by lockstep fuzz in a child process).",
        shouldDisplay: false
    )

    @OptionGroup var campaign: CampaignArguments
    @OptionGroup var session: SessionArguments

    func validate() throws {
        _ = try session.resumePositions(jobs: campaign.jobs)
    }

    func run() throws {
        StopSignal.install()
        if let supervisor = session.supervisor { StopSignal.dieWithParent(supervisor) }
        _ = try campaign.runInThisProcess(session: session)
        if let signal = StopSignal.pending { throw ExitCode(128 + signal) }
    }
}
