import Foundation
import Lockstep

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
                    + "\(stats.unpredictedSteps) steps the model did not predict"
                    + (checkDeterminism ? ", \(stats.nondeterministic) nondeterministic" : ""))
        for finding in result.findings.sorted(by: { $0.signature < $1.signature }) {
            Swift.print("  \(finding.count)x  \(finding.signature)  \(finding.path ?? "(not written)")")
        }
    }

    func writeJSON(to path: String, seed: UInt64, jobs: Int, shard: String, machine: String) throws {
        let entries = result.findings.sorted(by: { $0.signature < $1.signature }).map { finding in
            "    {\"signature\": \(quoted(finding.signature)), \"count\": \(finding.count), \"path\": \(quoted(finding.path ?? ""))}"
        }
        let text = """
            {
              "seed": \(seed), "jobs": \(jobs), "shard": \(quoted(shard)), "machine": \(quoted(machine)),
              "programs": \(stats.programs), "calls": \(stats.calls), "seconds": \(String(format: "%.3f", stats.elapsed)),
              "checked_calls_per_second": \(rate),
              "failing_runs": \(stats.findings), "flaky": \(stats.flaky), "nondeterministic": \(stats.nondeterministic),
              "unpredicted_steps": \(stats.unpredictedSteps), "features": \(stats.features), "corpus": \(stats.corpus),
              "signatures": [
            \(entries.joined(separator: ",\n"))
              ]
            }

            """
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    /// A JSON string literal (signatures and paths can hold quotes or backslashes).
    private func quoted(_ text: String) -> String {
        String(data: try! JSONEncoder().encode(text), encoding: .utf8)!
    }
}
