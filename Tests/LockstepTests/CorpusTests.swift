import Foundation
import Lockstep
import LockstepPrograms
import Testing

@Suite struct CorpusTests {
    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-corpus-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static let program = try! ProgramText.parse("# lockstep 1\nmachine x86\nb0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)\nx1 = MmIsAddressValid(b0)\n")

    @Test func entriesRoundTripThroughGzipWithTheirRecordedVerdict() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = try Corpus.write(Self.program, header: CorpusHeader(notes: ["from: a test"]), to: directory)
        #expect(path.hasSuffix("/\(Corpus.name(of: Self.program)).gz"))
        #expect(Gzip.isCompressed([UInt8](FileManager.default.contents(atPath: path)!)))
        let entry = try Corpus.read(path)
        #expect(entry.program == Self.program)
        #expect(entry.recordedSignature == .pass)
        // Writing the same program again is a no-op; no temporary files are left behind.
        #expect(try Corpus.write(Self.program, header: CorpusHeader(), to: directory) == path)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == [path.split(separator: "/").last.map(String.init)!])
    }

    @Test func aNameClashWithDifferentContentIsRefusedNotOverwritten() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let other = try ProgramText.parse("# lockstep 1\nmachine x64\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\n")
        let path = "\(directory)/\(Corpus.name(of: Self.program)).gz"
        try Data(Gzip.compress(Array(ProgramText.encode(other).utf8))).write(to: URL(fileURLWithPath: path))
        #expect(throws: Corpus.EntryError.self) { try Corpus.write(Self.program, header: CorpusHeader(), to: directory) }
        #expect(try Corpus.read(path).program == other)
    }

    @Test func aCorruptEntryIsNamedAndTheOthersStillRead() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let good = try Corpus.write(Self.program, header: CorpusHeader(), to: directory)
        var bytes = [UInt8](FileManager.default.contents(atPath: good)!)
        bytes[bytes.count / 2] ^= 0xFF
        let bad = "\(directory)/0000000000000000.gz"
        try Data(bytes).write(to: URL(fileURLWithPath: bad))
        var errors: [String] = []
        var read = 0
        for file in Corpus.files(directory) {
            do { _ = try Corpus.read(file); read += 1 } catch { errors.append(error.description) }
        }
        #expect(read == 1)
        #expect(errors.count == 1 && errors[0].hasPrefix(bad) && errors[0].contains("corrupt gzip"))
    }

    /// Every kind of bad entry is one line naming the file and the reason; the good entry still reads.
    @Test func badEntriesAreEachNamedWithTheirReason() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-bad-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        _ = try Corpus.write(Self.program, header: CorpusHeader(), to: directory)
        let whole = Gzip.compress(Array(ProgramText.encode(Self.program).utf8))
        let cases: [(name: String, bytes: [UInt8], reason: String)] = [
            ("truncated.gz", Array(whole.prefix(whole.count / 2)), "corrupt gzip"),
            // 17 MiB of zeros compresses to a few KiB: the decompression cap (16 MiB) stops it.
            ("bomb.gz", Gzip.compress([UInt8](repeating: 0, count: 17 << 20)), "larger than"),
            ("future.gz", Gzip.compress(Array("# lockstep 2\nmachine x86\n".utf8)), "unsupported format version"),
            ("garbage.txt", Array("this is not a program\n".utf8), "expected '# lockstep 1'"),
        ]
        for bad in cases { try Data(bad.bytes).write(to: URL(fileURLWithPath: "\(directory)/\(bad.name)")) }
        var errors: [String] = []
        var read = 0
        for file in Corpus.files(directory) {
            do { _ = try Corpus.read(file); read += 1 } catch { errors.append(error.description) }
        }
        #expect(read == 1)
        for bad in cases {
            #expect(errors.contains { $0.hasPrefix("\(directory)/\(bad.name)") && $0.contains(bad.reason) && !$0.contains("\n") }, "\(bad.name): \(errors)")
        }
    }

    static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("corpora/regressions").path

    /// The checked-in regression corpus keeps every recorded verdict (what CI's replay step checks),
    /// one test case per entry so that a failure names it.
    @Test(arguments: Corpus.entries(CorpusTests.regressions))
    func regressionEntryReplaysAsRecorded(_ entry: Corpus.Entry) throws {
        try entry.replay()
    }

    @Test func theRegressionCorpusIsAllThere() {
        #expect(Corpus.entries(Self.regressions).count >= 18)
    }

    /// A verdict that changed is a failure that shows the entry, both verdicts and the command.
    @Test func aChangedVerdictFailsWithTheProgramAndTheCommand() throws {
        let entry = try #require(Corpus.entries(Self.regressions).first)
        let changed = Corpus.Entry(path: entry.path, program: entry.program, header: CorpusHeader(verdict: FailureSignature(.divergence(routine: "MmProbeAndLockPages", engine: "null", expected: "value"))))
        let failure = try #require(throws: LockstepFailure.self) { try changed.replay() }
        #expect(failure.description.contains("recorded divergence:MmProbeAndLockPages:null/value, now pass"))
        #expect(failure.description.contains("lockstep run \(entry.path)"))
        #expect(failure.description.contains(ProgramText.encode(entry.program)))
    }

    /// The test-framework helper: a bounded campaign that the correct engine passes, and that rejects
    /// a machine it cannot parse with what to type instead.
    @Test func checkPassesOnTheEngineAndExplainsABadMachine() throws {
        try Campaign.check(runs: 150, seed: 7)
        let failure = try #require(throws: LockstepFailure.self) { try Campaign.check(runs: 1, machine: "vax") }
        #expect(failure.description.contains("use x86, x64, alpha"))
    }
}

@Suite struct CorpusToolsTests {
    private func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-merge-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Merge keeps the smallest program per failure signature and every passing entry.
    @Test func mergeKeepsTheSmallestPerSignature() throws {
        let a = try temporaryDirectory(), b = try temporaryDirectory(), out = try temporaryDirectory()
        defer { for d in [a, b, out] { try? FileManager.default.removeItem(atPath: d) } }
        let small = try ProgramText.parse("# lockstep 1\nmachine x86\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\n")
        let large = try ProgramText.parse("# lockstep 1\nmachine x86\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\nx1 = MmSizeOfMdl(va=0x0, length=0x2)\n")
        let passing = try ProgramText.parse("# lockstep 1\nmachine x64\nx0 = MmSizeOfMdl(va=0x1, length=0x1)\n")
        try Corpus.write(large, header: CorpusHeader(verdict: try FailureSignature(parsing: "divergence:MmSizeOfMdl:value/value")), to: a)
        try Corpus.write(small, header: CorpusHeader(verdict: try FailureSignature(parsing: "divergence:MmSizeOfMdl:value/value")), to: b)
        try Corpus.write(passing, header: CorpusHeader(), to: a)
        let result = Corpus.merge([a, b], into: out)
        #expect(result.written == 2 && result.failureSignatures == 1 && result.passing == 1 && result.problems.isEmpty)
        let programs = try Corpus.files(out).map { try Corpus.read($0).program }
        #expect(programs.contains(small) && programs.contains(passing) && !programs.contains(large))
    }

    /// `show --swift-test` output: a test that parses the entry back and asserts its recorded verdict.
    @Test func regressionTestSourceEmbedsTheProgramAndItsVerdict() throws {
        let program = try ProgramText.parse("# lockstep 1\nmachine x86\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\n")
        let source = RegressionTestSource.make(Corpus.Entry(path: "x", program: program, header: CorpusHeader()))
        #expect(source.contains("@Test func replays_\(Corpus.name(of: program))() throws {"))
        #expect(source.contains("let report = Execution().run(program)"))
        #expect(source.contains("#expect(report.verdict.signature.description == \"pass\""))
        #expect(source.contains("        x0 = MmSizeOfMdl(va=0x0, length=0x1)"))
    }
}
