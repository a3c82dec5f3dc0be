import ArgumentParser
import DriverHarness
import Foundation
import Lockstep
import LockstepPrograms

/// `lockstep systematic FILE [--driver NAME]`
struct SystematicCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "systematic",
        abstract: "Run one program once per fault point it passes, each time failing that point.",
        discussion: """
            Like Driver Verifier's systematic low-resources simulation and syzkaller's fail_nth: the \
            program runs once to count the resource decisions it passes (pool, PTEs, frames, paging), then \
            once more per decision with exactly that one failed (`fault KIND nth=K` added to its plan). \
            With --driver NAME the program runs against that registered driver under test, and the fault \
            points are the ones the driver's own code takes.

            Examples:
              lockstep systematic repro.txt
              lockstep systematic --driver leak-mdl-on-partner-failure corpora/findings/drivers/leak-mdl-on-partner-failure/0123456789abcdef.gz

            Exit status: 0 every variant passes, 1 a variant fails, 2 the program cannot be read or set up.
            """
    )

    @ArgumentParser.Argument(help: "The program (a text file or a corpus entry).") var file: String
    @Option(help: "Run against this registered driver under test instead of the engine alone.") var driver: String?
    @Option(name: .customLong("check-every"), help: "Check invariants every N steps (engine runs).") var checkEvery = 1
    @Flag(name: .shortAndLong, help: "Print only failing variants and the summary.") var quiet = false
    @OptionGroup var seededBug: SeededBugOption

    init() {}

    /// The command as `lockstep fuzz --systematic FILE` spells it (the old spelling).
    init(file: String, driver: String?, checkEvery: Int, quiet: Bool, seededBug: SeededBugOption) {
        self.file = file
        self.driver = driver
        self.checkEvery = checkEvery
        self.quiet = quiet
        self.seededBug = seededBug
    }

    func validate() throws {
        guard checkEvery >= 1 else { throw ValidationError("--check-every must be 1 or more") }
    }

    func run() throws {
        let program: Program
        do { program = try ProgramFiles.load(file) } catch {
            throw CommandFailure.badInput(error.description)
        }
        if let driver { return try runAgainstDriver(program, driver) }
        var execution = seededBug.execution
        execution.checkEvery = checkEvery
        let variants = SystematicFaults.run(program, execution: execution)
        if case .unrunnable(let reason) = variants.first?.verdict {
            throw CommandFailure.badInput("\(file): \(reason)")
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
        if failures > 0 { throw ExitCode(ExitStatus.failingVerdict) }
    }

    /// The program against a registered driver, every fault point the driver's code takes failed in turn.
    private func runAgainstDriver(_ program: Program, _ name: String) throws {
        guard let entry = registeredDrivers.entry(named: name) else {
            throw ValidationError("--driver: no driver named '\(name)'; registered: \(registeredDrivers.names.joined(separator: ", "))")
        }
        let variants: [DriverSystematicFaults.Variant]
        do { variants = try DriverSystematicFaults.run(program, runner: DriverRunner(entry, recordTrace: !quiet)) } catch {
            throw CommandFailure.badInput("\(file): \(error)")
        }
        let failing = variants.filter { $0.report.finding != nil }
        for variant in variants where !quiet || variant.report.finding != nil {
            print("\(variant.fault?.description ?? "baseline (no added fault)"): \(variant.report.signature)")
            if variant.fault == nil { variant.report.trace.forEach { print("  " + $0) } }
            if let finding = variant.report.finding { print("  " + finding.description.replacingOccurrences(of: "\n", with: "\n  ")) }
        }
        print("systematic: \(variants.count - 1) fault points, \(variants.count) runs, \(failing.count) failing")
        if !failing.isEmpty { throw ExitCode(ExitStatus.failingVerdict) }
    }
}
