import ArgumentParser
import Lockstep

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
