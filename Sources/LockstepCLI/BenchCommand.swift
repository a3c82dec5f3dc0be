import ArgumentParser
import Foundation
import Lockstep
import LockstepPrograms
@_spi(Mutations) import MemoryManager

/// `lockstep bench`
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Print throughput figures: bare engine calls/s and checked (lockstep) calls/s.",
        discussion: """
            Build in release mode first; debug figures mean nothing.

            Examples:
              swift run -c release lockstep bench --iterations 20000
              swift run -c release lockstep bench --all     # every throughput figure, with ratios
              Benchmarks/throughput                         # --all plus the libFuzzer harness's execs/s

            --json FILE writes the figures it prints as one JSON object (for scripts; its `mode` is mix,
            all or shrink).
            """
    )

    @Option(help: "Iterations of the 7-call mix (allocate, lock, map, write, unmap, unlock, free).")
    var iterations = 20_000

    @Option(help: "Architecture of the machine: x86, x64 or alpha.")
    var architecture = "x86"

    @Flag(help: "Check invariants only (no reference model): the cost of the invariants alone.")
    var invariantsOnly = false

    @Flag(help: "Instead: shrink the findings of a fixed-seed campaign against each deliberate engine slip, timed.")
    var shrink = false

    @Flag(help: "Every throughput figure in one run: bare and checked calls/s, campaigns with 1 and 2 jobs (checked calls/s, programs/s), shrink median, corpus replay entries/s, and their ratios.")
    var all = false

    @Option(help: "With --all: seconds for each campaign.") var seconds: Double = 10

    @Option(help: "With --all: the corpus whose replay rate is measured.") var corpus = "corpora/regressions"

    @Option(help: "Write the figures it prints as JSON to this file, too.") var json: String?

    func validate() throws {
        guard iterations > 0 else { throw ValidationError("--iterations must be positive") }
        guard ["x86", "x64", "alpha"].contains(architecture) else { throw ValidationError("--architecture must be x86, x64 or alpha") }
    }

    func run() throws {
        if shrink { return try runShrinkBenchmark() }
        if all {
            let figures = try ThroughputReport(iterations: iterations, architecture: architecture, seconds: seconds, corpus: corpus).run()
            if let json { try BenchJSON.write(figures, to: json) }
            return
        }
        let program = Benchmarks.mixProgram(iterations: iterations, architecture: architecture)
        let clock = ContinuousClock()
        var bareCalls = 0
        let bare = try clock.measure { bareCalls = try Benchmarks.runBare(program) }
        print("bare engine:   \(bareCalls) calls in \(format(bare)) s = \(rate(bareCalls, bare)) calls/s")
        var checkedCalls = 0
        var verdict = Verdict.pass
        let checked = clock.measure {
            let report = Execution().run(program, oracle: invariantsOnly ? InvariantsOnlyOracle() : nil)
            checkedCalls = report.steps.count
            verdict = report.verdict
        }
        print("lockstep:      \(checkedCalls) calls in \(format(checked)) s = \(rate(checkedCalls, checked)) checked calls/s (verdict \(verdict.signature))")
        let checkedPerBare = seconds(bare) / seconds(checked) * Double(checkedCalls) / Double(max(1, bareCalls))
        print("checked/bare:  \(String(format: "%.3f", checkedPerBare))")
        if let json {
            try BenchJSON.write(BenchJSON.Mix(architecture: architecture, iterations: iterations, invariantsOnly: invariantsOnly,
                                              bareCalls: bareCalls, bareSeconds: seconds(bare), bareCallsPerSecond: rate(bareCalls, bare),
                                              checkedCalls: checkedCalls, checkedSeconds: seconds(checked),
                                              checkedCallsPerSecond: rate(checkedCalls, checked), verdict: verdict.signature.description,
                                              checkedPerBare: checkedPerBare), to: json)
        }
    }

    /// The deliberate engine slips whose findings the shrink benchmark shrinks (not the trap, which
    /// would end the process).
    static var shrinkableSlips: [(name: String, prepare: @Sendable (Kernel) -> Void)] {
        EngineMutation.byName.filter { $0.mutation != .sizeOfMdlTrapsOnZeroLength }.map { slip in
            (name: slip.name, prepare: { @Sendable (kernel: Kernel) in kernel.mutations = slip.mutation })
        }
    }

    private func runShrinkBenchmark() throws {
        let rows = ShrinkBenchmark.run(slips: Self.shrinkableSlips)
        print("slip | signature | calls before → after | faults before → after | candidate runs | ms | 1-minimal")
        for row in rows {
            print("\(row.slip) | \(row.signature) | \(row.callsBefore) → \(row.callsAfter) | \(row.faultsBefore) → \(row.faultsAfter) | "
                  + "\(row.runs) | \(String(format: "%.1f", row.seconds * 1000)) | \(row.oneMinimal ? "yes" : "NO")")
        }
        let lengths = rows.map(\.callsAfter).sorted()
        let medianAfter = lengths.isEmpty ? 0 : lengths[lengths.count / 2]
        let medianBefore = rows.map(\.callsBefore).sorted()[safe: rows.count / 2] ?? 0
        let medianMs = ShrinkBenchmark.medianSeconds(rows) * 1000
        let oneMinimal = rows.filter(\.oneMinimal).count
        print("\(rows.count) findings; median shrink time \(String(format: "%.1f", medianMs)) ms; "
              + "median length \(medianAfter) calls (from median \(medianBefore)); "
              + "1-minimal \(oneMinimal) of \(rows.count)")
        if let json {
            let jsonRows = rows.map { row in
                BenchJSON.Shrink.Row(slip: row.slip, signature: row.signature, callsBefore: row.callsBefore, callsAfter: row.callsAfter,
                                     faultsBefore: row.faultsBefore, faultsAfter: row.faultsAfter, runs: row.runs, ms: row.seconds * 1000,
                                     oneMinimal: row.oneMinimal)
            }
            try BenchJSON.write(BenchJSON.Shrink(rows: jsonRows, findings: rows.count, medianMs: medianMs, medianCallsAfter: medianAfter,
                                                 medianCallsBefore: medianBefore, oneMinimal: oneMinimal), to: json)
        }
    }

    private func seconds(_ d: Duration) -> Double { d.inSeconds }
    private func format(_ d: Duration) -> String { String(format: "%.3f", seconds(d)) }
    private func rate(_ calls: Int, _ d: Duration) -> Int { Int(Double(calls) / max(seconds(d), 1e-9)) }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
