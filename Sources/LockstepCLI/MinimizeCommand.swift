import ArgumentParser
import Foundation
import Lockstep
import LockstepPrograms

/// `lockstep minimize FILE`
struct MinimizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minimize",
        abstract: "Shrink a failing program to a smaller one that fails with the same signature.",
        discussion: """
            Drops the calls after the failing one and those it does not depend on, then removes chunks of \
            calls, fault lines, and simplifies numbers, keeping only candidates that fail with the same \
            signature; finally checks that the result is 1-minimal (no single removal or simplification \
            still fails the same way).

            With -o, the best program so far is written (atomically) each time it improves, so an \
            interrupted or time-bounded shrink loses nothing: minimize the output again to resume.

            Examples:
              lockstep minimize corpora/findings/<entry>.gz -o repro.txt
              lockstep minimize crash.txt --max-runs 5000 --max-seconds 30 -o repro.txt

            Exit status: 0 shrunk (or already minimal), 1 the program does not fail, 2 bad input.
            """
    )

    @ArgumentParser.Argument(help: "A failing program (text or gzip).") var file: String
    @Option(name: .shortAndLong, help: "Write the shrunk program here (default: print it).") var output: String?
    @Option(help: "Stop after this many candidate runs.") var maxRuns = Limits.shrinkRuns
    @Option(help: "Stop after this many seconds (the best program so far is the result).") var maxSeconds: Double?
    @Flag(name: .shortAndLong, help: "No progress lines.") var quiet = false
    @OptionGroup var seededBug: SeededBugOption

    func validate() throws {
        guard maxRuns > 0 else { throw ValidationError("--max-runs must be positive, e.g. --max-runs 2000") }
        if let maxSeconds, maxSeconds <= 0 { throw ValidationError("--max-seconds must be positive, e.g. --max-seconds 30") }
    }

    /// The entry text: the program with the signature and shrink statistics in its header.
    private func text(_ program: Program, signature: FailureSignature, stats: String) -> String {
        CorpusHeader(verdict: signature, notes: [stats]).annotating(program)
    }

    func run() throws {
        let program: Program
        do { program = try ProgramFiles.load(file) } catch {
            throw CommandFailure.badInput(error.description)
        }
        var shrinker = Shrinker(maxRuns: maxRuns, execution: seededBug.execution)
        shrinker.maxSeconds = maxSeconds
        let clock = ContinuousClock(), start = clock.now
        var lastLine = start
        let original = program, output = self.output, quiet = self.quiet
        shrinker.onImprovement = { best, signature, runs in
            if let output {
                let stats = "shrinking (in progress) from \(original.calls.count) calls: \(best.calls.count) calls, \(best.faults.count) faults after \(runs) runs"
                try? Data(text(best, signature: signature, stats: stats).utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            }
            if !quiet, lastLine.duration(to: clock.now) >= .seconds(1) {
                lastLine = clock.now
                FileHandle.standardError.write(Data("  \(runs) runs: \(best.calls.count) calls, \(best.faults.count) faults\n".utf8))
            }
        }
        guard let result = shrinker.shrink(program) else {
            print("\(file): the program passes; nothing to shrink")
            throw ExitCode(ExitStatus.failingVerdict)
        }
        let seconds = start.duration(to: clock.now).inSeconds
        let minimality = result.budgetExhausted ? "not checked (the budget ran out; minimize the output again to go on)" : result.oneMinimal ? "yes" : "no"
        let stats = "shrunk from \(program.calls.count) calls and \(program.faults.count) faults in \(result.runs) runs; 1-minimal: \(minimality)"
        let full = text(result.program, signature: result.signature, stats: stats)
        if let output {
            try Data(full.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            print("\(file): \(program.calls.count) → \(result.program.calls.count) calls, \(program.faults.count) → \(result.program.faults.count) faults, "
                  + "\(result.runs) runs in \(String(format: "%.2f", seconds)) s, 1-minimal: \(minimality) → \(output)")
        } else {
            print(full, terminator: "")
        }
    }
}
