import Foundation
import LockstepPrograms

/// What one campaign session (a child process) reports to its supervisor, and what a supervised
/// campaign reports in the end: the counters and each signature's saved entry.
package struct SessionResult: Codable, Sendable {
    /// One signature found, with how many failing runs had it and where its entry was written.
    package struct Saved: Codable, Sendable {
        package var signature: FailureSignature
        package var count: Int
        package var path: String?
        /// Why a write failed (the path and the operating system's reason): with no path, nothing of it
        /// is on disk; with one, an earlier (unshrunk) entry is.
        package var problem: String?

        package init(signature: FailureSignature, count: Int, path: String?, problem: String? = nil) {
            self.signature = signature
            self.count = count
            self.path = path
            self.problem = problem
        }

        /// Corruption a free or checked build let the program cause, which Driver Verifier stops: saved
        /// and listed, but not an engine finding (it does not fail the campaign).
        package var isMisuse: Bool { signature.isMisuse }
    }

    /// The findings that fail the campaign: every one but misuse.
    package var engineFindings: [Saved] { findings.filter { !$0.isMisuse } }

    package var stats: CampaignStats
    package var findings: [Saved]
    /// The signal that stopped the campaign early (SIGINT, SIGTERM, or a kill from outside); nil: it ran
    /// to its budget.
    package var interruptedBy: Int32?

    package init(stats: CampaignStats, findings: [Saved], interruptedBy: Int32? = nil) {
        self.stats = stats
        self.findings = findings
        self.interruptedBy = interruptedBy
    }

    /// A session's snapshot or result from campaign counters: each signature with where it was written.
    package init(stats: CampaignStats, interruptedBy: Int32? = nil) {
        let findings = stats.signatures.keys.sorted().map { signature in
            Saved(signature: signature, count: stats.signatures[signature]!, path: stats.writtenFindings?[signature],
                  problem: stats.unwrittenFindings?[signature])
        }
        self.init(stats: stats, findings: findings, interruptedBy: interruptedBy)
    }

    /// Points each finding at the entry `directory` holds for its signature now: a path from a dead
    /// session's snapshot may be one another worker's smaller program has since replaced.
    package mutating func resolvePaths(in directory: String) {
        guard findings.contains(where: { $0.problem == nil && !($0.path.map(FileManager.default.fileExists) ?? false) }) else { return }
        let entries = Corpus.files(directory).compactMap { try? Corpus.read($0) }
        for index in findings.indices where findings[index].problem == nil && !(findings[index].path.map(FileManager.default.fileExists) ?? false) {
            findings[index].path = entries.first { $0.findingSignature == findings[index].signature }?.path
        }
    }

    /// Written atomically, so a supervisor never reads half a file. The temporary is named after the
    /// result file (not Foundation's `.dat.nosync…`), so a session killed mid-write leaves a file its
    /// campaign's clean-up knows.
    package func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let temporary = "\(path).tmp-\(getpid())"
        try encoder.encode(self).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else {
            let error = PathError(path, "cannot write the session result", errno: errno)
            unlink(temporary)
            throw error
        }
    }

    package static func read(_ path: String) -> SessionResult? {
        FileManager.default.contents(atPath: path).flatMap { try? JSONDecoder().decode(SessionResult.self, from: $0) }
    }
}

/// Crash isolation for campaigns: runs the campaign in a child process and, when the child dies (a Swift
/// runtime trap in the engine or the model kills the whole process), turns the program it was running
/// into a `trap` finding and starts a new child that resumes every worker where it stood. The program in
/// flight is on disk before it runs (`InFlightRecord`), so no trap is ever lost.
///
/// A dead child's in-flight programs are each re-run alone in a fresh child first: only the ones that
/// kill it again are traps (with several workers, the other workers' programs were merely running at
/// the time); a program that does not reproduce is saved as `flaky:trap`. Confirmed traps are shrunk
/// with child processes as the oracle. A child killed by a signal the engine cannot raise (SIGKILL,
/// SIGINT, SIGTERM, SIGHUP: see `StopSignal.isCrash`) was stopped from outside: its programs are not
/// traps, and the campaign stops. A SIGINT or SIGTERM to the supervisor is passed on to the child
/// (SIGTERM), which stops after its current program; the supervisor waits for it, so no process
/// outlives the campaign, and the child dies with the supervisor (`StopSignal.dieWithParent`).
package struct CampaignSupervisor {
    /// The `lockstep` executable.
    package let executable: String
    /// Arguments for one session: `(resume positions or nil, seconds left or nil, result file)`.
    package let sessionArguments: ([Int]?, Double?, String) -> [String]
    /// Arguments that run one program file alone (`run --quiet …`), to which the file path is appended.
    package let runArguments: [String]
    package let findingsDirectory: String
    package let jobs: Int
    /// The distance between one worker's consecutive runs (jobs × shard count).
    package let runStep: Int
    /// The time budget (nil: a run budget, which resumed sessions keep as it is).
    package let seconds: Double?
    /// A campaign whose children keep dying stops after this many restarts.
    package var maxRestarts = 20
    /// End the campaign at its first confirmed trap instead of restarting it (`--stop-at-first-finding`).
    package var stopAtFirstFinding = false
    /// Candidate runs (each a child process) spent shrinking a trap.
    package var shrinkRuns = Limits.trapShrinkRuns
    /// This campaign's id in scratch file names: the supervisor's pid (the caller holds its `CampaignLock`).
    package var campaign: Int32 = getpid()

    package init(executable: String, sessionArguments: @escaping ([Int]?, Double?, String) -> [String], runArguments: [String],
                findingsDirectory: String, jobs: Int, runStep: Int, seconds: Double?) {
        self.executable = executable
        self.sessionArguments = sessionArguments
        self.runArguments = runArguments
        self.findingsDirectory = findingsDirectory
        self.jobs = jobs
        self.runStep = runStep
        self.seconds = seconds
    }

    /// Runs sessions until one ends normally (or the restarts run out); `log` gets one line per event.
    /// The result merges every session's counters (a dead session's from its last progress snapshot).
    /// Programs the workers ran in a session that started at `resume` (nil: the first session, where
    /// each worker starts at its first run of the shard, the smallest run number with its residue).
    private func programsRun(since resume: [Int]?) -> Int {
        let positions = InFlightRecord.positions(in: findingsDirectory, campaign: campaign, workers: jobs)
        var completed = 0
        for (worker, position) in positions.enumerated() {
            guard let position else { continue }
            let start = resume?[safe: worker] ?? position % runStep
            if position >= start { completed += (position - start) / runStep }
        }
        // A program in flight is counted where it is settled: skipped as a trap, or re-run.
        return completed
    }

    package func run(log: (String) -> Void) throws -> SessionResult {
        try FileManager.default.createDirectory(atPath: findingsDirectory, withIntermediateDirectories: true)
        let resultFile = "\(findingsDirectory)/.session-\(campaign).json"
        // The child's standard error: its crash report when it dies, passed through otherwise.
        let crashReport = "\(findingsDirectory)/.session-\(campaign).stderr"
        defer {
            try? FileManager.default.removeItem(atPath: resultFile)
            try? FileManager.default.removeItem(atPath: crashReport)
        }
        var merged = SessionResult(stats: CampaignStats(), findings: [])
        var resume: [Int]?
        var remaining = seconds
        let clock = ContinuousClock()
        let campaignStart = clock.now
        for restart in 0...maxRestarts {
            try? FileManager.default.removeItem(atPath: resultFile)
            let started = clock.now
            let (status, signalled) = try Self.spawn(executable, sessionArguments(resume, remaining, resultFile), quiet: false,
                                                     stderr: crashReport, passesStopSignals: true)
            var session = SessionResult.read(resultFile)
            if signalled {
                // A dead session's last snapshot may predate its last programs: count them from where
                // each worker started and where its in-flight record says it stood.
                var counted = session ?? SessionResult(stats: CampaignStats(), findings: [])
                counted.stats.programs = max(counted.stats.programs, programsRun(since: resume))
                session = counted
            }
            if let session { merged.add(session) }
            merged.stats.elapsed = Self.seconds(from: campaignStart, clock)
            // Stopped: by a signal to this process (passed on), or one sent to the child alone, which it
            // either handled (exit 128 + signal) or died of. Not a trap: the engine cannot raise these.
            let stoppedBy = StopSignal.pending
                ?? (signalled && !StopSignal.isCrash(status) ? status : nil)
                ?? (!signalled && StopSignal.handled.contains(status - 128) ? status - 128 : nil)
            if let stoppedBy {
                if signalled && StopSignal.pending == nil {
                    log("the campaign process was killed by \(StopSignal.name(status)) from outside (not a trap: the engine cannot raise it); stopping")
                }
                merged.interruptedBy = stoppedBy
                merged.stats.stopReason = .stopped(signal: stoppedBy)
                InFlightRecord.clear(in: findingsDirectory, campaign: campaign)
                forward(crashReport)
                return merged
            }
            if !signalled, session != nil || status == 0 {
                forward(crashReport)
                return merged
            }
            if !signalled {
                // A child that failed before its campaign (bad arguments, an unwritable file) is no trap.
                forward(crashReport)
                throw PathError("the campaign process exited with status \(status) without a result (its error is above)")
            }
            remaining = remaining.map { $0 - Self.seconds(from: started, clock) }
            let how = "signal \(status), \(StopSignal.name(status))"
            let records = InFlightRecord.leftBehind(in: findingsDirectory, campaign: campaign)
            guard !records.isEmpty else {
                log("trap: the campaign process died (\(how)) outside any program; stopping")
                forward(crashReport)
                merged.findings.append(.init(signature: .trap, count: 1, path: nil, problem: "no program was in flight: see the campaign's standard error above"))
                merged.stats.stopReason = .diedOutsideProgram
                return merged
            }
            var positions = InFlightRecord.positions(in: findingsDirectory, campaign: campaign, workers: jobs)
            let confirmed = records.map { confirmer.reproduces($0) }
            for (record, program) in zip(records, confirmed) {
                // A program merely in flight beside a trap is innocent: it runs again after the restart.
                if program == nil && confirmed.contains(where: { $0 != nil }) {
                    unlink(record.path)
                    continue
                }
                let saved = program.map { confirmer.save($0, record, how: how, crashReport: crashReport) }
                    ?? InFlightRecord.saveAsTrap(record, signature: FailureSignature.trap.qualified(.flaky), why: "the process died (\(how)) while this program ran, but it does not kill a process on its own", to: findingsDirectory)
                let (path, problem): (String?, String?) = switch saved {
                case .success(let path): (path, nil)
                case .failure(let error): (nil, error.description)
                }
                let signature = program == nil ? FailureSignature.trap.qualified(.flaky) : .trap
                log("\(signature): the campaign process died (\(how)) running run \(record.index.map(String.init) ?? "?") → \(path ?? "(not written: \(problem ?? "?"))")")
                var trap = CampaignStats()
                trap.findings = 1
                trap.flaky = program == nil ? 1 : 0
                trap.signatures[signature] = 1
                trap.programs = 1   // it ran (and is skipped from here on)
                merged.add(SessionResult(stats: trap, findings: [.init(signature: signature, count: 1, path: path, problem: problem)]))
                // The dead session's counters may predate its last programs; the run number does not.
                if program != nil, merged.stats.firstFinding == nil, let index = record.index {
                    merged.stats.firstFinding = .init(seconds: Self.seconds(from: campaignStart, clock), programs: index / max(1, runStep / jobs) + 1)
                }
                // Skip the program that traps (or may trap); the campaign goes on after it.
                if record.worker < positions.count, let index = record.index { positions[record.worker] = index + runStep }
            }
            if let remaining, remaining <= 0 {
                merged.stats.stopReason = .seconds
                return merged
            }
            if stopAtFirstFinding && confirmed.contains(where: { $0 != nil }) {
                merged.stats.stopReason = .firstFinding
                return merged
            }
            if let signal = StopSignal.pending {
                merged.interruptedBy = signal
                merged.stats.stopReason = .stopped(signal: signal)
                return merged
            }
            if restart == maxRestarts { break }
            resume = positions.enumerated().map { worker, position in position ?? Int.max / 2 - worker }
            log("restarting the campaign (restart \(restart + 1) of at most \(maxRestarts))")
        }
        log("trap: too many restarts; stopping")
        merged.stats.stopReason = .restartLimit
        return merged
    }

    /// Re-runs programs alone in child processes, shrinks and saves the ones that trap.
    private var confirmer: TrapConfirmer {
        var engineOnly = trapOracle
        engineOnly.runArguments += ["--invariants-only"]
        var confirmer = TrapConfirmer(oracle: trapOracle, engineOnlyOracle: engineOnly, findingsDirectory: findingsDirectory)
        confirmer.shrinkRuns = shrinkRuns
        return confirmer
    }

    private var trapOracle: ChildProcessTrapOracle {
        ChildProcessTrapOracle(executable: executable, runArguments: runArguments, scratchDirectory: findingsDirectory, campaign: campaign)
    }

    /// Passes a finished child's standard error on (warnings, usage errors), then empties the file.
    private func forward(_ path: String) {
        if let data = FileManager.default.contents(atPath: path), !data.isEmpty { FileHandle.standardError.write(data) }
        try? FileManager.default.removeItem(atPath: path)
    }

    private static func seconds(from start: ContinuousClock.Instant, _ clock: ContinuousClock) -> Double {
        start.duration(to: clock.now).inSeconds
    }

    /// Runs `executable arguments` with this process's output and no crash report (a trap there is an
    /// expected outcome the caller reports), passing a stop signal on; says how it ended: (exit status or
    /// signal, died by a signal). How `lockstep replay` runs its entries.
    package static func run(_ executable: String, _ arguments: [String]) throws -> (Int32, Bool) {
        try spawn(executable, arguments, quiet: false, passesStopSignals: true, crashReports: false)
    }

    /// Runs `executable arguments`, waits, and says how it ended: (exit status or signal, died by a signal).
    /// With `passesStopSignals`, a stop signal this process receives (`StopSignal`) is passed on to the
    /// child as SIGTERM, and SIGKILL follows if it has not stopped 10 s later.
    static func spawn(_ executable: String, _ arguments: [String], quiet: Bool, stderr: String? = nil,
                      passesStopSignals: Bool = false, crashReports: Bool = true) throws -> (Int32, Bool) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let stderr {
            _ = FileManager.default.createFile(atPath: stderr, contents: nil)
            process.standardError = FileHandle(forWritingAtPath: stderr)
        }
        if !crashReports && !quiet {
            var environment = ProcessInfo.processInfo.environment
            environment["SWIFT_BACKTRACE"] = "enable=no"
            process.environment = environment
        }
        if quiet {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            // No crash report for probe runs: they are expected to die, many times when shrinking.
            var environment = ProcessInfo.processInfo.environment
            environment["SWIFT_BACKTRACE"] = "enable=no"
            process.environment = environment
        }
        try process.run()
        if passesStopSignals {
            var passedOn: ContinuousClock.Instant?
            while process.isRunning {
                if StopSignal.pending != nil {
                    if passedOn == nil {
                        kill(process.processIdentifier, SIGTERM)
                        passedOn = .now
                    } else if let passedOn, passedOn.duration(to: .now) > .seconds(10) {
                        kill(process.processIdentifier, SIGKILL)
                    }
                }
                usleep(10_000)
            }
        }
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }
}

/// A shrink oracle for traps: runs each candidate alone in a child process (`lockstep run --quiet FILE`)
/// and reports `trap` when the child crashes (`StopSignal.isCrash`: a kill from outside is no trap).
package struct ChildProcessTrapOracle: FailureOracle {
    package let executable: String
    package var runArguments: [String]
    package let scratchDirectory: String
    /// Names the candidate file (`.trap-candidate-<campaign>.txt`), a scratch file of this campaign.
    package let campaign: Int32

    package init(executable: String, runArguments: [String], scratchDirectory: String, campaign: Int32 = getpid()) {
        self.executable = executable
        self.runArguments = runArguments
        self.scratchDirectory = scratchDirectory
        self.campaign = campaign
    }

    package func failure(of program: Program) -> ShrinkFailure? {
        // A campaign told to stop spends no more time shrinking.
        guard StopSignal.pending == nil else { return nil }
        let file = "\(scratchDirectory)/.trap-candidate-\(campaign).txt"
        defer { try? FileManager.default.removeItem(atPath: file) }
        guard (try? Data(ProgramText.encode(program).utf8).write(to: URL(fileURLWithPath: file))) != nil,
              let (status, signalled) = try? CampaignSupervisor.spawn(executable, runArguments + [file], quiet: true),
              signalled, StopSignal.isCrash(status) else { return nil }
        return ShrinkFailure(signature: .trap, step: nil)
    }
}

extension SessionResult {
    /// Adds another session's counters and findings (signature counts add up; the first path wins).
    mutating func add(_ other: SessionResult) {
        // A later session's first finding counts from where the earlier sessions stopped.
        if stats.firstFinding == nil, let first = other.stats.firstFinding {
            stats.firstFinding = .init(seconds: stats.elapsed + first.seconds, programs: stats.programs + first.programs)
        }
        stats.addCounters(other.stats)
        stats.corpus = max(stats.corpus, other.stats.corpus)
        stats.corpusProblem = stats.corpusProblem ?? other.stats.corpusProblem
        stats.elapsed += other.stats.elapsed
        stats.stopReason = other.stats.stopReason ?? stats.stopReason
        for finding in other.findings {
            if let index = findings.firstIndex(where: { $0.signature == finding.signature }) {
                findings[index].count += finding.count
                if findings[index].path == nil { findings[index].path = finding.path }
                if findings[index].problem == nil { findings[index].problem = finding.problem }
            } else {
                findings.append(finding)
            }
        }
        interruptedBy = interruptedBy ?? other.interruptedBy
    }
}
