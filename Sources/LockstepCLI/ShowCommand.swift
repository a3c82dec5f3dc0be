import ArgumentParser
import Lockstep
import LockstepPrograms

/// `lockstep show FILE`
struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Print a corpus entry with its trace, or as a ready-to-commit Swift Testing regression test.",
        discussion: """
            Examples:
              lockstep show corpora/findings/0123456789abcdef.gz
              lockstep show --swift-test corpora/findings/0123456789abcdef.gz >> Tests/MyTests/Regressions.swift
            """
    )

    @ArgumentParser.Argument(help: "A corpus entry or program file.") var file: String
    @Flag(name: .customLong("swift-test"), help: "Print a Swift Testing @Test that replays the entry and asserts its verdict.")
    var swiftTest = false

    func run() throws {
        let entry: Corpus.Entry
        do { entry = try Corpus.read(file) } catch {
            print(error.description)
            throw ExitCode(ExitStatus.badInput)
        }
        if swiftTest {
            print(RegressionTestSource.make(entry), terminator: "")
            return
        }
        print((try? ProgramFiles.readText(file)) ?? ProgramText.encode(entry.program))
        do {
            let report = try LockstepRunner().run(entry.program, oracle: try ReferenceOracle.make(for: entry.program))
            print(Trace.render(report, program: entry.program))
            print("verdict: \(report.verdict.signature) (recorded: \(entry.recordedSignature ?? "none"))")
            if !report.verdict.isPass { print(report.verdict.description) }
        } catch {
            print("\(file): \(error)")
            throw ExitCode(ExitStatus.badInput)
        }
    }
}

/// `lockstep merge DIR… -o OUT`
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Union corpora into one, keeping the smallest program for each failure signature.",
        discussion: """
            Entries that record `pass` are all kept (each is its own regression); for every other signature \
            the entry with the fewest calls (then the shortest text) wins. Unreadable entries are reported \
            and skipped; nothing in the inputs is changed.

            Example:
              lockstep merge corpora/findings ci-artifacts/shard-*/findings -o corpora/merged
            """
    )

    @ArgumentParser.Argument(help: "Corpus directories or entries.") var inputs: [String]
    @Option(name: .shortAndLong, help: "Output corpus directory.") var output: String

    func validate() throws {
        guard !inputs.isEmpty else { throw ValidationError("give corpora to merge, e.g. lockstep merge a b -o merged") }
    }

    func run() throws {
        let result = Corpus.merge(inputs, into: output)
        for problem in result.problems { print(problem) }
        print("merge: \(result.written) entries in \(output) (\(result.failureSignatures) failure signatures, \(result.passing) passing), "
              + "\(result.problems.count) skipped")
        if !result.problems.isEmpty { throw ExitCode(ExitStatus.badInput) }
    }
}
