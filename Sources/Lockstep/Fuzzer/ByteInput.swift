import LockstepPrograms
import MemoryManager

/// A byte string as a lockstep run: how coverage-guided fuzzers that mutate bytes (libFuzzer,
/// ClusterFuzzLite, OSS-Fuzz) drive Lockstep. The bytes are the generator's decisions
/// (`ProgramGenerator.generate(choices:)`), so every byte string is a valid program.
package enum ByteInput {
    /// The program `bytes` decode to on the default machine.
    package static func program(_ bytes: [UInt8], machine: MachineLine = MachineLine()) -> Program {
        ProgramGenerator(GenerationOptions(machine: machine)).generate(choices: bytes)
    }

    /// Decodes and runs `bytes` in lockstep (`Execution`; a machine that cannot be set up gives the
    /// verdict `unrunnable`).
    package static func run(_ bytes: [UInt8], machine: MachineLine = MachineLine(),
                           prepareKernel: (@Sendable (Kernel) -> Void)? = nil) -> (program: Program, report: RunReport) {
        let program = program(bytes, machine: machine)
        return (program, Execution(prepareKernel: prepareKernel).run(program))
    }
}
