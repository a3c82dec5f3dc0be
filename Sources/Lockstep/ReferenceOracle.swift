import LockstepPrograms

/// The oracle programs are checked against by default.
public enum ReferenceOracle {
    /// A fresh reference model for the program's machine and fault plan.
    public static func make(for program: Program) throws(LockstepRunner.SetupError) -> Oracle {
        throw LockstepRunner.SetupError(message: "the reference model is not part of this build yet")
    }
}
