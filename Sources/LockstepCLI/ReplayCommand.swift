import ArgumentParser
import Foundation
import DriverHarness
import Lockstep
import LockstepPrograms

/// `lockstep replay DIR|FILE…`
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-run corpus entries and compare each verdict with the one it recorded.",
        discussion: """
            A pass-recorded entry that now fails is a REGRESSION; a recorded finding that now passes is \
            FIXED; one that fails differently is CHANGED. A corrupt entry is reported on one line and the \
            others still run.

            With --add-to DIR, every entry (or plain program file) is also written into DIR recording the \
            verdict it has now: how a fixed finding becomes a regression that must keep passing.

            Examples:
              lockstep replay corpora/regressions
              lockstep replay corpora/findings/0123456789abcdef.gz
              lockstep replay --add-to corpora/regressions corpora/findings/0123456789abcdef.gz
              lockstep replay --junit replay.xml corpora/regressions    # one JUnit case per entry, for CI

            Exit status: 0 every verdict as recorded, 1 any REGRESSION/FIXED/CHANGED, 2 a bad entry, a \
            directory that cannot be read (one line with the path and the reason), or no entry at all (a \
            replay that read nothing does not pass).
            """
    )

    @ArgumentParser.Argument(help: "Corpus directories or entry files.") var paths: [String]
    @Flag(name: .shortAndLong, help: "Print only entries whose verdict changed.") var quiet = false
    @Option(name: .customLong("add-to"), help: "Also write each entry into this corpus with its current verdict.") var addTo: String?
    @Option(help: "Also write a JUnit XML report here: one case per entry, failed when its verdict changed.") var junit: String?
    @Flag(help: "Run the entries in this process: faster to start, but an entry that traps ends the replay. By default they run in a child process, and an entry that kills it is reported as `trap` while the replay goes on.")
    var inProcess = false
    @Option(help: .hidden) var childReport: String?
    @OptionGroup var seededBug: SeededBugOption

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("give a corpus directory, e.g. lockstep replay corpora/regressions") }
    }

    /// What a replay found so far: counts, the worst exit status, the JUnit cases, and how many of the
    /// entries it was given it has finished (a child writes it after each entry, for its parent).
    struct Tally: Codable {
        var same = 0, changed = 0, bad = 0
        var worst: Int32 = 0
        var cases: [JUnitReport.Case] = []
        var finished = 0

        mutating func add(_ other: Tally) {
            same += other.same; changed += other.changed; bad += other.bad
            worst = max(worst, other.worst)
            cases += other.cases
        }
    }

    func run() throws {
        var tally = Tally()
        var files: [String] = []
        for path in paths {
            do { files += try Corpus.listing(path) } catch {
                say(error.description)
                tally.cases.append(.init(name: path, className: "lockstep.replay", status: .errored(message: error.description)))
                tally.bad += 1
                tally.worst = max(tally.worst, ExitStatus.badInput)
            }
        }
        if let childReport {
            // A child of a supervised replay: its parent reads the tally, also after a trap.
            replay(files, into: &tally) { try? JSONEncoder().encode($0).write(to: URL(fileURLWithPath: childReport), options: .atomic) }
            return
        }
        if inProcess { replay(files, into: &tally) { _ in } } else { try replaySupervised(files, into: &tally) }
        say("replay: \(tally.same) as recorded, \(tally.changed) changed, \(tally.bad) unreadable")
        if files.isEmpty && tally.worst == 0 {
            say("replay: no entry in \(paths.joined(separator: " ")) (a replay that read nothing does not pass)")
            tally.worst = ExitStatus.badInput
        }
        if !writeJUnit(tally.cases) { tally.worst = max(tally.worst, ExitStatus.badInput) }
        if tally.worst != 0 { throw ExitCode(tally.worst) }
    }

    /// Runs the entries in a child process; when one kills it (a trap), that entry's verdict is `trap`
    /// and a new child goes on from the next entry.
    private func replaySupervised(_ files: [String], into tally: inout Tally) throws {
        let report = NSTemporaryDirectory() + "lockstep-replay-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: report) }
        var next = 0
        while next < files.count {
            try? FileManager.default.removeItem(atPath: report)
            var arguments = ["replay", "--child-report", report] + seededBug.arguments
            if quiet { arguments.append("--quiet") }
            if let addTo { arguments += ["--add-to", addTo] }
            let (status, signalled) = try CampaignSupervisor.run(FuzzCommand.executable, arguments + Array(files[next...]))
            let part = (try? Data(contentsOf: URL(fileURLWithPath: report))).flatMap { try? JSONDecoder().decode(Tally.self, from: $0) } ?? Tally()
            tally.add(part)
            guard signalled else {
                if status != 0 { throw ExitCode(status) }   // the child said why on its own output
                return
            }
            let index = next + part.finished
            guard index < files.count, StopSignal.isCrash(status) else {
                say("replay: stopped by \(StopSignal.name(status))")
                throw ExitCode(128 + status)
            }
            let file = files[index]
            if let entry = try? Corpus.read(file) {
                judge(file, entry, now: .trap,
                      details: "\nthe program kills the process that runs it (\(StopSignal.name(status)))", into: &tally)
            }
            next = index + 1
        }
    }

    /// Replays `files` in this process, calling `progress` after each entry.
    private func replay(_ files: [String], into tally: inout Tally, progress: (Tally) -> Void) {
        for file in files {
            defer {
                tally.finished += 1
                progress(tally)
            }
            let entry: Corpus.Entry
            do { entry = try Corpus.read(file) } catch {
                say(error.description)
                tally.cases.append(.init(name: file, className: "lockstep.replay", status: .errored(message: error.description)))
                tally.bad += 1
                tally.worst = max(tally.worst, ExitStatus.badInput)
                continue
            }
            // A driver entry runs against the driver its header names; an engine entry in lockstep.
            let now: Result<(signature: FailureSignature, details: String), ReplayProblem>
            if let driver = entry.header.driver {
                now = driverVerdict(of: file, entry, driver: driver)
            } else {
                let verdict = seededBug.execution.run(entry.program).verdict
                if case .unrunnable(let reason) = verdict {
                    now = .failure(ReplayProblem(description: "\(file): \(reason)"))
                } else {
                    now = .success((verdict.signature, "\n" + verdict.description))
                }
            }
            switch now {
            case .failure(let problem):
                say(problem.description)
                tally.cases.append(.init(name: file, className: "lockstep.replay", status: .errored(message: problem.description)))
                tally.bad += 1
                tally.worst = max(tally.worst, ExitStatus.badInput)
            case .success(let (signature, details)):
                judge(file, entry, now: signature, details: details, into: &tally)
            }
        }
    }

    /// One entry's verdict now (`details` describes a failing one) against the one it recorded.
    private func judge(_ file: String, _ entry: Corpus.Entry, now: FailureSignature, details: String, into tally: inout Tally) {
        let recorded = entry.recordedSignature
        let className = entry.header.driver == nil ? "lockstep.replay" : "lockstep.replay.driver"
        if let addTo {
            do {
                let header = CorpusHeader(verdict: now, driver: entry.header.driver, notes: ["added from \(file) (recorded then: \(recorded))"])
                let path = try Corpus.write(entry.program, header: header, to: addTo)
                say("\(file): added to \(path) recording \(now)")
            } catch {
                say(error.description)
                tally.worst = max(tally.worst, ExitStatus.badInput)
            }
        }
        if now == recorded {
            tally.same += 1
            tally.cases.append(.init(name: file, className: className, status: .passed))
            if !quiet { say("\(file): \(now) (as recorded)") }
            return
        }
        tally.changed += 1
        tally.worst = max(tally.worst, ExitStatus.failingVerdict)
        let label = recorded.isPass ? "REGRESSION" : now.isPass ? "FIXED" : "CHANGED"
        say("\(file): \(label): recorded \(recorded), now \(now)")
        if !now.isPass, !details.isEmpty { say("  " + details.dropFirst().replacingOccurrences(of: "\n", with: "\n  ")) }
        tally.cases.append(.init(name: file, className: className, status: .failed(
            message: "\(label): recorded \(recorded), now \(now)",
            details: ProgramText.encode(entry.program) + (now.isPass ? "" : details) + "\nreproduce: lockstep run \(file)")))
    }

    /// False if the report could not be written (said on one line).
    private func writeJUnit(_ cases: [JUnitReport.Case]) -> Bool {
        guard let junit else { return true }
        do {
            try JUnitReport(suite: "lockstep replay " + paths.joined(separator: " "), cases: cases).write(to: junit)
            return true
        } catch {
            say("--junit \(junit): cannot write the report (\(error.localizedDescription))")
            return false
        }
    }

    /// Each line out at once: if an entry kills this process after all, the lines before it are not lost.
    private func say(_ line: String) {
        Swift.print(line)
        fflush(nil)
    }
}
