import Foundation
import LockstepPrograms
import MemoryManager

/// The one way to run a program in lockstep: boots the engine its machine line describes, builds the
/// oracle (the reference model unless a test gives another), and runs them step by step with the
/// invariant checker and the state comparison. Campaigns, systematic mode, the shrinker, replay, `run`,
/// `show`, the libFuzzer entry, the testing helpers and the driver harness's engine runs all go
/// through `run(_:oracle:kernel:)`.
///
/// **Set-up-error policy.** A program that cannot be set up (its machine line describes no machine,
/// its fault plan does not parse, the model refuses the machine) runs no step and gets the verdict
/// `.unrunnable(reason)`. It is never a pass and never an engine finding: campaigns count it apart
/// (`CampaignStats.unrunnable`), the shrinker rejects a candidate that becomes unrunnable (its signature
/// differs), and replay and `run` report it as a bad entry (exit 2).
public struct Execution: Sendable {
    /// Check invariants after every `checkEvery` steps (1 = every step) and always after the last.
    public var checkEvery: Int
    /// Record every resource decision the program passes (fault-site coverage for the fuzzer).
    public var recordFaultSites: Bool
    /// How much of the observable state is compared with the oracle's.
    public var stateComparison: StateComparisonMode
    /// Called on the freshly booted engine before the program runs (tests and `--seeded-bug` switch on
    /// deliberate slips here).
    public var prepareKernel: (@Sendable (Kernel) -> Void)?

    /// Defaults: invariants after every step, no fault-site recording, per-step state comparison, no
    /// kernel hook. A `checkEvery` below 1 counts as 1.
    public init(checkEvery: Int = 1, recordFaultSites: Bool = false, stateComparison: StateComparisonMode = .perStep,
                prepareKernel: (@Sendable (Kernel) -> Void)? = nil) {
        self.checkEvery = max(1, checkEvery)
        self.recordFaultSites = recordFaultSites
        self.stateComparison = stateComparison
        self.prepareKernel = prepareKernel
    }

    /// Runs `program` in lockstep with `oracle` (nil: a fresh reference model for the program). `kernel`
    /// is a machine the caller booted (with `boot(_:)`) to look at after the run; nil: a fresh one.
    /// `prepareKernel` is applied to either. A program that cannot be set up gets `.unrunnable`.
    public func run(_ program: Program, oracle: Oracle? = nil, kernel: Kernel? = nil) -> RunReport {
        do throws(SetupError) {
            let engine: Kernel
            if let kernel { engine = kernel } else { engine = try Self.boot(program) }
            prepareKernel?(engine)
            // Before the oracle: a bad fault line is "fault plan: …" whichever oracle would have refused it.
            let plan = try Self.faultPlan(of: program)
            let checked: Oracle
            if let oracle { checked = oracle } else { checked = try ReferenceOracle.make(for: program) }
            return LockstepRunner(checkEvery: checkEvery, recordFaultSites: recordFaultSites, stateComparison: stateComparison)
                .run(program, plan: plan, oracle: checked, kernel: engine)
        } catch {
            return RunReport(steps: [], verdict: .unrunnable(reason: error.message))
        }
    }

    /// The engine the program's machine line describes, freshly booted: a copy of the machine booted
    /// once for that line (`Kernel.copy()`, the same state as a fresh boot, shared with nothing).
    public static func boot(_ program: Program) throws(SetupError) -> Kernel {
        try bootedMachines.kernel(for: program.machine)
    }

    private static let bootedMachines = BootedMachines()

    /// The program's fault plan, read as every side reads it.
    static func faultPlan(of program: Program) throws(SetupError) -> FaultPlan {
        do { return try FaultPlan(program.faults) } catch { throw SetupError(message: "fault plan: \(error)") }
    }

    /// Why a program could not be run at all (its machine line describes no machine, its fault plan
    /// does not parse, the model refuses it).
    public struct SetupError: Error, CustomStringConvertible {
        /// Why, naming the part that failed (`machine line: …`, `fault plan: …`, `reference model: …`).
        public let message: String
        /// The message.
        public var description: String { message }
    }

    /// How much of the observable state (``ObservableState``) is compared with the oracle's.
    public enum StateComparisonMode: Sendable {
        /// Nothing beyond each call's outcome.
        case off
        /// After every step the objects the call named or returned, and the accounting; everything at
        /// the end of the program. A difference found only at the end is pinned to the first step that
        /// shows it by re-running the program with `.everythingEveryStep`.
        case perStep
        /// Everything after every step.
        case everythingEveryStep
    }
}

extension Execution {
    /// The signature a failing run gets, as campaigns, the shrinker and `textfuzz` give it: `misuse:`
    /// first when the program runs on a free or checked build and Driver Verifier stops it at or before
    /// the failing step (`misuseStop`).
    public func signature(of program: Program, _ report: RunReport) -> FailureSignature {
        let signature = report.verdict.signature
        guard !signature.isPass, signature != .unrunnable else { return signature }
        return signature.qualified(misuseStop(program, failingAt: report.verdict) == nil ? nil : .misuse)
    }

    /// For a failure on a free or checked build: the same program under Driver Verifier, its policy stops
    /// off (probe-locking device memory is defined on a free build; only corruption should count). If
    /// Verifier bug-checks it at or before the failing step, the failure is corruption the program caused
    /// (a driver bug the build does not catch), not an engine inconsistency: returns where Verifier stops it.
    public func misuseStop(_ program: Program, failingAt verdict: Verdict) -> String? {
        guard let mode = program.machine["mode"], mode != "verifier", let failing = verdict.step else { return nil }
        var verified = program
        verified.machine.settings = program.machine.settings.filter { $0.key != "mode" && $0.key != "policystops" }
            + [Setting("mode", "verifier"), Setting("policystops", "0")]
        // The re-run is the plain engine: a deliberate slip switched on for the failing run stays off here.
        var plain = self
        plain.prepareKernel = nil
        let report = plain.run(verified)
        guard report.verdict.isPass, let last = report.steps.last, last.index <= failing,
              case .bugCheck(let code, let parameters) = last.outcome else { return nil }
        return "Driver Verifier stops this program at step \(last.index) (\(last.call.routine.rawValue)) with bug check \(hex(UInt64(code)))"
            + (code == 0xC4 ? "/\(hex(parameters.first ?? 0))" : "") + ": corruption the program causes on a \(mode) build, not an engine inconsistency"
    }
}

/// Machines booted once per machine line, copied for each run: booting builds the PFN database and the
/// system page table entry by entry (about 40 engine calls' worth per program), a copy takes them in
/// bulk. Bounded (a text fuzzer makes many machine lines; large machines are not kept), and it never
/// decides anything: a copy is field for field the machine a boot makes (KernelCopyTests).
private final class BootedMachines: @unchecked Sendable {
    private let lock = NSLock()
    private var machines: [MachineLine: Kernel] = [:]
    /// Machine lines kept at once; past it the oldest set is dropped.
    private let capacity = 16
    /// Machines with more RAM than this boot every time (a copy would hold their whole PFN database).
    private let largestKeptRam: UInt64 = 256 << 20

    /// Keyed by the parsed machine line: no text is built per run, only when a line is first booted.
    func kernel(for line: MachineLine) throws(Execution.SetupError) -> Kernel {
        lock.lock()
        let known = machines[line]
        lock.unlock()
        if let known { return known.copy() }
        let booted: Kernel
        do {
            booted = try Kernel(MachineConfiguration(parsing: line.description))
        } catch {
            throw Execution.SetupError(message: "machine line: \(error)")
        }
        guard booted.configuration.ramBytes <= largestKeptRam else { return booted }
        lock.lock()
        if machines.count >= capacity { machines.removeAll() }
        machines[line] = booted
        lock.unlock()
        return booted.copy()
    }
}
