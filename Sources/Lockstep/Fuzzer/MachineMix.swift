import LockstepPrograms

/// The machines a campaign's programs run on. A slip in code that only one architecture, build or
/// Windows version reaches (x64's 64-bit physical addresses, a free build's missing Verifier stop,
/// Windows 7's MmFreePagesFromMdl) is invisible to a campaign that runs on one machine, so the default
/// campaign draws each program's machine from this weighted list, from the program's own seed: the
/// machine line is part of the program text, so every finding replays on the machine that found it.
public struct MachineMix: Sendable, CustomStringConvertible {
    /// One machine of the mix and its weight.
    public struct Entry: Sendable {
        /// The machine line programs drawn onto this entry get.
        public let machine: MachineLine
        /// Relative share of the campaign's generated programs.
        public let weight: Int

        /// One machine of a mix, drawn for `weight` shares of the programs.
        public init(machine: MachineLine, weight: Int) {
            self.machine = machine
            self.weight = weight
        }
    }

    /// The machines with their weights, in order (a program's draw is an index into them).
    public let entries: [Entry]
    let totalWeight: Int

    /// A mix of these entries; each needs a positive weight, and there must be at least one.
    public init(_ entries: [Entry]) {
        precondition(!entries.isEmpty && entries.allSatisfy { $0.weight > 0 }, "a machine mix needs machines with positive weights")
        self.entries = entries
        totalWeight = entries.reduce(0) { $0 + $1.weight }
    }

    /// Every program on one machine.
    public static func only(_ machine: MachineLine) -> MachineMix { MachineMix([Entry(machine: machine, weight: 1)]) }

    /// The default campaign's machines. The default machine (x86, NT 5.1, Verifier) keeps the largest
    /// share; each other entry brings code paths it alone reaches: 64-bit addresses and PFN arrays (x64),
    /// 8 KiB pages (Alpha), the free and checked builds (what Verifier would have stopped runs on),
    /// every version with behaviour of its own (4.0's, Vista's and Windows 7's MmFreePagesFromMdl,
    /// 8's lookaside MDLs, 10's MmMapIoSpace checks), and a machine short of pool, PTEs and lockable
    /// pages, where resource exhaustion happens without a fault plan.
    public static let standard = MachineMix([
        Entry(machine: line("x86"), weight: 4),
        Entry(machine: line("x64"), weight: 2),
        Entry(machine: line("x86", ("mode", "free")), weight: 1),
        Entry(machine: line("x86", ("mode", "checked")), weight: 1),
        Entry(machine: line("x86", ("version", "4.0sp3"), ("mode", "free")), weight: 1),
        Entry(machine: line("x86", ("version", "6.0")), weight: 1),
        Entry(machine: line("x86", ("version", "6.1"), ("mode", "free")), weight: 1),
        Entry(machine: line("x64", ("version", "6.1")), weight: 1),
        Entry(machine: line("x64", ("version", "6.2"), ("mode", "free")), weight: 1),
        Entry(machine: line("x64", ("version", "10.0")), weight: 1),
        Entry(machine: line("alpha", ("version", "4.0")), weight: 1),
        Entry(machine: line("x86", ("ram", "1M"), ("nonpaged", "64K"), ("ptes", "48"), ("locklimit", "96")), weight: 1),
    ])

    private static func line(_ architecture: String, _ settings: (String, String)...) -> MachineLine {
        MachineLine(architecture: architecture, settings: settings.map { Setting($0.0, $0.1) })
    }

    /// The entry a program seed draws: independent of the generator's own draws (its own stream), so
    /// adding a machine to the mix does not change what the generator does on the others.
    public func index(forProgramSeed seed: UInt64) -> Int {
        guard entries.count > 1 else { return 0 }
        var random = SeededRandom(seed: seed ^ 0x6D61_6368_696E_6521)
        var roll = random.below(totalWeight)
        for (index, entry) in entries.enumerated() {
            if roll < entry.weight { return index }
            roll -= entry.weight
        }
        return entries.count - 1
    }

    /// The machine line when there is one machine; else a short note that it is a mix.
    public var description: String {
        entries.count == 1 ? entries[0].machine.description : "a mix of \(entries.count) machines (`lockstep fuzz --help` lists them)"
    }
}
