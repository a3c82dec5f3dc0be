import LockstepPrograms

/// Turns a corpus entry into a Swift Testing test that replays it and asserts its verdict, so a finding
/// becomes a regression test in one paste.
package enum RegressionTestSource {
    package static func make(_ entry: Corpus.Entry) -> String {
        let signature = entry.recordedSignature
        let name = "replays_" + Corpus.name(of: entry.program)
        let text = ProgramText.encode(entry.program)
            .split(separator: "\n", omittingEmptySubsequences: false)
            .map { $0.isEmpty ? "" : "        " + $0 }
            .joined(separator: "\n")
        return """
            import Lockstep
            import LockstepPrograms
            import Testing

            /// Replays corpus entry \(Corpus.name(of: entry.program)) (recorded verdict: \(signature)).
            @Test func \(name)() throws {
                let program = try ProgramText.parse(#\"\"\"
            \(text)
                    \"\"\"#)
                let report = Execution().run(program)
                #expect(report.verdict.signature.description == "\(signature)", "\\(report.verdict)")
            }

            """
    }
}
