import Foundation
import LockstepPrograms

/// A failed check from a test: the minimized program, what went wrong, and the command that
/// reproduces it. Thrown by `check(runs:seed:machine:)` and `Corpus.Entry.replay()`, so a Swift Testing
/// (or XCTest) failure shows all of it.
public struct LockstepFailure: Error, CustomStringConvertible {
    /// The whole report: what failed, the program, and the command that reproduces it.
    public let description: String
}

/// The old name of `Campaign.check(runs:seed:machine:misusePercent:)`.
@available(*, deprecated, renamed: "Campaign.check(runs:seed:machine:misusePercent:)")
public func check(runs: Int, seed: UInt64 = 1, machine: String = "x86", misusePercent: Int = 30) throws {
    try Campaign.check(runs: runs, seed: seed, machine: machine, misusePercent: misusePercent)
}

extension Campaign {
    /// Runs a bounded campaign from a test: `@Test func engineHolds() throws { try Campaign.check(runs: 2_000, seed: 7) }`.
    /// Throws a `LockstepFailure` naming each failure signature with its shrunk program and the command
    /// that reproduces the campaign. Deterministic: same runs, seed and machine, same verdict.
    public static func check(runs: Int, seed: UInt64 = 1, machine: String = "x86", misusePercent: Int = 30) throws {
        var options = CampaignOptions()
        options.runs = runs
        options.seed = seed
        let line = machine.hasPrefix("machine ") ? machine : "machine \(machine)"
        guard let parsed = try? ProgramText.parse("# lockstep 1\n\(line)\n"), (try? Execution.boot(parsed)) != nil else {
            throw LockstepFailure(description: "machine \"\(machine)\" does not parse; use x86, x64, alpha or e.g. \"x64 mode=free\"")
        }
        options.generation = GenerationOptions(machine: parsed.machine, misusePercent: misusePercent)
        // As `lockstep fuzz` judges: misuse (corruption the program causes, which Driver Verifier stops)
        // is no engine finding and does not fail the check.
        let findings = Campaign(options).run { _, _ in }.findings.filter { !$0.signature.isMisuse }
        guard !findings.isEmpty else { return }
        let machineFlag = machine == "x86" ? "" : " --machine \"\(machine)\""
        var text = "\(findings.count) failure signature(s) in \(runs) runs; reproduce with: lockstep fuzz --seed \(seed) --runs \(runs)\(machineFlag) --in-process\n"
        for finding in findings {
            let program = finding.shrunk?.program ?? finding.program
            text += "\n\(finding.signature) (run \(finding.index)\(finding.shrunk.map { ", shrunk to \($0.program.calls.count) calls" } ?? "")):\n"
            text += ProgramText.encode(program)
        }
        throw LockstepFailure(description: text)
    }
}

extension Corpus {
    /// Every entry of a corpus directory, for a parameterized test:
    /// `@Test(arguments: Corpus.entries("corpora/regressions")) func replays(_ entry: Corpus.Entry) throws { try entry.replay() }`.
    /// A relative path is resolved against the current directory (the package root under `swift test`).
    /// An entry that cannot be read becomes an argument whose `replay()` throws its error, so it fails
    /// by name instead of vanishing.
    public static func entries(_ directory: String) -> [Entry] {
        files(directory).map { path in
            do { return try read(path) } catch {
                return Entry(path: path, program: Program(machine: MachineLine(), faults: [], calls: []), header: CorpusHeader(), problem: "\(error)")
            }
        }
    }
}

extension Corpus.Entry: CustomStringConvertible {
    /// The entry's file name: what a parameterized test shows for it.
    public var description: String { (path as NSString).lastPathComponent }

    /// Runs the entry in lockstep and throws a `LockstepFailure` if its verdict differs from the recorded
    /// one (`pass` when none is recorded), with the program and the `lockstep run` command.
    public func replay() throws {
        if let problem { throw LockstepFailure(description: problem) }
        let report = Execution().run(program)
        let expected = recordedSignature
        guard report.verdict.signature != expected else { return }
        throw LockstepFailure(description: "\(path): recorded \(expected), now \(report.verdict.signature)\n\(report.verdict)\n"
                              + "reproduce with: lockstep run \(path)\n" + ProgramText.encode(program))
    }
}
