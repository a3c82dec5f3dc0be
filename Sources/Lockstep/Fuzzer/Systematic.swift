import LockstepPrograms
import MemoryManager

/// Systematic fault injection: run a program once to count the resource decisions it passes, then once
/// more per decision with exactly that decision failed (`fault <kind> nth=<k>` added to its plan),
/// like Driver Verifier's systematic low-resources simulation and syzkaller's fail_nth.
public enum SystematicFaults {
    /// One variant: the fault point failed (nil for the baseline run) and its verdict.
    public struct Variant: Sendable {
        /// The fault line added to the program (nil: the baseline run, with the program's own plan only).
        public let fault: FaultLine?
        /// The program that ran: the original plus `fault`.
        public let program: Program
        /// Its verdict.
        public let verdict: Verdict
    }

    /// The baseline and one variant per fault point, in kind order then ordinal order. A program that
    /// cannot be set up gives its baseline only, with the verdict `unrunnable`.
    public static func run(_ program: Program, execution: Execution = Execution()) -> [Variant] {
        let kernel: Kernel
        do { kernel = try Execution.boot(program) } catch {
            return [Variant(fault: nil, program: program, verdict: .unrunnable(reason: error.message))]
        }
        let baseline = execution.run(program, kernel: kernel)
        var variants = [Variant(fault: nil, program: program, verdict: baseline.verdict)]
        for kind in ResourceKind.allCases {
            let points = kernel.faultDecisions(kind)
            guard points > 0 else { continue }
            for ordinal in 1...points {
                let fault = FaultLine(kind: kind.rawValue, settings: [Setting("nth", "\(ordinal)")])
                var variant = program
                variant.faults.append(fault)
                let report = execution.run(variant)
                variants.append(Variant(fault: fault, program: variant, verdict: report.verdict))
            }
        }
        return variants
    }
}
