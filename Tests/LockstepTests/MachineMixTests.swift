import Foundation
@testable import Lockstep
import LockstepPrograms
import Testing

/// The default campaign draws each program's machine from `MachineMix.standard`, from the program's
/// own seed: reproducible, every machine boots, and every machine gets its share.
@Suite struct MachineMixTests {
    @Test func everyMachineOfTheStandardMixBootsAndRunsAGeneratedProgram() throws {
        for entry in MachineMix.standard.entries {
            let program = ProgramGenerator(GenerationOptions(machine: entry.machine)).generate(seed: 7)
            #expect(program.machine == entry.machine)
            _ = try Execution.boot(program)
            let report = Execution().run(program)
            #expect(report.steps.count > 0, "\(entry.machine)")
        }
    }

    @Test func theSameProgramSeedDrawsTheSameMachineAndProgram() {
        let generator = ProgramGenerator(GenerationOptions(mix: .standard))
        for seed: UInt64 in [1, 2, 99, 0xDEAD_BEEF] {
            #expect(ProgramText.encode(generator.generate(seed: seed)) == ProgramText.encode(generator.generate(seed: seed)))
        }
    }

    @Test func eachMachineGetsItsWeightedShareOfProgramSeeds() {
        let mix = MachineMix.standard
        var counts = [Int](repeating: 0, count: mix.entries.count)
        let draws = 16_000
        for index in 0..<draws { counts[mix.index(forProgramSeed: SeededRandom.derive(1, UInt64(index)))] += 1 }
        for (entry, count) in zip(mix.entries, counts) {
            let expected = Double(draws * entry.weight) / Double(mix.totalWeight)
            #expect(abs(Double(count) - expected) < expected * 0.15, "\(entry.machine): \(count) draws, expected about \(Int(expected))")
        }
        // The generated program carries the machine its seed drew.
        let generator = ProgramGenerator(GenerationOptions(mix: mix))
        for index in 0..<50 {
            let seed = SeededRandom.derive(3, UInt64(index))
            #expect(generator.generate(seed: seed).machine == mix.entries[mix.index(forProgramSeed: seed)].machine)
        }
    }

    @Test func aSingleMachineMixIsThatMachine() {
        let x64 = MachineLine(architecture: "x64")
        #expect(MachineMix.only(x64).index(forProgramSeed: 12345) == 0)
        #expect(MachineMix.only(x64).description == "machine x64")
        #expect(ProgramGenerator(GenerationOptions(machine: x64)).generate(seed: 5).machine == x64)
    }

    @Test func theMutatorTakesThePageSizeFromTheProgramsOwnMachine() {
        // Alpha's 8 KiB pages: a reference offset moved to "a page" is 0x2000 there, never 0x1000.
        let program = ProgramGenerator(GenerationOptions(machine: MachineLine(architecture: "alpha"))).generate(seed: 11)
        var sawPageOffset = false
        for round in 0..<400 {
            var random = SeededRandom(seed: UInt64(round))
            let mutated = ProgramMutator().mutate(program, random: &random)
            for call in mutated.calls {
                for argument in call.arguments {
                    if case .expression(.reference(_, let offset)) = argument {
                        #expect(offset != 0x1000 || program.calls.contains { $0.arguments.contains(argument) }, "a 4 KiB page on Alpha")
                        if offset == 0x2000 { sawPageOffset = true }
                    }
                }
            }
        }
        #expect(sawPageOffset)
    }
}
