import ArgumentParser
import Foundation
import Lockstep

/// `lockstep textfuzz`: the program-text fuzz target (see `TextFuzzSupervisor`).
struct TextFuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "textfuzz",
        abstract: "Mutate program texts and run each parsable mutant in lockstep; fail on any trap, hang or memory blow-up.",
        discussion: """
            Mutants of the BASES (corpus directories, library programs; default corpora/regressions and \
            Tests/LockstepTests/Programs): numbers at their limits, tokens swapped, lines duplicated, \
            dropped and reordered, machine lines rewritten, unicode, blanks, huge tokens. Mutant N of a \
            seed is always the same text. They run in a child process: a mutant that kills it (a Swift \
            trap), runs longer than --time-limit or takes more than --memory-limit-mib of host memory is \
            saved under --findings and fails the run. Failing verdicts on the engine are listed by \
            signature with one example each, for triage (they do not fail the run).

            Example:
              lockstep textfuzz --runs 2000 --seed 1
              swift run -c release lockstep textfuzz --runs 50000 --seed 1

            Exit status: 0 without traps, hangs or programs over the memory limit; 1 with any; 2 for a usage error.
            """
    )

    @ArgumentParser.Argument(help: "Directories or files of programs to mutate.")
    var bases: [String] = ["corpora/regressions", "Tests/LockstepTests/Programs"]

    @Option(help: "Seed of the mutants.")
    var seed: UInt64 = 1

    @Option(help: "Mutants to run.")
    var runs = 2_000

    @Option(help: "Stop after this many seconds even if --runs are not done.")
    var seconds: Double?

    @Option(name: .customLong("time-limit"), help: "Seconds one program may run.")
    var timeLimit = 10.0

    @Option(name: .customLong("memory-limit-mib"), help: "Host memory (resident set, MiB) the process running one program may reach.")
    var memoryLimitMiB: UInt64 = 512

    @Option(help: "Directory for the mutants that trap, hang or pass the memory limit.")
    var findings = "corpora/findings/textfuzz"

    @Option(help: "Failing-verdict signatures to print with an example each.")
    var examples = 100

    @Option(help: "Print mutant N of --seed (to run it: lockstep textfuzz --seed S --show N > m.txt; lockstep run m.txt) and exit.")
    var show: Int?

    @Flag(help: .hidden) var worker = false
    @Option(help: .hidden) var from = 0
    @Option(help: .hidden) var log: String?

    func validate() throws {
        guard runs >= 0, timeLimit > 0, memoryLimitMiB > 0 else { throw ValidationError("--runs, --time-limit and --memory-limit-mib must be positive") }
    }

    func run() throws {
        let texts = TextFuzzSupervisor.bases(bases)
        guard !texts.isEmpty else {
            throw CommandFailure.badInput("lockstep textfuzz: no program to mutate under \(bases.joined(separator: ", "))")
        }
        let mutator = ProgramTextMutator(bases: texts)
        if let show {
            print(mutator.mutant(seed: seed, index: UInt64(show)))
            return
        }
        if worker {
            guard let log else { throw ValidationError("--worker needs --log") }
            try TextFuzzWorker(mutator: mutator, seed: seed, first: from, end: runs, seconds: seconds, timeLimitSeconds: timeLimit,
                               memoryLimitBytes: memoryLimitMiB << 20, logPath: log).run()
            return
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? Bundle.main.executablePath ?? CommandLine.arguments[0]
        let supervisor = TextFuzzSupervisor(executable: executable, workerArguments: ["textfuzz"] + bases, mutator: mutator, seed: seed,
                                            runs: runs, seconds: seconds, timeLimitSeconds: timeLimit, memoryLimitBytes: memoryLimitMiB << 20,
                                            findingsDirectory: findings)
        let summary = try supervisor.run { Swift.print($0); fflush(nil) }
        report(summary, mutator)
        if summary.failures > 0 { throw ExitCode(ExitStatus.failingVerdict) }
    }

    private func report(_ summary: TextFuzzSupervisor.Summary, _ mutator: ProgramTextMutator) {
        let sorted = summary.verdicts.sorted { ($0.value.count, $1.key) > ($1.value.count, $0.key) }
        let misuse = sorted.filter { (try? FailureSignature(parsing: $0.key))?.isMisuse == true }
        for (signature, found) in sorted.prefix(examples) {
            print("\n\(found.count)x  \(signature)  (lockstep textfuzz --seed \(seed) --show \(found.example))")
            let text = mutator.mutant(seed: seed, index: UInt64(found.example))
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            for line in lines.prefix(40) { print("    " + (line.count > 160 ? line.prefix(160) + "…" : line)) }
            if lines.count > 40 { print("    … (\(lines.count - 40) more lines)") }
        }
        for (kind, list) in [("trap", summary.traps), ("hang", summary.hangs), ("memory", summary.overMemory)] {
            for found in list { print("\(kind)  \(found.path)  (\(found.detail))") }
        }
        print(String(format: "textfuzz seed %llu: %d programs (%d parsable, %d passed, %d set-up errors) in %.1f s; ",
                     seed, summary.programs, summary.parsable, summary.passed, summary.setupErrors, summary.seconds)
              + "\(summary.traps.count) traps, \(summary.hangs.count) over \(timeLimit) s, \(summary.overMemory.count) over \(memoryLimitMiB) MiB "
              + "(peak child \(summary.peakChildResidentBytes >> 20) MiB); \(summary.failingVerdicts) failing verdicts in \(sorted.count) signatures "
              + "(\(misuse.count) labelled misuse)")
    }
}
