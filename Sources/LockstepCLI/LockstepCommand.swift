import ArgumentParser
import Lockstep
import LockstepPrograms

/// `lockstep`: run driver call programs on the simulated NT memory manager and its reference model in lockstep.
@main
struct LockstepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockstep",
        abstract: "Run NT MDL call programs on the engine and the reference model in lockstep.",
        subcommands: [FuzzCommand.self, RunCommand.self, BenchCommand.self]
    )
}

/// Exit statuses shared by every subcommand.
enum ExitStatus {
    static let failingVerdict: Int32 = 1
    static let badInput: Int32 = 2
}
