import ArgumentParser
import Lockstep
import LockstepPrograms

/// `--machine`: `mix` (a machine per program, drawn from its seed) or one machine line, parsed and
/// booted once when the command line is parsed, so a bad line is a usage error naming the option.
enum MachineChoice: CustomStringConvertible, Equatable {
    case mix
    case one(MachineLine)

    /// Parses `mix`, an architecture (`x64`) or a whole machine line (`"x64 mode=free ram=64M"`, with or
    /// without the leading `machine`).
    static func parse(_ argument: String) throws -> MachineChoice {
        if argument == "mix" { return .mix }
        let text = argument.hasPrefix("machine ") ? argument : "machine \(argument)"
        let problem: String
        do {
            let program = try ProgramText.parse("# lockstep 1\n\(text)\n")
            _ = try Execution.boot(program)
            return .one(program.machine)
        } catch {
            problem = "\(error)"
        }
        throw ValidationError(problem + (problem.contains("; use ") ? "" : "; use mix, x86, x64, alpha or e.g. \"x64 mode=free ram=64M\""))
    }

    /// The machines programs are drawn onto.
    var mix: MachineMix {
        switch self {
        case .mix: .standard
        case .one(let machine): .only(machine)
        }
    }

    /// The one machine (the mix's first, its default, for `mix`).
    var line: MachineLine {
        switch self {
        case .mix: MachineMix.standard.entries[0].machine
        case .one(let machine): machine
        }
    }

    /// The argument again, for a child process.
    var description: String {
        switch self {
        case .mix: "mix"
        case .one(let machine): machine.description
        }
    }
}

/// `--shard i/n`: this machine's part of the run space.
struct ShardChoice: CustomStringConvertible, Equatable {
    let index: Int
    let count: Int

    static let whole = ShardChoice(index: 1, count: 1)

    static func parse(_ argument: String) throws -> ShardChoice {
        let parts = argument.split(separator: "/", omittingEmptySubsequences: false).map { Int($0) }
        guard parts.count == 2, let index = parts[0], let count = parts[1], count >= 1, (1...count).contains(index) else {
            throw ValidationError("takes i/n with 1 <= i <= n, e.g. --shard 2/4")
        }
        return ShardChoice(index: index, count: count)
    }

    var description: String { "\(index)/\(count)" }
}
