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

            Exit status: 0 no finding, 1 findings, 2 usage error or a bad --corpus entry (reported and \
            skipped; the campaign still runs).
            """
    )

    @Option(help: "Campaign seed.") var seed: UInt64 = 1
    @Option(help: "Stop after this many seconds (default 60).") var seconds: Double = 60
    @Option(help: "Stop after this many programs instead of a time budget.") var runs: Int?
    @Option(help: "'mix' (a machine per program, see below), an architecture (x86, x64, alpha) or a whole machine line in quotes.")
    var machine = "mix"
    @Option(help: "Directory for findings.") var findings = "corpora/findings"
    @Option(help: "A corpus directory: its entries seed the campaign's feature corpus, and the passing programs that reach new features are added to it.")
    var corpus: String?
    @Option(help: "Percent of programs that end in a deliberate misuse.") var misuse = 30
    @Option(name: .customLong("check-every"), help: "Check invariants every N steps.") var checkEvery = 1
    @Option(help: "Worker threads.") var jobs = 1
    @Option(help: "Run only shard i of n of the run space (e.g. 2/4), for a CI matrix.") var shard = "1/1"
    @Option(help: "Write the final statistics as JSON to this file.") var json: String?
    @Option(help: "Write a JUnit XML report to this file: one failed case per finding, with its minimized program.") var junit: String?
    @Flag(help: "Stop at the first reproducible failure (time and programs to it are in the summary and --json).")
    var stopAtFirstFinding = false
    @Option(help: "Instead of a campaign: run this program once per fault point it passes, each time failing that point.")
    var systematic: String?
    @Option(help: "Fuzz a registered driver under test instead of the engine ('list' lists them); uses --seed, --runs, --seconds, --machine, --findings, --systematic, --junit, --quiet. See docs/DRIVER_HARNESS.md.")
    var driver: String?
    @Flag(help: "Run every program twice and compare a digest of all outcomes.") var checkDeterminism = false
    @Flag(name: .shortAndLong, help: "Print only the summary.") var quiet = false
    @Flag(help: "Run the workers in this process, with no supervisor: a trap ends the campaign (its program is saved first and reported by the next campaign).")
    var inProcess = false
    @Option(help: .hidden) var sessionResult: String?
    @Option(help: .hidden) var resume: String?
    @OptionGroup var seededBug: SeededBugOption

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive, e.g. --seconds 60") }
        if let runs, runs <= 0 { throw ValidationError("--runs must be positive, e.g. --runs 1000") }
        guard (0...100).contains(misuse) else { throw ValidationError("--misuse is a percentage from 0 to 100") }
        guard checkEvery >= 1 else { throw ValidationError("--check-every must be 1 or more") }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        _ = try shardParts()
        _ = try machineLine()
        _ = try resumePositions()
    }

    /// `--systematic FILE`: every fault point of one program, failed in turn.
    private func runSystematic(_ path: String) throws {
        let program: Program
        do { program = try ProgramFiles.load(path) } catch {
            print(error.description)
            throw ExitCode(ExitStatus.badInput)
        }
        let variants: [SystematicFaults.Variant]
        do { variants = try SystematicFaults.run(program, runner: LockstepRunner(checkEvery: checkEvery)) } catch {
            print("\(path): \(error)")
            throw ExitCode(ExitStatus.badInput)
        }
        var failures = 0
        for variant in variants {
            let label = variant.fault?.description ?? "baseline (no fault)"
            let result = variant.verdict.isPass ? "pass" : "FAIL \(variant.verdict.signature)"
            if !quiet || !variant.verdict.isPass { print("\(label): \(result)") }
            if !variant.verdict.isPass {
                failures += 1
                if !quiet { print("  " + variant.verdict.description.replacingOccurrences(of: "\n", with: "\n  ")) }
            }
        }
        print("systematic: \(variants.count - 1) fault points, \(variants.count) runs, \(failures) failing")
        if failures > 0 { throw ExitCode(1) }
    }

    private func shardParts() throws -> (Int, Int) {
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] >= 1, (1...parts[1]).contains(parts[0]) else {
            throw ValidationError("--shard takes i/n with 1 <= i <= n, e.g. --shard 2/4")
        }
        return (parts[0], parts[1])
    }

    /// `--machine mix`: the standard mix; anything else: one machine line.
    private func machineMix() throws -> MachineMix {
        machine == "mix" ? .standard : .only(try machineLine())
    }

    private func machineLine() throws -> MachineLine {
        if machine == "mix" { return MachineMix.standard.entries[0].machine }
        let text = machine.hasPrefix("machine ") ? machine : "machine \(machine)"
        do {
            let program = try ProgramText.parse("# lockstep 1\n\(text)\n")
            _ = try LockstepRunner.makeKernel(for: program)
            return program.machine
        } catch {
            throw ValidationError("--machine: \(error); use mix, x86, x64, alpha or e.g. \"x64 mode=free ram=64M\"")
        }
    }

    func run() throws {
        if let driver { return try runDriver(driver) }
        if let systematic { return try runSystematic(systematic) }
        var recovery = CampaignOptions()
        recovery.findingsDirectory = findings
        let traps = Campaign(recovery).recoverTraps()
        for path in traps { print("trap: an earlier campaign died while running the program now saved as \(path)") }
        if !quiet && sessionResult == nil {
            print("lockstep fuzz: seed \(seed), \(runs.map { "\($0) runs" } ?? "\(Int(seconds)) s"), \(try machineMix())"
                  + (inProcess ? "" : ", supervised (a trap is saved and the campaign restarts)"))
            fflush(nil)
        }
        let result = inProcess || sessionResult != nil ? try runInThisProcess() : try runSupervised()
        if sessionResult != nil { return }
        let summary = FuzzSummary(result: result, checkDeterminism: checkDeterminism)
        summary.print()
        if let json { try summary.writeJSON(to: json, seed: seed, jobs: jobs, shard: shard, machine: "\(try machineMix())") }
        if let junit {
            do { try summary.junit(seed: seed, shard: shard, machine: "\(try machineMix())").write(to: junit) } catch {
                print("--junit \(junit): cannot write the report (\(error.localizedDescription))")
                throw ExitCode(ExitStatus.badInput)
            }
        }
        if !result.engineFindings.isEmpty || !traps.isEmpty { throw ExitCode(ExitStatus.failingVerdict) }
        // Bad corpus entries were reported and skipped; the campaign ran, but the input was not clean.
        if let corpus, Corpus.files(corpus).contains(where: { (try? Corpus.read($0)) == nil }), FileManager.default.fileExists(atPath: corpus) {
            throw ExitCode(ExitStatus.badInput)
        }
    }

    private func campaignOptions() throws -> CampaignOptions {
        var options = CampaignOptions()
        options.seed = seed
        options.seconds = seconds
        options.runs = runs
        let mix = try machineMix()
        options.generation = GenerationOptions(machine: try machineLine(), mix: mix.entries.count > 1 ? mix : nil, misusePercent: misuse)
        options.findingsDirectory = findings
        options.checkDeterminism = checkDeterminism
        options.stopAtFirstFinding = stopAtFirstFinding
        options.checkEvery = checkEvery
        options.jobs = jobs
        let (shardIndex, shardCount) = try shardParts()
        options.shard = (shardIndex, shardCount)
        options.prepareKernel = seededBug.prepareKernel
        if let corpus {
            options.seedPrograms = loadCorpus(corpus, architectures: Set(mix.entries.map(\.machine.architecture)))
            options.corpusDirectory = corpus
        }
        options.startIndices = try resumePositions()
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
        let (stats, found) = Campaign(try campaignOptions()).run { stats, final in
            // A snapshot for the supervisor, in case this process dies before the end.
            if let resultFile {
                try? SessionResult(stats: stats, findings: stats.signatures.keys.sorted().map { .init(signature: $0, count: stats.signatures[$0]!, path: nil) })
                    .write(to: resultFile)
            }
            guard !quiet, !final, !printedAt.tooSoon else { return }
            let line = "  \(Int(stats.elapsed)) s  programs \(stats.programs)  checked calls/s \(Int(Double(stats.calls) / max(stats.elapsed, 0.001)))"
                + "  findings \(stats.findings) (\(stats.signatures.count) signatures)  features \(stats.features)"
                + (runs == nil ? "  remaining \(max(0, Int(seconds - stats.elapsed))) s" : "")
            if tty { FileHandle.standardOutput.write(Data(("\r" + line).utf8)) } else { Swift.print(line) }
        }
        if tty && !quiet { print("") }
        let result = SessionResult(stats: stats, findings: stats.signatures.keys.sorted().map { signature in
            .init(signature: signature, count: stats.signatures[signature]!, path: found.first { $0.signature == signature }?.path)
        })
        if let resultFile { try result.write(to: resultFile) }
        return result
    }

    /// The campaign in child processes, restarted after a trap (see `CampaignSupervisor`).
    private func runSupervised() throws -> SessionResult {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
        var base = ["fuzz", "--seed", "\(seed)", "--machine", machine, "--findings", findings, "--misuse", "\(misuse)",
                    "--check-every", "\(checkEvery)", "--jobs", "\(jobs)", "--shard", shard] + seededBug.arguments
        if let runs { base += ["--runs", "\(runs)"] }
        if let corpus { base += ["--corpus", corpus] }
        if checkDeterminism { base.append("--check-determinism") }
        if stopAtFirstFinding { base.append("--stop-at-first-finding") }
        if quiet { base.append("--quiet") }
        let (_, shardCount) = try shardParts()
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
        } catch {
            print("lockstep fuzz: cannot start a campaign process (\(error)); --in-process runs without one")
            throw ExitCode(ExitStatus.badInput)
        }
    }

    /// The entries of `directory` for the campaign's architectures; a bad entry is one line and is skipped.
    private func loadCorpus(_ directory: String, architectures: Set<String>) -> [Program] {
        guard FileManager.default.fileExists(atPath: directory) else { return [] }
        var programs: [Program] = []
        var otherMachines = 0
        for path in Corpus.files(directory) {
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
