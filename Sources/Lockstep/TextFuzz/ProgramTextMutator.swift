import Foundation
import LockstepPrograms

/// Mutates program texts the way hostile users write them, not the way the generator does: numbers at
/// the limits of their types and of the page arithmetic, tokens swapped between arguments and lines,
/// lines duplicated, dropped and reordered, machine lines rewritten, unicode, blanks and huge tokens.
/// Mutant `index` of seed `seed` is a pure function of (seed, index, the base texts), so any mutant
/// can be rebuilt from its index alone (the text fuzz supervisor saves traps that way).
package struct ProgramTextMutator: Sendable {
    /// The texts mutants start from (corpus entries and library programs), in a fixed order.
    package let bases: [String]

    /// Mutations per mutant: 1 to this many.
    static let maxMutations = 3
    /// The longest token a mutation makes: big enough to reach slow paths, small enough for 50,000 runs.
    static let hugeTokenBytes = 64 << 10

    package init(bases: [String]) {
        precondition(!bases.isEmpty, "a mutator needs at least one base text")
        self.bases = bases
    }

    /// Mutant `index` of `seed`.
    package func mutant(seed: UInt64, index: UInt64) -> String {
        var random = SeededRandom(seed: SeededRandom.derive(seed, index))
        var lines = bases[random.below(bases.count)].split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for _ in 0...random.below(Self.maxMutations) { mutate(&lines, &random) }
        return lines.joined(separator: "\n")
    }

    /// Numbers that sit at the limits of a ULONG, a ULONG_PTR, a page and the address spaces.
    static let limits: [UInt64] = [
        0, 1, 2, 0xFFF, 0x1000, 0x1001, 0x1FFF, 0x2000, 0xFFFF, 0x1_0000,
        0x7FFF_FFFF, 0x8000_0000, 0xFFFF_F000, 0xFFFF_FFFE, 0xFFFF_FFFF, 0x1_0000_0000, 0x1_0000_0001,
        0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_F000, 0xFFFF_FFFF_FFFF_FFFF,
        0xFFFF_F800_0000_0000, 0x800_0000_0000, 0x7FFF_FFFE_FFFF, 0xF000_0000, 0xC000_0000, 0xA_0000,
    ]

    /// Machine lines at the edges of what boots (and a few that do not).
    static let machineLines = [
        "machine x86", "machine x64", "machine alpha", "machine x64 ram=3G", "machine x86 ram=4G nonpaged=64M paged=256M",
        "machine x64 mode=free", "machine x86 mode=checked", "machine alpha mode=free version=4.0",
        "machine x64 ptes=1 locklimit=1", "machine x86 ptes=1048576", "machine x64 version=10.0 strictmap=1",
        "machine x86 mode=free version=4.0sp3", "machine x64 mode=free policystops=0", "machine x86 nonpaged=16K ram=256K",
        "machine x64 pcibuses=0 devices=none", "machine x64 device=PCIBus.0:0x0+0xFFFFFFFFFFFFFFFF@0xFFFFFFFFFFFFF000",
    ]

    static let oddText = ["é", "𝔁", "\u{200D}", "\u{0301}", "\u{202E}", "\u{FEFF}", "\t", "\r", " ", "#", "=", ",", "(", ")", "+", "-",
                          "0x", "none", "true", "b0", "m0", "v0", "p0", "i0", "a0", "\u{0}", "🙂"]

    private func mutate(_ lines: inout [String], _ random: inout SeededRandom) {
        let target = lines.isEmpty ? 0 : random.below(lines.count)
        // Numbers weigh most: they keep the text parsable and reach the arithmetic.
        switch random.below(18) {
        case 15, 16, 17:  // an argument that names another result, at an offset at a limit
            let names = Set(lines.compactMap { $0.split(separator: "=").first.map { $0.trimmingCharacters(in: .whitespaces) } }
                .filter { $0.count >= 2 && $0.first!.isLetter && $0.dropFirst().allSatisfy(\.isNumber) }).sorted()
            guard !names.isEmpty else { return }
            replaceToken(in: &lines, target, &random, numbersOnly: false) { old, random in
                let name = random.pick(names)
                if random.chance(50) || old.first?.isNumber != true { return name }
                return name + random.pick(["+", "-"]) + "0x" + String(random.pick(Self.limits), radix: 16, uppercase: true)
            }
        case 0, 1, 2, 12, 13, 14:   // a number at a limit, or next to the number it replaces
            replaceToken(in: &lines, target, &random, numbersOnly: true) { old, random in
                // A token the program syntax does not read as a number (`0xZZ`) moves from 0.
                let value = ProgramNumber.parse(old) ?? 0
                let choice = random.below(4) == 0 ? random.pick([value &+ 1, value &- 1, value << 32, value | 0xFFFF_FFFF_0000_0000]) : random.pick(Self.limits)
                return random.chance(80) ? "0x" + String(choice, radix: 16, uppercase: true) : String(choice)
            }
        case 3:         // a token from elsewhere in the program (a result name, a symbol, a number)
            let tokens = lines.flatMap { tokenRanges($0).map { String($0.text) } }
            guard !tokens.isEmpty else { return }
            let replacement = random.pick(tokens)
            replaceToken(in: &lines, target, &random, numbersOnly: false) { _, _ in replacement }
        case 4:         // duplicate a line
            guard !lines.isEmpty else { return }
            lines.insert(lines[target], at: random.below(lines.count + 1))
        case 5:         // drop a line
            guard !lines.isEmpty else { return }
            lines.remove(at: target)
        case 6:         // move a line, or swap two
            guard lines.count > 1 else { return }
            let other = random.below(lines.count)
            if random.chance(50) { lines.swapAt(target, other) } else { lines.insert(lines.remove(at: target), at: other) }
        case 7:         // another machine line
            if let machine = lines.firstIndex(where: { $0.hasPrefix("machine") }) { lines[machine] = random.pick(Self.machineLines) }
        case 8:         // unicode or punctuation inserted
            guard !lines.isEmpty else { return }
            insert(random.pick(Self.oddText), into: &lines[target], &random)
        case 9:         // blanks: a few inside, or many at the end of a line
            guard !lines.isEmpty else { return }
            if random.chance(50) { insert(String(repeating: random.pick([" ", "\t"]), count: 1 + random.below(8)), into: &lines[target], &random) }
            else { lines[target] += String(repeating: " ", count: random.pick([1, 100, 4096, 1 << 16])) }
        case 10:        // a huge token
            let unit = random.pick(["A", "0", "F", "b0", "0x1", "=", ","])
            let huge = String(repeating: unit, count: Self.hugeTokenBytes / unit.utf8.count)
            replaceToken(in: &lines, target, &random, numbersOnly: false) { _, _ in huge }
        default:        // (11) a line from another base text
            let other = bases[random.below(bases.count)].split(separator: "\n").map(String.init)
            guard !other.isEmpty else { return }
            lines.insert(random.pick(other), at: random.below(lines.count + 1))
        }
    }

    /// Replaces one token of line `index` (or, when it has none, of the first line that has one).
    private func replaceToken(in lines: inout [String], _ index: Int, _ random: inout SeededRandom, numbersOnly: Bool,
                              _ make: (Substring, inout SeededRandom) -> String) {
        guard !lines.isEmpty else { return }
        for offset in 0..<lines.count {
            let line = lines[(index + offset) % lines.count]
            let tokens = tokenRanges(line).filter { !numbersOnly || $0.text.first?.isNumber == true }
            guard !tokens.isEmpty else { continue }
            let token = random.pick(tokens)
            var changed = line
            changed.replaceSubrange(token.range, with: make(token.text, &random))
            lines[(index + offset) % lines.count] = changed
            return
        }
    }

    private func insert(_ text: String, into line: inout String, _ random: inout SeededRandom) {
        let position = line.index(line.startIndex, offsetBy: random.below(line.count + 1))
        line.insert(contentsOf: text, at: position)
    }
}

/// Maximal runs of ASCII letters, digits and underscores: names, symbols and numbers.
func tokenRanges(_ line: String) -> [(range: Range<String.Index>, text: Substring)] {
    var tokens: [(range: Range<String.Index>, text: Substring)] = []
    var start: String.Index?
    var index = line.startIndex
    while index < line.endIndex {
        let c = line[index]
        let isWord = c.isASCII && (c.isLetter || c.isNumber || c == "_")
        if isWord, start == nil { start = index }
        if !isWord, let first = start {
            tokens.append((first..<index, line[first..<index]))
            start = nil
        }
        index = line.index(after: index)
    }
    if let first = start { tokens.append((first..<line.endIndex, line[first...])) }
    return tokens
}
