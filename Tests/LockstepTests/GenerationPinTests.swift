@testable import Lockstep
import LockstepPrograms
import Testing

/// Pins what the generator generates: a hash of the texts of seeds 1...500 per machine, and of 200 byte
/// strings decoded as choices. A refactoring of the generator must leave these unchanged (every seed's
/// program byte for byte the same, its random decisions drawn in the same order). A change that is meant
/// to change generation updates the hashes in the same commit and says why: corpora, findings and
/// `lockstep fuzz --seed` reproductions made before it then regenerate differently.
@Suite struct GenerationPinTests {
    /// FNV-1a over the UTF-8 of the texts, in order.
    static func hash(_ texts: some Sequence<String>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for text in texts { for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 } }
        return hash
    }

    static let pinned: [(String, GenerationOptions, UInt64)] = [
        ("machine x86", GenerationOptions(machine: MachineLine(architecture: "x86")), 0xAF78_21DB_3A5E_3271),
        ("machine x64", GenerationOptions(machine: MachineLine(architecture: "x64")), 0xEED9_E743_D703_A872),
        ("the standard mix", GenerationOptions(mix: .standard), 0xADA0_0753_1424_B861),
    ]

    @Test func generatedProgramTextsOfSeeds1To500AreUnchanged() {
        for (label, options, expected) in Self.pinned {
            let generator = ProgramGenerator(options)
            let hash = Self.hash((1...500 as ClosedRange<UInt64>).lazy.map { ProgramText.encode(generator.generate(seed: $0)) })
            #expect(hash == expected, "generation changed on \(label): hash 0x\(String(hash, radix: 16, uppercase: true))")
        }
    }

    @Test func programsDecodedFromByteChoicesAreUnchanged() {
        var random = SeededRandom(seed: 15)
        let strings = (0..<200).map { _ in (0..<random.below(500)).map { _ in UInt8(truncatingIfNeeded: random.next()) } }
        let generator = ProgramGenerator()
        let hash = Self.hash(strings.lazy.map { ProgramText.encode(generator.generate(choices: $0)) })
        #expect(hash == 0x6C49_2F7A_02D0_9032, "decoding byte choices changed: hash 0x\(String(hash, radix: 16, uppercase: true))")
    }
}
