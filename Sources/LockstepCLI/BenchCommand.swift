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

    func validate() throws {
        guard iterations > 0 else { throw ValidationError("--iterations must be positive") }
        guard ["x86", "x64", "alpha"].contains(architecture) else { throw ValidationError("--architecture must be x86, x64 or alpha") }
    }

    func run() throws {
        if shrink { return runShrinkBenchmark() }
        if all { return try ThroughputReport(iterations: iterations, architecture: architecture, seconds: seconds, corpus: corpus).run() }
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
        print("checked/bare:  \(String(format: "%.3f", seconds(bare) / seconds(checked) * Double(checkedCalls) / Double(max(1, bareCalls))))")
    }

    /// The deliberate engine slips whose findings the shrink benchmark shrinks (not the trap, which
    /// would end the process).
    static var shrinkableSlips: [(name: String, prepare: @Sendable (Kernel) -> Void)] {
        EngineMutation.byName.filter { $0.mutation != .sizeOfMdlTrapsOnZeroLength }.map { slip in
            (name: slip.name, prepare: { @Sendable (kernel: Kernel) in kernel.mutations = slip.mutation })
        }
    }

    private func runShrinkBenchmark() {
        let rows = ShrinkBenchmark.run(slips: Self.shrinkableSlips)
        print("slip | signature | calls before → after | faults before → after | candidate runs | ms | 1-minimal")
        for row in rows {
            print("\(row.slip) | \(row.signature) | \(row.callsBefore) → \(row.callsAfter) | \(row.faultsBefore) → \(row.faultsAfter) | "
                  + "\(row.runs) | \(String(format: "%.1f", row.seconds * 1000)) | \(row.oneMinimal ? "yes" : "NO")")
        }
        let lengths = rows.map(\.callsAfter).sorted()
        print("\(rows.count) findings; median shrink time \(String(format: "%.1f", ShrinkBenchmark.medianSeconds(rows) * 1000)) ms; "
              + "median length \(lengths.isEmpty ? 0 : lengths[lengths.count / 2]) calls (from median \(rows.map(\.callsBefore).sorted()[safe: rows.count / 2] ?? 0)); "
              + "1-minimal \(rows.filter(\.oneMinimal).count) of \(rows.count)")
    }

    private func seconds(_ d: Duration) -> Double { d.inSeconds }
    private func format(_ d: Duration) -> String { String(format: "%.3f", seconds(d)) }
    private func rate(_ calls: Int, _ d: Duration) -> Int { Int(Double(calls) / max(seconds(d), 1e-9)) }
}

extension Array {
    fileprivate subscript(safe index: Int) -> Element? { indices.contains(index) ? self[index] : nil }
}
