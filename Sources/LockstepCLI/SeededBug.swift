import ArgumentParser
import Lockstep
@_spi(Mutations) import MemoryManager

/// `--seeded-bug NAME` (hidden): switches on one of the engine's deliberate test-only slips, so the
/// framework's own machinery (crash isolation, shrinking, CI) can be exercised end to end from the CLI.
struct SeededBugOption: ParsableArguments {
    @Option(name: .customLong("seeded-bug"), help: .hidden) var name: String?

    func validate() throws {
        guard let name else { return }
        guard EngineMutation.byName.contains(where: { $0.name == name }) else {
            throw ValidationError("--seeded-bug: unknown slip \(name); one of " + EngineMutation.byName.map(\.name).joined(separator: ", "))
        }
    }

    /// What to do to each fresh engine (nil without the option).
    var prepareKernel: (@Sendable (Kernel) -> Void)? {
        guard let name, let mutation = EngineMutation.byName.first(where: { $0.name == name })?.mutation else { return nil }
        return { $0.mutations = mutation }
    }

    /// How programs run with the option (the slip switched on in every fresh engine).
    var execution: Execution { Execution(prepareKernel: prepareKernel) }

    /// The option again, for a child process.
    var arguments: [String] { name.map { ["--seeded-bug", $0] } ?? [] }
}
