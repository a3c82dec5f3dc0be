import ArgumentParser
import DriverHarness
import ExampleDrivers
import Foundation
import Lockstep
import LockstepPrograms

/// The drivers `lockstep fuzz --driver NAME` can run: the examples, then your own. To add one, write a
/// class conforming to `Driver` (see Examples/ExampleDrivers/CopyDriver.swift), put its target in the
/// `lockstep` product's dependencies in Package.swift, and append an entry here, e.g.
/// `.init(name: "mydriver", summary: "what it does") { MyDriver() }`.
let registeredDrivers = DriverRegistry(ExampleDrivers.registry.entries + [])

extension FuzzCommand {
    /// `lockstep fuzz --driver NAME`: a campaign against a registered driver (`--driver list` lists them).
    func runDriver(_ name: String) throws {
        if name == "list" {
            for entry in registeredDrivers.entries { print("\(entry.name)\t\(entry.summary)") }
            return
        }
        guard let entry = registeredDrivers.entry(named: name) else {
            throw ValidationError("--driver: no driver named '\(name)'; registered: \(registeredDrivers.names.joined(separator: ", "))")
        }
        // Driver campaigns run one job in this process; say so rather than ignore an option.
        let unsupported = [(campaign.jobs != 1, "--jobs"), (campaign.shard != .whole, "--shard"), (json != nil, "--json"), (campaign.corpus != nil, "--corpus"),
                           (campaign.checkDeterminism, "--check-determinism"), (campaign.stopAtFirstFinding, "--stop-at-first-finding"),
                           (campaign.seededBug.arguments != [], "--seeded-bug")].filter(\.0).map(\.1)
        if !unsupported.isEmpty {
            throw ValidationError("\(unsupported.joined(separator: ", ")) cannot be used with --driver (a driver campaign is one job, in this process); "
                                  + "it takes --seed, --runs, --seconds, --machine, --findings, --junit, --quiet")
        }
        let (seed, seconds, runs, findings, quiet) = (campaign.seed, campaign.seconds, campaign.runs, campaign.findings, campaign.quiet)
        var options = DriverCampaignOptions()
        options.seed = seed
        options.seconds = seconds
        options.runs = runs
        // One directory per driver: two drivers can fail on the same program text, and entries are named by it.
        options.findingsDirectory = "\(findings)/drivers/\(name)"
        // A driver campaign runs on one machine: the default mix means the default machine.
        options.generation.machine = campaign.machine.line
        let budget = runs.map { "\($0) programs" } ?? "\(Int(seconds)) s"
        if !quiet { print("lockstep fuzz --driver \(name): seed \(seed), \(budget), \(options.generation.machine)") }
        StopSignal.install()
        options.shouldStop = { StopSignal.pending != nil }
        let tty = isatty(STDOUT_FILENO) != 0
        let (stats, found) = DriverCampaign(driver: entry, options: options).run { stats in
            guard !quiet else { return }
            let line = "  \(Int(stats.elapsed)) s  programs \(stats.programs)  runs \(stats.runs)  requests/s "
                + "\(Int(Double(stats.requests) / max(stats.elapsed, 0.001)))  findings \(stats.failingRuns) (\(stats.signatures.count) signatures)"
            if tty { FileHandle.standardOutput.write(Data(("\r" + line).utf8)) } else { print(line) }
        }
        if tty && !quiet { print("") }
        print("summary: \(stats.programs) programs, \(stats.runs) runs, \(stats.requests) requests, \(stats.calls) calls in "
              + "\(String(format: "%.1f", stats.elapsed)) s (\(Int(Double(stats.requests) / max(stats.elapsed, 0.001))) requests/s), "
              + "\(stats.failingRuns) failing runs, \(stats.signatures.count) signatures")
        for item in found {
            print("  \(stats.signatures[item.signature] ?? 0)x  \(item.signature)  \(item.path ?? "(not written)")")
            print("      \(item.finding.description.replacingOccurrences(of: "\n", with: "\n      "))")
        }
        if let junit {
            var cases: [JUnitReport.Case] = found.map { item in
                let program = item.shrunk?.program ?? item.program
                let details = item.finding.description + "\n\n" + ProgramText.encode(program)
                    + (item.path.map { "\nreproduce: lockstep replay \($0)\n" } ?? "")
                return .init(name: item.signature.description, className: "lockstep.fuzz.driver.\(name)", status: .failed(message: item.signature.description, details: details))
            }
            if cases.isEmpty { cases.append(.init(name: "\(stats.programs) programs, no finding", className: "lockstep.fuzz.driver.\(name)", seconds: stats.elapsed, status: .passed)) }
            do {
                try JUnitReport(suite: "lockstep fuzz --driver \(name) --seed \(seed)", cases: cases, seconds: stats.elapsed,
                                properties: [("seed", "\(seed)"), ("driver", name), ("programs", "\(stats.programs)")]).write(to: junit)
            } catch {
                throw CommandFailure.badInput("--junit \(junit): cannot write the report (\(error.localizedDescription))")
            }
        }
        if let signal = StopSignal.pending {
            print("stopped by \(StopSignal.name(signal)): every finding above is on disk")
            throw ExitCode(128 + signal)
        }
        if !found.isEmpty { throw ExitCode(ExitStatus.failingVerdict) }
    }
}

/// A driver entry's verdict now (`lockstep replay`): the program re-run against the registered driver
/// its header names, as the finding's signature and a description; or why it cannot be run (one line).
func driverVerdict(of file: String, _ entry: Corpus.Entry, driver name: String) -> Result<(signature: FailureSignature, details: String), ReplayProblem> {
    guard let driver = registeredDrivers.entry(named: name) else {
        return .failure(ReplayProblem(description: "\(file): names driver '\(name)', which is not registered; registered: \(registeredDrivers.names.joined(separator: ", "))"))
    }
    do {
        let report = try DriverRunner(driver).run(entry.program)
        return .success((report.signature, report.finding.map { "\n" + $0.description } ?? ""))
    } catch {
        return .failure(ReplayProblem(description: "\(file): \(error)"))
    }
}

/// Why an entry could not be replayed.
struct ReplayProblem: Error, CustomStringConvertible {
    let description: String
}
