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

    @OptionGroup var campaign: CampaignArguments
    @Option(help: "Write the final statistics as JSON to this file.") var json: String?
    @Option(help: "Write a JUnit XML report to this file: one failed case per finding, with its minimized program.") var junit: String?
    @Option(help: "Fuzz a registered driver under test instead of the engine ('list' lists them); uses --seed, --runs, --seconds, --machine, --findings, --junit, --quiet. See docs/DRIVER_HARNESS.md.")
    var driver: String?
    @Flag(help: "Run the workers in this process, with no supervisor: a trap ends the campaign (its program is saved first and reported by the next campaign).")
    var inProcess = false
    /// The old spelling of `lockstep systematic FILE` (hidden; it forwards there).
    @Option(help: .hidden) var systematic: String?

    func run() throws {
        if let systematic {
            return try SystematicCommand(file: systematic, driver: driver, checkEvery: campaign.checkEvery, quiet: campaign.quiet, seededBug: campaign.seededBug).run()
        }
        if let driver { return try runDriver(driver) }
        StopSignal.install()
        let findings = campaign.findings, quiet = campaign.quiet
        // The directories are checked before anything runs: a bad path is one line, not a false trap.
        let lock: CampaignLock
        do {
            try WritableDirectory.prepare(findings, role: "findings directory")
            if let corpus = campaign.corpus {
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
            print("lockstep fuzz: seed \(campaign.seed), \(campaign.runs.map { "\($0) runs" } ?? "\(Int(campaign.seconds)) s"), \(campaign.machine.mix)"
                  + (inProcess ? "" : ", supervised (a trap is saved and the campaign restarts)"))
            fflush(nil)
        }
        var result = inProcess ? try campaign.runInThisProcess(session: nil) : try runSupervised()
        result.resolvePaths(in: findings)
        let summary = FuzzSummary(result: result, checkDeterminism: campaign.checkDeterminism)
        summary.print()
        if let json {
            try summary.writeJSON(to: json, seed: campaign.seed, jobs: campaign.jobs, shard: "\(campaign.shard)", machine: "\(campaign.machine.mix)")
        }
        if let junit {
            do { try summary.junit(seed: campaign.seed, shard: "\(campaign.shard)", machine: "\(campaign.machine.mix)").write(to: junit) } catch {
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
        if let corpus = campaign.corpus, Corpus.files(corpus).contains(where: { (try? Corpus.read($0)) == nil }) {
            throw ExitCode(ExitStatus.badInput)
        }
    }

    /// The programs campaigns that died here left in flight: each re-run alone in a child and saved as a
    /// `trap` only if it kills that child too; then the dead campaigns' scratch files are removed.
    /// Returns the traps saved.
    private func recoverEarlierCampaigns() -> [String] {
        let oracle = ChildProcessTrapOracle(executable: Self.executable, runArguments: ["run", "--quiet"] + campaign.seededBug.arguments, scratchDirectory: campaign.findings)
        var engineOnly = oracle
        engineOnly.runArguments += ["--invariants-only"]
        var traps: [String] = []
        for record in TrapRecovery.recoverDeadCampaigns(in: campaign.findings, confirmer: TrapConfirmer(oracle: oracle, engineOnlyOracle: engineOnly, findingsDirectory: campaign.findings)) {
            let run = record.index.map { "run \($0)" } ?? "a program"
            if let path = record.path {
                print("trap: an earlier campaign died running \(run), which kills a process on its own too: saved as \(path)")
                traps.append(path)
            } else if let problem = record.problem {
                print("trap: an earlier campaign died running \(run), which kills a process on its own too, but it could not be saved: \(problem)")
                traps.append(problem)
            } else if !campaign.quiet {
                print("an earlier campaign stopped while running \(run); it passes alone (not a trap)")
            }
        }
        return traps
    }

    /// This `lockstep` executable (children run it).
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
    }

    /// The campaign in child processes, restarted after a trap (see `CampaignSupervisor`).
    private func runSupervised() throws -> SessionResult {
        let executable = Self.executable
        let base = ["fuzz-session", "--supervisor", "\(getpid())"] + campaign.childArguments
        let (seconds, runs, jobs, findings) = (campaign.seconds, campaign.runs, campaign.jobs, campaign.findings)
        var supervisor = CampaignSupervisor(
            executable: executable,
            sessionArguments: { [seconds] resume, remaining, resultFile in
                base + ["--seconds", "\(remaining ?? seconds)", "--session-result", resultFile]
                    + (resume.map { ["--resume", $0.map(String.init).joined(separator: ",")] } ?? [])
            },
            runArguments: ["run", "--quiet"] + campaign.seededBug.arguments,
            findingsDirectory: findings, jobs: jobs, runStep: jobs * campaign.shard.count, seconds: runs == nil ? seconds : nil)
        supervisor.stopAtFirstFinding = campaign.stopAtFirstFinding
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
