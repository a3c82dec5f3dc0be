import LockstepPrograms
import MemoryManager

/// A byte string as a lockstep run: how coverage-guided fuzzers that mutate bytes (libFuzzer,
/// ClusterFuzzLite, OSS-Fuzz) drive Lockstep. The bytes are the generator's decisions
/// (`ProgramGenerator.generate(choices:)`), so every byte string is a valid program.
public enum ByteInput {
    /// The program `bytes` decode to on the default machine.
    public static func program(_ bytes: [UInt8], machine: MachineLine = MachineLine()) -> Program {
        ProgramGenerator(GenerationOptions(machine: machine)).generate(choices: bytes)
    }

    /// Decodes and runs `bytes` in lockstep; the report of the run (a setup error counts as a pass).
    public static func run(_ bytes: [UInt8], machine: MachineLine = MachineLine(),
                           prepareKernel: (@Sendable (Kernel) -> Void)? = nil) -> (program: Program, report: RunReport) {
        let program = program(bytes, machine: machine)
        guard let kernel = try? LockstepRunner.makeKernel(for: program),
              let oracle = try? ReferenceOracle.make(for: program) else { return (program, RunReport(steps: [], verdict: .pass)) }
        prepareKernel?(kernel)
        let report = (try? LockstepRunner().run(program, oracle: oracle, kernel: kernel)) ?? RunReport(steps: [], verdict: .pass)
        return (program, report)
    }
}
