import ArgumentParser
import Lockstep
import LockstepPrograms

/// `lockstep run FILE…`
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run programs in lockstep and print each verdict with its trace.",
        discussion: """
            Each FILE is a program (plain text or .gz). The engine and the reference model run it call by \
            call; every outcome is compared and the engine's invariants are checked after every step.

            Example:
              lockstep run corpora/regressions/*.gz
              lockstep run --quiet my-repro.txt

            Exit status: 0 if every program passes, 1 if any fails, 2 if a file cannot be read or parsed.
            """
    )

    @ArgumentParser.Argument(help: "Program files (text or gzip).")
    var files: [String]

    @Flag(name: .shortAndLong, help: "Print only the verdict line of each program.")
    var quiet = false

    @Option(name: .customLong("check-every"), help: "Check invariants every N steps (default 1: every step).")
    var checkEvery = 1

    @Flag(help: "Compare nothing against the reference model; check only the engine's invariants.")
    var invariantsOnly = false

    @OptionGroup var seededBug: SeededBugOption

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one program file, e.g. lockstep run repro.txt") }
        guard checkEvery >= 1 else { throw ValidationError("--check-every must be 1 or more") }
    }

    func run() throws {
        var worst: Int32 = 0
        for path in files {
            let program: Program
            do {
                program = try ProgramFiles.load(path)
            } catch {
                print(error.description)
                worst = max(worst, ExitStatus.badInput)
                continue
            }
            var execution = seededBug.execution
            execution.checkEvery = checkEvery
            let report = execution.run(program, oracle: invariantsOnly ? InvariantsOnlyOracle() : nil)
            if case .unrunnable(let reason) = report.verdict {
                print("\(path): \(reason)")
                worst = max(worst, ExitStatus.badInput)
                continue
            }
            do {
                if !quiet { print(Trace.render(report, program: program)) }
                let unknown = report.unknownObservations == 0 ? "" : " (\(report.unknownObservations) state fields the model could not know)"
                print("\(path): \(report.verdict.isPass ? "PASS" : "FAIL \(report.verdict.signature)")\(unknown)")
                if !report.verdict.isPass {
                    if !quiet { print(report.verdict.description) }
                    worst = max(worst, ExitStatus.failingVerdict)
                }
            }
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}
