import LockstepPrograms
import ReferenceModel

extension ReferenceModel: Oracle {
    /// A fresh reference model for `program`; nil if the model refuses it.
    public func restarted(for program: Program) -> Oracle? { try? ReferenceModel(program: program) }
}

/// The oracle programs are checked against by default: the independent reference model.
public enum ReferenceOracle {
    /// A fresh reference model for the program's machine and fault plan.
    public static func make(for program: Program) throws(Execution.SetupError) -> Oracle {
        do {
            return try ReferenceModel(program: program)
        } catch {
            throw Execution.SetupError(message: "reference model: \(error)")
        }
    }
}
