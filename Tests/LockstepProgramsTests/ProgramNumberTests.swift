import LockstepPrograms
import Testing

/// The one number syntax of program text (`ProgramNumber`), form by form.
@Suite struct ProgramNumberTests {
    @Test(arguments: [
        ("0", 0), ("4096", 4096), ("007", 7), ("0x1000", 0x1000), ("0X1000", 0x1000), ("0xfF", 0xFF), ("0x0", 0),
        ("18446744073709551615", UInt64.max), ("0xFFFFFFFFFFFFFFFF", UInt64.max),
    ] as [(String, UInt64)])
    func acceptedForms(text: String, value: UInt64) {
        #expect(ProgramNumber.parse(text) == value)
    }

    @Test(arguments: [
        "", "+5", "-1", " 5", "5 ", "0x", "0X", "x10", "1_000", "16K", "1e3", "ten", "0b101", "0o17",
        "18446744073709551616", "0x10000000000000000", "0xG", "٣",
    ])
    func rejectedForms(text: String) {
        #expect(ProgramNumber.parse(text) == nil, "'\(text)'")
    }

    /// Kept from the parser this rule came from (Swift's radix parser takes a sign): pinned so that a
    /// change is a decision, not an accident.
    @Test func aSignAfterTheHexPrefixIsTodaysQuirk() {
        #expect(ProgramNumber.parse("0x+10") == 0x10)
        #expect(ProgramNumber.parse("0x-0") == 0)
        #expect(ProgramNumber.parse("0x-1") == nil)
    }

    @Test(arguments: [
        ("512", 512), ("0x200", 0x200), ("0X200", 0x200), ("256K", 256 << 10), ("16M", 16 << 20), ("1G", 1 << 30), ("0K", 0),
        ("17179869183G", 17_179_869_183 << 30),
    ] as [(String, UInt64)])
    func acceptedSizes(text: String, value: UInt64) {
        #expect(ProgramNumber.parseSize(text) == value)
    }

    @Test(arguments: ["", "K", "16m", "16k", "+16M", "0x10M", "0X10K", "16MB", "1T", "17179869184G", "ram", "1.5G"])
    func rejectedSizes(text: String) {
        #expect(ProgramNumber.parseSize(text) == nil, "'\(text)'")
    }

    /// Arguments and expression offsets read numbers the same way.
    @Test func theParserReadsArgumentsAndOffsetsThroughIt() throws {
        let program = try ProgramText.parse("# lockstep 1\nmachine x86\nb0 = AllocateUserBuffer(size=0X2000, protect=ReadWrite)\nx1 = MmIsAddressValid(b0+4096)\n")
        #expect(program.calls[0].arguments[0] == .expression(.literal(0x2000)))
        #expect(program.calls[1].arguments[0] == .expression(.reference("b0", offset: 0x1000)))
        #expect(throws: ProgramParseError.self) { try ProgramText.parse("# lockstep 1\nmachine x86\nb0 = AllocateUserBuffer(size=+4096, protect=ReadWrite)\n") }
        #expect(LockstepPrograms.Expression(parsing: "b0+1_0") == nil)
    }
}
