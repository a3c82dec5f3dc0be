import Foundation
import Lockstep
import LockstepPrograms

/// The end of a campaign for people and for machines: the summary lines and `--json`.
struct FuzzSummary {
    let result: SessionResult
    let checkDeterminism: Bool

    private var stats: CampaignStats { result.stats }
    private var rate: Int { Int(Double(stats.calls) / max(stats.elapsed, 0.001)) }

    func print() {
        Swift.print("summary: \(stats.programs) programs, \(stats.calls) calls in \(String(format: "%.1f", stats.elapsed)) s "
                    + "(\(rate) checked calls/s), \(stats.findings) failing runs, "
                    + "\(result.findings.count) signatures, \(stats.flaky) flaky, \(stats.features) features, \(stats.corpus) programs kept, "
                    + "\(stats.unpredictedSteps) steps the model did not predict, \(stats.unknownObservations) state fields it could not know"
                    + (checkDeterminism ? ", \(stats.nondeterministic) nondeterministic" : "")
                    + (stats.firstFinding.map { ", first finding after \(String(format: "%.2f", $0.seconds)) s (\($0.programs) programs)" } ?? "")
                    + (stats.stopReason.map { "; stopped: \($0)" } ?? ""))
        for finding in result.findings.sorted(by: { $0.signature < $1.signature }) where !finding.isMisuse {
            Swift.print(line(finding))
        }
        let misuse = result.findings.filter(\.isMisuse).sorted(by: { $0.signature < $1.signature })
        if !misuse.isEmpty {
            Swift.print("misuse: \(misuse.count) signatures of corruption that a free or checked build lets a program cause and Driver Verifier "
                        + "stops (not engine findings; they do not fail the campaign):")
            for finding in misuse { Swift.print(line(finding)) }
        }
        if stats.unrunnable > 0 {
            Swift.print("unrunnable: \(stats.unrunnable) programs could not be set up (a generator or mutator fault of Lockstep's, not an "
                        + "engine finding; please report it): first \(stats.firstUnrunnable ?? "?")")
        }
        for line in edgeLines() { Swift.print(line) }
    }

    /// `  3x  SIGNATURE  PATH`, or the reason it is not on disk.
    private func line(_ finding: SessionResult.Saved) -> String {
        "  \(finding.count)x  \(finding.signature)  " + (finding.path ?? "(not written: \(finding.problem ?? "the campaign process died before writing it"))")
    }

    func edgeLines(limit: Int = 10) -> [String] { stats.edgeSummary(limit: limit) }

    /// `stop_reason`: why the campaign ended (`StopReason`: `seconds`, `runs`, `first-finding`,
    /// `restart-limit`, `died-outside-program`, or the stop signal's name).
    func writeJSON(to path: String, seed: UInt64, jobs: Int, shard: String, machine: String) throws {
        let stopReason = stats.stopReason.map(\.description) ?? "unknown"
        let entries = result.findings.sorted(by: { $0.signature < $1.signature }).map { finding in
            "    {\"signature\": \(quoted(finding.signature.description)), \"count\": \(finding.count), \"path\": \(quoted(finding.path ?? ""))}"
        }
        let text = """
            {
              "seed": \(seed), "jobs": \(jobs), "shard": \(quoted(shard)), "machine": \(quoted(machine)), "stop_reason": \(quoted(stopReason)),
              "programs": \(stats.programs), "calls": \(stats.calls), "seconds": \(String(format: "%.3f", stats.elapsed)),
              "checked_calls_per_second": \(rate),
              "failing_runs": \(stats.findings), "flaky": \(stats.flaky), "nondeterministic": \(stats.nondeterministic), "unrunnable": \(stats.unrunnable),
              "unpredicted_steps": \(stats.unpredictedSteps), "unknown_state_fields": \(stats.unknownObservations), "features": \(stats.features), "corpus": \(stats.corpus),
              "first_finding_seconds": \(stats.firstFinding.map { String(format: "%.3f", $0.seconds) } ?? "null"),
              "first_finding_programs": \(stats.firstFinding.map { "\($0.programs)" } ?? "null"),
              "edges_total": \(ParameterEdges.all.count), "edges_reached": \(ParameterEdges.all.count - stats.unreachedEdges.count),
              "unreached_edges": [\(stats.unreachedEdges.map { quoted($0) }.joined(separator: ", "))],
              "signatures": [
            \(entries.joined(separator: ",\n"))
              ]
            }

            """
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// The JUnit report: one failed case per signature, with the saved (minimized) program and the
    /// commands that reproduce it; a single passing case when the campaign found nothing.
    func junit(seed: UInt64, shard: String, machine: String) -> JUnitReport {
        let suite = "lockstep fuzz --seed \(seed)" + (shard == "1/1" ? "" : " --shard \(shard)")
        var cases: [JUnitReport.Case] = result.findings.sorted(by: { $0.signature < $1.signature }).map { finding in
            var details = "\(finding.count) failing run(s) with this signature.\n"
            if let path = finding.path {
                if let entry = try? Corpus.read(path) { details += "\n" + ProgramText.encode(entry.program) + "\n" }
                details += "reproduce: lockstep run \(path)\nshrink further: lockstep minimize \(path)\n"
                    + "keep as a regression: lockstep replay --add-to corpora/regressions \(path)\n"
            } else {
                details += "(not written: rerun with the same --seed and --findings to save it)\n"
            }
            if finding.isMisuse {
                return .init(name: finding.signature.description, className: "lockstep.fuzz",
                             status: .skipped(message: "driver misuse that Driver Verifier stops, not an engine finding: \(finding.path ?? "not written")"))
            }
            return .init(name: finding.signature.description, className: "lockstep.fuzz", status: .failed(message: finding.signature.description, details: details))
        }
        if !cases.contains(where: { if case .failed = $0.status { true } else { false } }) {
            cases.append(.init(name: "\(stats.programs) programs, no finding", className: "lockstep.fuzz", seconds: stats.elapsed, status: .passed))
        }
        return JUnitReport(suite: suite, cases: cases, seconds: stats.elapsed,
                           properties: [("seed", "\(seed)"), ("shard", shard), ("machine", machine), ("programs", "\(stats.programs)"),
                                        ("calls", "\(stats.calls)"), ("features", "\(stats.features)")])
    }

    /// A JSON string literal (signatures and paths can hold quotes or backslashes).
    private func quoted(_ text: String) -> String {
        String(data: try! JSONEncoder().encode(text), encoding: .utf8)!
    }
}
