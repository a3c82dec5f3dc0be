@testable import Lockstep
import LockstepPrograms
import Testing

/// Every program the framework builds in memory is one the parser would accept: after generation (on
/// every machine of the mix), after mutation, and after each of the shrinker's moves.
@Suite struct ProgramValidityTests {
    @Test func generatedMutatedAndShrunkProgramsAreValid() throws {
        let generator = ProgramGenerator(GenerationOptions(mix: .standard))
        let mutator = ProgramMutator()
        for index in 0..<1500 {
            let seed = SeededRandom.derive(11, UInt64(index))
            let program = generator.generate(seed: seed)
            try program.validate()
            var random = SeededRandom(seed: seed)
            var mutated = program
            for _ in 0..<3 {
                mutated = mutator.mutate(mutated, random: &random)
                try mutated.validate()
            }
            // The shrinker's moves: a dependency closure, removal of one call with its dependents,
            // simpler numbers and machines, dense renaming.
            guard !program.calls.isEmpty else { continue }
            let last = program.calls.count - 1
            let closure = program.dependencyClosure(of: last)
            try program.removingCalls(program.calls.indices.filter { !closure.contains($0) }).validate()
            try program.removingCalls([random.below(program.calls.count)]).validate()
            for candidate in Shrinker.simplifications(of: program).prefix(5) + Shrinker.machineSimplifications(of: program) {
                try candidate.validate()
            }
            try program.removingCalls([0]).renamedDensely().validate()
        }
    }
}
