import ArgumentParser
import Foundation
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
              lockstep show --from-bytes .build-libfuzzer/artifacts/crash-… > repro.txt

            With --from-bytes, FILE is a libFuzzer input (crash file, corpus unit): the program its bytes \
            decode to is printed as program text, ready for `lockstep run`, `minimize` or a corpus.
            """
    )

    @ArgumentParser.Argument(help: "A corpus entry or program file.") var file: String
    @Flag(name: .customLong("swift-test"), help: "Print a Swift Testing @Test that replays the entry and asserts its verdict.")
    var swiftTest = false
    @Flag(name: .customLong("from-bytes"), help: "FILE is a libFuzzer input: print the program its bytes decode to.")
    var fromBytes = false

    func run() throws {
        if fromBytes {
            guard let data = FileManager.default.contents(atPath: file) else {
                throw CommandFailure.badInput("\(file): \(FileManager.default.fileExists(atPath: file) ? "cannot read the file" : "no such file")")
            }
            let text = ProgramText.encode(ByteInput.program([UInt8](data)))
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            print(lines[0] + "\n# decoded from libFuzzer input \(file) (\(data.count) bytes)\n" + lines.dropFirst().joined(separator: "\n"), terminator: "")
            return
        }
        let entry: Corpus.Entry
        do { entry = try Corpus.read(file) } catch {
            throw CommandFailure.badInput(error.description)
        }
        if swiftTest {
            print(RegressionTestSource.make(entry), terminator: "")
            return
        }
        print((try? ProgramFiles.readText(file)) ?? ProgramText.encode(entry.program))
        let report = Execution().run(entry.program)
        if case .unrunnable(let reason) = report.verdict {
            throw CommandFailure.badInput("\(file): \(reason)")
        }
        print(Trace.render(report, program: entry.program))
        print("verdict: \(report.verdict.signature) (recorded: \(entry.recordedSignature))")
        if !report.verdict.isPass { print(report.verdict.description) }
    }
}
