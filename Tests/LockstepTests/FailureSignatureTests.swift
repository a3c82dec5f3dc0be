import Foundation
import Lockstep
import LockstepPrograms
import Testing

/// Failure identity as a type: one text form per signature and per corpus header, read back by one
/// decoder that also reads the forms older entries carry.
struct FailureSignatureTests {
    static let texts = [
        "pass", "trap", "unrunnable",
        "divergence:MmMapLockedPages:null/value",
        "divergence:MmProbeAndLockPages:raised-0xc0000005/returned|bugcheck-0xc4-0x81",
        "bugcheck:MmUnlockPages:bugcheck-0x4e-0x7/returned",
        "invariant:no-dangling-frames:IoFreeMdl",
        "invariant:no-dangling-frames:start",
        "state:IoAllocateMdl:mdl.ByteOffset",
        "driver:copy:leaked-mdl@DriverUnload",
        "misuse:state:MmProbeAndLockPages:ByteCount",
        "flaky:trap",
        "flaky:divergence:MmSizeOfMdl:value/value",
    ]

    @Test(arguments: texts) func everyTextFormReadsBackToTheSameText(_ text: String) throws {
        let signature = try FailureSignature(parsing: text)
        #expect(signature.description == text)
        #expect(try FailureSignature(parsing: signature.description) == signature)
    }

    @Test func theFieldsAreWhatTheTextSays() throws {
        let misuse = try FailureSignature(parsing: "misuse:divergence:MmMapLockedPages:null/value")
        #expect(misuse.isMisuse && !misuse.isFlaky)
        #expect(misuse.what == .divergence(routine: "MmMapLockedPages", engine: "null", expected: "value"))
        #expect(misuse.unqualified.description == "divergence:MmMapLockedPages:null/value")
        let start = try FailureSignature(parsing: "invariant:mdl-header:start")
        #expect(start.what == .invariant("mdl-header", routine: nil))
        let driver = try FailureSignature(parsing: "driver:leak-mdl-on-partner-failure:leaked-mdl@DriverUnload")
        #expect(driver.driver == "leak-mdl-on-partner-failure")
        #expect(driver.what == .driver(name: "leak-mdl-on-partner-failure", rule: "leaked-mdl", phase: "DriverUnload"))
    }

    @Test(arguments: ["", "passed", "divergence:MmSizeOfMdl", "divergence:MmSizeOfMdl:value", "state::x", "driver:copy:no-phase",
                      "misuse:", "trap:extra", "invariant:a", "flaky:misuse:trap"])
    func malformedTextIsRefusedByName(_ text: String) {
        #expect(throws: FailureSignature.ParseError.self) { try FailureSignature(parsing: text) }
    }

    @Test func signaturesEncodeAsTheirTextInJSON() throws {
        var stats = CampaignStats()
        stats.signatures[try FailureSignature(parsing: "misuse:state:MmProbeAndLockPages:ByteCount")] = 2
        let json = String(decoding: try JSONEncoder().encode(stats), as: UTF8.self)
        #expect(json.contains("\"misuse:state:MmProbeAndLockPages:ByteCount\":2"))
        #expect(try JSONDecoder().decode(CampaignStats.self, from: Data(json.utf8)).signatures == stats.signatures)
    }

    // MARK: corpus headers

    static let program = "# lockstep 1\nmachine x86\nb1 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)\n"

    private func header(_ lines: String) throws -> CorpusHeader {
        try CorpusHeader(decoding: "# lockstep 1\n" + lines + "machine x86\n")
    }

    @Test func theCanonicalHeaderReadsBack() throws {
        let header = CorpusHeader(verdict: try FailureSignature(parsing: "misuse:state:MmProbeAndLockPages:ByteCount"),
                                  notes: ["found by: lockstep fuzz --seed 7 (run 12)"])
        #expect(header.verdict.description == "state:MmProbeAndLockPages:ByteCount" && header.qualifier == .misuse)
        #expect(header.lines == ["verdict-signature: state:MmProbeAndLockPages:ByteCount", "qualifier: misuse",
                                 "found by: lockstep fuzz --seed 7 (run 12)"])
        #expect(try self.header(header.lines.map { "# \($0)\n" }.joined()) == header)
    }

    @Test func oldHeadersCarryingTheQualifierInASecondSignatureLineStillRead() throws {
        let old = try header("# verdict-signature: state:MmProbeAndLockPages:ByteCount\n# signature: misuse:state:MmProbeAndLockPages:ByteCount\n# found by: x\n")
        #expect(old.verdict.description == "state:MmProbeAndLockPages:ByteCount")
        #expect(old.finding.description == "misuse:state:MmProbeAndLockPages:ByteCount")
        #expect(old.notes == ["found by: x"])
    }

    @Test func oldFlakyVerdictsReplayAsTheirPlainVerdict() throws {
        let old = try header("# verdict-signature: flaky:trap\n")
        #expect(old.verdict == .trap && old.qualifier == .flaky)
        #expect(old.lines.first == "verdict-signature: trap")
    }

    @Test func aDriverNamedOnlyInItsSignatureIsTheEntrysDriver() throws {
        let old = try header("# verdict-signature: driver:copy:leaked-mdl@DriverUnload\n")
        #expect(old.driver == "copy")
        #expect(old.lines.contains("driver: copy"))
        // A passing entry of a driver (e.g. added with --add-to after a fix) keeps its driver by the key.
        #expect(try header("# verdict-signature: pass\n# driver: copy\n").driver == "copy")
    }

    @Test func anEntryWithoutAVerdictLineRecordedPass() throws {
        #expect(try header("").verdict == .pass)
    }

    @Test func aHeaderWithAnUnreadableVerdictIsAnErrorNamingTheLine() {
        #expect(throws: CorpusHeader.DecodingError.self) { try header("# verdict-signature: sideways\n") }
        #expect(throws: CorpusHeader.DecodingError.self) { try header("# verdict-signature: pass\n# qualifier: maybe\n") }
    }

    @Test func corpusEntriesRoundTripTheirHeader() throws {
        let directory = NSTemporaryDirectory() + "lockstep-header-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let program = try ProgramText.parse(Self.program)
        let header = CorpusHeader(verdict: try FailureSignature(parsing: "driver:copy:leaked-mdl@DriverUnload"), notes: ["rule: r"])
        let path = try Corpus.write(program, header: header, to: directory)
        let entry = try Corpus.read(path)
        #expect(entry.header == header && entry.program == program)
        #expect(entry.recordedSignature.description == "driver:copy:leaked-mdl@DriverUnload" && entry.header.driver == "copy")
    }
}
