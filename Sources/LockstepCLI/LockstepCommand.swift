import ArgumentParser
import Foundation
import Lockstep
import LockstepPrograms

/// `lockstep`: run driver call programs on the simulated NT memory manager and its reference model in lockstep.
@main
struct LockstepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lockstep",
        abstract: "Run NT MDL call programs on the engine and the reference model in lockstep.",
        subcommands: [FuzzCommand.self, FuzzSessionCommand.self, SystematicCommand.self, RunCommand.self, MinimizeCommand.self, ReplayCommand.self, ShowCommand.self, MergeCommand.self,
                      BenchCommand.self, TextFuzzCommand.self]
    )

    /// Runs the command line; a usage error (bad flag, bad value) exits with status 2, as every
    /// subcommand documents, instead of ArgumentParser's 64.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch let failure as CommandFailure {
            // Every command's own errors end here: one line on standard error, then its status.
            FileHandle.standardError.write(Data((failure.message + "\n").utf8))
            Foundation.exit(failure.status)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
                Foundation.exit(ExitStatus.badInput)
            }
            exit(withError: error)
        }
    }
}

/// A command that cannot go on: `message` (one line, naming the file or option and the problem) goes to
/// standard error once, from `LockstepCommand.main`, and the process exits with `status`.
struct CommandFailure: Error {
    let message: String
    let status: Int32

    /// Bad input: a file that cannot be read or parsed, a program that cannot be set up, an unwritable
    /// report or directory (exit status 2).
    static func badInput(_ message: String) -> CommandFailure { CommandFailure(message: message, status: ExitStatus.badInput) }
}

/// Exit statuses shared by every subcommand.
enum ExitStatus {
    static let failingVerdict: Int32 = 1
    static let badInput: Int32 = 2
}
