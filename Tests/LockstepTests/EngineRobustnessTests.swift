import Lockstep
import LockstepPrograms
import MemoryManager
import Testing

/// No input, however wrong, may crash the host: random calls with boundary and garbage arguments on
/// every architecture and checking mode must end in NT outcomes only (a Swift trap kills this test run).
@Suite struct EngineRobustnessTests {
    /// A small deterministic generator (SplitMix64): no global RNG.
    struct SplitMix {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let interesting: [UInt64] = [0, 1, 0xFFF, 0x1000, 0x1001, 0x2000, 0xFFFF, 0x1_0000, 0x7FFE_FFFF, 0x7FFF_0000,
                                        0x8000_0000, 0x8100_0000, 0xC100_0000, 0xE100_0000, 0xF000_0000, 0xFFFF_F000,
                                        0xFFFF_FFFF, 0x1_0000_0000, 0xFFFF_FA80_0000_0000, .max]

    private func randomArgument(_ kind: ArgumentKind, names: [String], _ rng: inout SplitMix) -> Argument {
        switch kind {
        case .boolean: return .boolean(rng.below(2) == 0)
        case .bytes: return .bytes((0..<rng.below(40)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        case .handle, .address, .length, .number:
            let choice = rng.below(5)
            switch choice {
            case 0...1 where !names.isEmpty:
                let offsets: [Int64] = [0, 0, 0x10, 0x1000, -1, 0xFFF, 0x1001]
                return .expression(.reference(names[rng.below(names.count)], offset: offsets[rng.below(offsets.count)]))
            case 2: return .expression(.null)
            case 3: return .expression(.literal(rng.next()))
            default: return .expression(.literal(Self.interesting[rng.below(Self.interesting.count)] &+ UInt64(rng.below(3))))
            }
        default:
            let symbols = kind.symbols!
            return rng.below(8) == 0 ? .expression(.literal(UInt64(rng.below(40)))) : .symbol(symbols[rng.below(symbols.count)])
        }
    }

    @Test(arguments: Architecture.allCases)
    func randomCallsNeverTrapTheHost(_ architecture: Architecture) throws {
        var rng = SplitMix(state: 0x5EED_0000 &+ UInt64(Architecture.allCases.firstIndex(of: architecture)!))
        var outcomes = 0
        for mode in CheckingMode.allCases {
            for round in 0..<12 {
                let configuration = MachineConfiguration(architecture: architecture, checking: mode,
                                                         version: WindowsVersion.allCases[round % WindowsVersion.allCases.count])
                var adapter = EngineAdapter(kernel: try Kernel(configuration))
                var names: [String] = []
                for index in 0..<150 {
                    let routine = Routine.allCases[rng.below(Routine.allCases.count)]
                    let arguments = routine.signature.parameters.map { randomArgument($0.kind, names: names, &rng) }
                    let name = routine.signature.result.map { "\($0.prefix)\(index)" }
                    let outcome = adapter.perform(Call(name, routine, arguments))
                    if let name { names.append(name) }
                    outcomes += 1
                    if case .refused = outcome {
                        // Halted by the previous call's bug check: boot a fresh machine and go on.
                        adapter = EngineAdapter(kernel: try Kernel(configuration))
                        names = []
                    }
                }
            }
        }
        #expect(outcomes == 3 * 12 * 150)
    }
}
