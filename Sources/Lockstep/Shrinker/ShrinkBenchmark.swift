import LockstepPrograms
import MemoryManager

/// The shrink benchmark: for each deliberate engine slip, the first findings of a fixed-seed campaign
/// (unshrunk), each shrunk and timed. Printed by `lockstep bench --shrink`; recorded in BENCHMARKS.md.
package enum ShrinkBenchmark {
    /// One shrunk finding.
    package struct Row: Sendable {
        package let slip: String
        package let signature: String
        package let callsBefore: Int
        package let faultsBefore: Int
        package let callsAfter: Int
        package let faultsAfter: Int
        package let runs: Int
        package let seconds: Double
        package let oneMinimal: Bool
    }

    /// Runs `runs` programs from `seed` against each slip (with shrinking off), then shrinks every
    /// finding it made. `slips` are (name, what to do to a fresh engine).
    package static func run(slips: [(name: String, prepare: @Sendable (Kernel) -> Void)], seed: UInt64 = 1, runs: Int = 300,
                           maxShrinkRuns: Int = Limits.shrinkRuns) -> [Row] {
        var rows: [Row] = []
        let clock = ContinuousClock()
        for slip in slips {
            var options = CampaignOptions()
            options.seed = seed
            options.runs = runs
            options.shrinkRuns = 0
            options.prepareKernel = slip.prepare
            for finding in Campaign(options).run(progress: { _, _ in }).findings where !finding.flaky {
                var result: Shrinker.Result?
                let elapsed = clock.measure {
                    result = Shrinker(maxRuns: maxShrinkRuns, execution: Execution(prepareKernel: slip.prepare)).shrink(finding.program)
                }
                guard let result else { continue }
                rows.append(Row(slip: slip.name, signature: finding.signature.description, callsBefore: finding.program.calls.count,
                                faultsBefore: finding.program.faults.count, callsAfter: result.program.calls.count,
                                faultsAfter: result.program.faults.count, runs: result.runs,
                                seconds: elapsed.inSeconds,
                                oneMinimal: result.oneMinimal))
            }
        }
        return rows
    }

    /// The median of the rows' shrink times.
    package static func medianSeconds(_ rows: [Row]) -> Double {
        let times = rows.map(\.seconds).sorted()
        guard !times.isEmpty else { return 0 }
        return times.count % 2 == 1 ? times[times.count / 2] : (times[times.count / 2 - 1] + times[times.count / 2]) / 2
    }
}
