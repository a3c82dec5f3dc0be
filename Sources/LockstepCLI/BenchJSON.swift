import Foundation

/// `lockstep bench --json FILE`: the figures the command prints, as one JSON object whose `mode` says
/// which of them (`mix`, `all` or `shrink`). Keys are snake_case like `lockstep fuzz --json`'s; rates
/// are the whole numbers the table prints, times and ratios keep their full precision.
enum BenchJSON {
    /// `lockstep bench`: the 7-call mix, bare and checked.
    struct Mix: Encodable {
        let mode = "mix"
        let architecture: String
        let iterations: Int
        let invariantsOnly: Bool
        let bareCalls: Int
        let bareSeconds: Double
        let bareCallsPerSecond: Int
        let checkedCalls: Int
        let checkedSeconds: Double
        let checkedCallsPerSecond: Int
        let verdict: String
        /// Time per bare call over time per checked call (the table's `checked/bare`).
        let checkedPerBare: Double
    }

    /// `lockstep bench --all`: every row of the throughput table.
    struct All: Encodable {
        let mode = "all"
        let cores: Int
        let architecture: String
        let iterations: Int
        let campaignSeconds: Double
        let bareCallsPerSecond: Int
        let checkedCallsPerSecond: Int
        let campaignOneJob: Campaign
        let campaignTwoJobs: Campaign
        let shrink: ShrinkSummary
        /// Null when the corpus holds no readable engine entry.
        let corpusReplay: Nullable<Replay>
        let checkedPerBare: Double
        let campaignOneJobPerBare: Double
        let twoJobsPerOneJob: Double
    }

    struct Campaign: Encodable {
        let checkedCallsPerSecond: Int
        let programsPerSecond: Int
    }

    struct ShrinkSummary: Encodable {
        let findings: Int
        let medianMs: Double
        let oneMinimal: Int
    }

    struct Replay: Encodable {
        let corpus: String
        let entries: Int
        let entriesPerSecond: Int
    }

    /// `lockstep bench --shrink`: one row per shrunk finding, and the summary line.
    struct Shrink: Encodable {
        struct Row: Encodable {
            let slip: String
            let signature: String
            let callsBefore: Int
            let callsAfter: Int
            let faultsBefore: Int
            let faultsAfter: Int
            let runs: Int
            let ms: Double
            let oneMinimal: Bool
        }
        let mode = "shrink"
        let rows: [Row]
        let findings: Int
        let medianMs: Double
        let medianCallsAfter: Int
        let medianCallsBefore: Int
        let oneMinimal: Int
    }

    /// A value written as JSON null when absent (a synthesized Encodable leaves the key out instead).
    struct Nullable<Value: Encodable>: Encodable {
        let value: Value?
        init(_ value: Value?) { self.value = value }
        func encode(to encoder: Encoder) throws {
            var container = encoder.singleValueContainer()
            if let value { try container.encode(value) } else { try container.encodeNil() }
        }
    }

    struct WriteError: Error, CustomStringConvertible {
        let description: String
    }

    /// Writes `figures` to `path` (replacing it), or throws one line naming the path and the reason.
    static func write(_ figures: some Encodable, to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        do {
            try (encoder.encode(figures) + Data("\n".utf8)).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw WriteError(description: "--json \(path): cannot write the figures (\(error.localizedDescription))")
        }
    }
}
