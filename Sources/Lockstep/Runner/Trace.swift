import LockstepPrograms

/// Human-readable traces of a run: one line per step with its outcome, the failing step marked.
public enum Trace {
    /// The machine line, then each step run with its outcome and the oracle's prediction (`>>` marks the failing step).
    public static func render(_ report: RunReport, program: Program) -> String {
        var lines = [program.machine.description]
        let failingStep: Int? = switch report.verdict {
        case .pass, .unrunnable: nil
        case .divergence(let step, _, _, _, _), .bugcheck(let step, _, _, _), .state(let step, _, _): step
        case .invariant(let step, _, _): step
        }
        let width = String(report.steps.count).count
        for step in report.steps {
            let number = String(step.index).leftPadded(to: width)
            let marker = step.index == failingStep ? ">>" : "  "
            lines.append("\(marker) \(number)  \(ProgramText.encode(step.call))")
            lines.append("   \(String(repeating: " ", count: width))    → \(step.outcome)   [oracle: \(step.expectation)]")
        }
        if report.steps.count < program.calls.count, report.verdict.isPass == false {
            lines.append("   (\(program.calls.count - report.steps.count) later calls not run)")
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(to width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
