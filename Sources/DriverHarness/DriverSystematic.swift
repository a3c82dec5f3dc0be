import LockstepPrograms
import MemoryManager

/// Systematic fault injection for a driver program: run it once to count the resource decisions the
/// driver's own code takes, then once per decision with exactly that one failed (`fault <kind> nth=<k>`
/// added to the plan), like Driver Verifier's systematic low-resources simulation.
public enum DriverSystematicFaults {
    /// One run: the fault point failed (nil for the baseline), the program that ran and what it found.
    public struct Variant: Sendable {
        /// The fault line added (nil: the baseline).
        public let fault: FaultLine?
        /// The program that ran (the original plus the fault line).
        public let program: Program
        /// What the run found.
        public let report: DriverReport
    }

    /// The fault lines of every point the baseline passed, in kind order then ordinal order.
    public static func faultPoints(of baseline: DriverReport) -> [FaultLine] {
        baseline.decisions.flatMap { decision in
            (1...decision.count).map { FaultLine(kind: decision.kind.rawValue, settings: [Setting("nth", "\($0)")]) }
        }
    }

    /// The program with one more fault line.
    public static func variant(_ program: Program, failing fault: FaultLine) -> Program {
        var result = program
        result.faults.append(fault)
        return result
    }

    /// The baseline and one run per fault point.
    public static func run(_ program: Program, runner: DriverRunner) throws(DriverRunner.SetupError) -> [Variant] {
        let baseline = try runner.run(program)
        var variants = [Variant(fault: nil, program: program, report: baseline)]
        for fault in faultPoints(of: baseline) {
            let failing = variant(program, failing: fault)
            variants.append(Variant(fault: fault, program: failing, report: try runner.run(failing)))
        }
        return variants
    }
}
