import ArgumentParser
import Foundation
import Lockstep
import LockstepPrograms

/// `lockstep fuzz`
struct FuzzCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Generate driver call programs and run them in lockstep until the time or run budget is spent.",
        discussion: """
            Every program is generated from the campaign seed and its run number, so --seed reproduces a \
            campaign on any machine. Failures are re-run once (a failure that does not reproduce is reported \
            as flaky) and each new signature's first program is written to the findings directory.

            Examples:
              swift run -c release lockstep fuzz
              lockstep fuzz --seed 7 --runs 2000 --machine x64
              lockstep fuzz --seconds 300 --check-determinism

            Exit status: 0 no finding, 1 findings, 2 usage error.
            """
    )

    @Option(help: "Campaign seed.") var seed: UInt64 = 1
    @Option(help: "Stop after this many seconds (default 60).") var seconds: Double = 60
    @Option(help: "Stop after this many programs instead of a time budget.") var runs: Int?
    @Option(help: "Architecture (x86, x64, alpha) or a whole machine line in quotes.") var machine = "x86"
    @Option(help: "Directory for findings.") var findings = "corpora/findings"
    @Option(help: "Percent of programs that end in a deliberate misuse.") var misuse = 30
    @Option(name: .customLong("check-every"), help: "Check invariants every N steps.") var checkEvery = 1
    @Option(help: "Worker threads.") var jobs = 1
    @Option(help: "Run only shard i of n of the run space (e.g. 2/4), for a CI matrix.") var shard = "1/1"
    @Option(help: "Write the final statistics as JSON to this file.") var json: String?
    @Option(help: "Instead of a campaign: run this program once per fault point it passes, each time failing that point.")
    var systematic: String?
    @Option(help: "Fuzz a registered driver under test instead of the engine ('list' lists them); uses --seed, --runs, --seconds, --machine, --findings, --systematic, --quiet. See docs/DRIVER_HARNESS.md.")
    var driver: String?
    @Flag(help: "Run every program twice and compare a digest of all outcomes.") var checkDeterminism = false
    @Flag(name: .shortAndLong, help: "Print only the summary.") var quiet = false

    func validate() throws {
        guard seconds > 0 else { throw ValidationError("--seconds must be positive, e.g. --seconds 60") }
        if let runs, runs <= 0 { throw ValidationError("--runs must be positive, e.g. --runs 1000") }
        guard (0...100).contains(misuse) else { throw ValidationError("--misuse is a percentage from 0 to 100") }
        guard checkEvery >= 1 else { throw ValidationError("--check-every must be 1 or more") }
        guard (1...64).contains(jobs) else { throw ValidationError("--jobs must be between 1 and 64") }
        _ = try shardParts()
        _ = try machineLine()
    }

    /// `--systematic FILE`: every fault point of one program, failed in turn.
    private func runSystematic(_ path: String) throws {
        let program: Program
        do { program = try ProgramFiles.load(path) } catch {
            print(error.description)
            throw ExitCode(ExitStatus.badInput)
        }
        let variants: [SystematicFaults.Variant]
        do { variants = try SystematicFaults.run(program, runner: LockstepRunner(checkEvery: checkEvery)) } catch {
            print("\(path): \(error)")
            throw ExitCode(ExitStatus.badInput)
        }
        var failures = 0
        for variant in variants {
            let label = variant.fault?.description ?? "baseline (no fault)"
            let result = variant.verdict.isPass ? "pass" : "FAIL \(variant.verdict.signature)"
            if !quiet || !variant.verdict.isPass { print("\(label): \(result)") }
            if !variant.verdict.isPass {
                failures += 1
                if !quiet { print("  " + variant.verdict.description.replacingOccurrences(of: "\n", with: "\n  ")) }
            }
        }
        print("systematic: \(variants.count - 1) fault points, \(variants.count) runs, \(failures) failing")
        if failures > 0 { throw ExitCode(1) }
    }

    private func shardParts() throws -> (Int, Int) {
        let parts = shard.split(separator: "/").compactMap { Int($0) }
        guard parts.count == 2, parts[1] >= 1, (1...parts[1]).contains(parts[0]) else {
            throw ValidationError("--shard takes i/n with 1 <= i <= n, e.g. --shard 2/4")
        }
        return (parts[0], parts[1])
    }

    private func machineLine() throws -> MachineLine {
        let text = machine.hasPrefix("machine ") ? machine : "machine \(machine)"
        do {
            let program = try ProgramText.parse("# lockstep 1\n\(text)\n")
            _ = try LockstepRunner.makeKernel(for: program)
            return program.machine
        } catch {
            throw ValidationError("--machine: \(error); use x86, x64, alpha or e.g. \"x64 mode=free ram=64M\"")
        }
    }

    func run() throws {
        if let driver { return try runDriver(driver) }
        if let systematic { return try runSystematic(systematic) }
        var options = CampaignOptions()
        options.seed = seed
        options.seconds = seconds
        options.runs = runs
        options.generation = GenerationOptions(machine: try machineLine(), misusePercent: misuse)
        options.findingsDirectory = findings
        options.checkDeterminism = checkDeterminism
        options.checkEvery = checkEvery
        options.jobs = jobs
        let (shardIndex, shardCount) = try shardParts()
        options.shard = (shardIndex, shardCount)
        let quiet = self.quiet, runs = self.runs, seconds = self.seconds
        let campaign = Campaign(options)
        let traps = campaign.recoverTraps()
        for path in traps { print("trap: an earlier campaign died while running the program now saved as \(path)") }
        let tty = isatty(STDOUT_FILENO) != 0
        let budget = runs.map { "\($0) runs" } ?? "\(Int(seconds)) s"
        if !quiet { print("lockstep fuzz: seed \(seed), \(budget), \(options.generation.machine)") }
        let (stats, found) = campaign.run { stats, final in
            guard !quiet, !final else { return }
            let line = "  \(Int(stats.elapsed)) s  programs \(stats.programs)  checked calls/s \(Int(Double(stats.calls) / max(stats.elapsed, 0.001)))"
                + "  findings \(stats.findings) (\(stats.signatures.count) signatures)  features \(stats.features)"
                + (runs == nil ? "  remaining \(max(0, Int(seconds - stats.elapsed))) s" : "")
            if tty { FileHandle.standardOutput.write(Data(("\r" + line).utf8)) } else { print(line) }
        }
        if tty && !quiet { print("") }
        print("summary: \(stats.programs) programs, \(stats.calls) calls in \(String(format: "%.1f", stats.elapsed)) s "
              + "(\(Int(Double(stats.calls) / max(stats.elapsed, 0.001))) checked calls/s), \(stats.findings) failing runs, "
              + "\(stats.signatures.count) signatures, \(stats.flaky) flaky, \(stats.features) features, \(stats.corpus) programs kept, "
              + "\(stats.unpredictedSteps) steps the model did not predict"
              + (checkDeterminism ? ", \(stats.nondeterministic) nondeterministic" : ""))
        for signature in stats.signatures.keys.sorted() {
            let path = found.first { $0.signature == signature }?.path ?? "(not written)"
            print("  \(stats.signatures[signature]!)x  \(signature)  \(path)")
        }
        if let json {
            let entries = stats.signatures.keys.sorted().map { signature in
                "    {\"signature\": \"\(signature)\", \"count\": \(stats.signatures[signature]!), \"path\": \"\(found.first { $0.signature == signature }?.path ?? "")\"}"
            }
            let text = """
                {
                  "seed": \(seed), "jobs": \(jobs), "shard": "\(shard)", "machine": "\(options.generation.machine)",
                  "programs": \(stats.programs), "calls": \(stats.calls), "seconds": \(String(format: "%.3f", stats.elapsed)),
                  "checked_calls_per_second": \(Int(Double(stats.calls) / max(stats.elapsed, 0.001))),
                  "failing_runs": \(stats.findings), "flaky": \(stats.flaky), "nondeterministic": \(stats.nondeterministic),
                  "unpredicted_steps": \(stats.unpredictedSteps), "features": \(stats.features), "corpus": \(stats.corpus),
                  "signatures": [
                \(entries.joined(separator: ",\n"))
                  ]
                }

                """
            try Data(text.utf8).write(to: URL(fileURLWithPath: json), options: .atomic)
        }
        if !found.isEmpty || !traps.isEmpty { throw ExitCode(1) }
    }
}
