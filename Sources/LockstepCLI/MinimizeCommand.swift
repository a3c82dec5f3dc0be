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
            signature; finally checks that the result is 1-minimal.

            Examples:
              lockstep minimize corpora/findings/divergence-….txt -o repro.txt
              lockstep minimize crash.txt --max-runs 5000

            Exit status: 0 shrunk (or already minimal), 1 the program does not fail, 2 bad input.
            """
    )

    @ArgumentParser.Argument(help: "A failing program (text or gzip).") var file: String
    @Option(name: .shortAndLong, help: "Write the shrunk program here (default: print it).") var output: String?
    @Option(help: "Stop after this many candidate runs.") var maxRuns = 2000

    func validate() throws {
        guard maxRuns > 0 else { throw ValidationError("--max-runs must be positive, e.g. --max-runs 2000") }
    }

    func run() throws {
        let program: Program
        do { program = try ProgramFiles.load(file) } catch {
            print(error.description)
            throw ExitCode(ExitStatus.badInput)
        }
        guard let result = Shrinker(maxRuns: maxRuns).shrink(program) else {
            print("\(file): the program passes; nothing to shrink")
            throw ExitCode(ExitStatus.failingVerdict)
        }
        let text = ProgramText.encode(result.program)
        let header = "# signature: \(result.signature)\n# shrunk from \(program.calls.count) calls and \(program.faults.count) faults in \(result.runs) runs; 1-minimal: \(result.oneMinimal ? "yes" : "no")\n"
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let full = lines[0] + "\n" + header + lines.dropFirst().joined(separator: "\n")
        if let output {
            try Data(full.utf8).write(to: URL(fileURLWithPath: output), options: .atomic)
            print("\(file): \(program.calls.count) → \(result.program.calls.count) calls, \(program.faults.count) → \(result.program.faults.count) faults, \(result.runs) runs, 1-minimal: \(result.oneMinimal ? "yes" : "no") → \(output)")
        } else {
            print(full, terminator: "")
        }
    }
}
