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

    func validate() throws {
        guard !paths.isEmpty else { throw ValidationError("give a corpus directory, e.g. lockstep replay corpora/regressions") }
    }

    func run() throws {
        var worst: Int32 = 0
        var counts = (same: 0, changed: 0, bad: 0)
        var cases: [JUnitReport.Case] = []
        var files: [String] = []
        for path in paths {
            do { files += try Corpus.listing(path) } catch {
                print(error.description)
                cases.append(.init(name: path, className: "lockstep.replay", status: .errored(message: error.description)))
                counts.bad += 1
                worst = max(worst, ExitStatus.badInput)
            }
        }
        for file in files {
            let entry: Corpus.Entry
            do { entry = try Corpus.read(file) } catch {
                print(error.description)
                cases.append(.init(name: file, className: "lockstep.replay", status: .errored(message: error.description)))
                counts.bad += 1
                worst = max(worst, ExitStatus.badInput)
                continue
            }
            if let driver = DriverCorpus.driverName(inSignature: entry.recordedSignature ?? "") {
                let status = replayDriverEntry(file, entry, driver: driver, quiet: quiet, counts: &counts)
                worst = max(worst, status)
                cases.append(.init(name: file, className: "lockstep.replay.driver", status: status == 0 ? .passed
                                   : status == ExitStatus.badInput ? .errored(message: "\(file): the entry could not be replayed")
                                   : .failed(message: "verdict changed (recorded \(entry.recordedSignature ?? "pass"))", details: ProgramText.encode(entry.program))))
                continue
            }
            let verdict: Verdict
            do { verdict = try LockstepRunner().run(entry.program, oracle: try ReferenceOracle.make(for: entry.program)).verdict } catch {
                print("\(file): \(error)")
                cases.append(.init(name: file, className: "lockstep.replay", status: .errored(message: "\(file): \(error)")))
                counts.bad += 1
                worst = max(worst, ExitStatus.badInput)
                continue
            }
            let recorded = entry.recordedSignature ?? "pass"
            let now = verdict.signature
            if let addTo {
                do {
                    let path = try Corpus.write(entry.program, signature: now, header: ["added from \(file) (recorded then: \(recorded))"], to: addTo)
                    print("\(file): added to \(path) recording \(now)")
                } catch {
                    print(error.description)
                    worst = max(worst, ExitStatus.badInput)
                }
            }
            if now == recorded {
                counts.same += 1
                cases.append(.init(name: file, className: "lockstep.replay", status: .passed))
                if !quiet { print("\(file): \(now) (as recorded)") }
                continue
            }
            counts.changed += 1
            worst = max(worst, ExitStatus.failingVerdict)
            let label = recorded == "pass" ? "REGRESSION" : now == "pass" ? "FIXED" : "CHANGED"
            print("\(file): \(label): recorded \(recorded), now \(now)")
            if now != "pass" { print("  " + verdict.description.replacingOccurrences(of: "\n", with: "\n  ")) }
            cases.append(.init(name: file, className: "lockstep.replay", status: .failed(
                message: "\(label): recorded \(recorded), now \(now)",
                details: ProgramText.encode(entry.program) + (now == "pass" ? "" : "\n" + verdict.description)
                    + "\nreproduce: lockstep run \(file)")))
        }
        print("replay: \(counts.same) as recorded, \(counts.changed) changed, \(counts.bad) unreadable")
        if files.isEmpty && worst == 0 {
            print("replay: no entry in \(paths.joined(separator: " ")) (a replay that read nothing does not pass)")
            worst = ExitStatus.badInput
        }
        if !writeJUnit(cases) { worst = max(worst, ExitStatus.badInput) }
        if worst != 0 { throw ExitCode(worst) }
    }

    /// False if the report could not be written (said on one line).
    private func writeJUnit(_ cases: [JUnitReport.Case]) -> Bool {
        guard let junit else { return true }
        do {
            try JUnitReport(suite: "lockstep replay " + paths.joined(separator: " "), cases: cases).write(to: junit)
            return true
        } catch {
            print("--junit \(junit): cannot write the report (\(error.localizedDescription))")
            return false
        }
    }
}
