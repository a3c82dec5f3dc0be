import LockstepPrograms
@_spi(Mutations) import MemoryManager
import Testing
@testable import Lockstep

/// The libFuzzer entry point's decoder: every byte string is a well-formed program.
@Suite struct ByteInputTests {
    static func byteStrings(_ count: Int) -> [[UInt8]] {
        var random = SeededRandom(seed: 2026)
        return (0..<count).map { _ in (0..<random.below(600)).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
    }

    @Test(arguments: ["x86", "x64", "alpha"])
    func everyByteStringDecodesToAProgramThatParsesBackToItself(architecture: String) throws {
        let machine = MachineLine(architecture: architecture)
        var distinct = Set<String>()
        for bytes in Self.byteStrings(700) + [[], [0], [0xFF], [UInt8](repeating: 0xFF, count: 4096)] {
            let program = ByteInput.program(bytes, machine: machine)
            let text = ProgramText.encode(program)
            #expect(try ProgramText.parse(text) == program, "\(bytes)")
            #expect(ByteInput.program(bytes, machine: machine) == program)   // deterministic
            distinct.insert(text)
        }
        #expect(distinct.count > 650)   // the bytes decide: different strings, different programs
    }

    /// The bytes are decisions: the first choices of a program follow its first bytes (a byte-level
    /// mutation changes a nearby decision, which is what lets libFuzzer's coverage guide it).
    @Test func leadingBytesDecideTheFirstChoices() {
        var a = SeededRandom(choices: [7, 200, 1, 2, 3, 4, 5, 6, 7, 8])
        #expect(a.below(10) == 7 && a.below(100) == 0 && a.next() == 0x0807_0605_0403_0201)
        var b = SeededRandom(choices: [])
        var c = SeededRandom(choices: [])
        #expect(b.next() == c.next())   // past the end: SplitMix64 seeded from the bytes
    }

    /// A seeded engine bug is found through the byte entry point as through campaigns.
    @Test func aFailingVerdictComesBackFromTheByteEntryPoint() {
        let failing = Self.byteStrings(200).contains { bytes in
            !ByteInput.run(bytes, prepareKernel: { $0.mutations = .byteOffsetOffByOne }).report.verdict.isPass
        }
        #expect(failing)
    }
}
