import LockstepPrograms
import MemoryManager

/// Runs a program on a fresh engine and a fresh oracle step by step: after each call it compares the
/// engine's outcome with the oracle's expectation and checks the engine's invariants. The first
/// failure ends the run.
public struct LockstepRunner {
    /// Check invariants after every `checkEvery` steps (1 = every step, the default) and always after the last.
    public var checkEvery: Int

    /// Record every resource decision the program passes (fault-site coverage for the fuzzer).
    public var recordFaultSites = false

    public init(checkEvery: Int = 1, recordFaultSites: Bool = false) {
        self.checkEvery = max(1, checkEvery)
        self.recordFaultSites = recordFaultSites
    }

    /// Why a program could not be run at all (its machine line does not describe a machine).
    public struct SetupError: Error, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    /// Boots the engine a program's machine line describes.
    public static func makeKernel(for program: Program) throws(SetupError) -> Kernel {
        do {
            return try Kernel(MachineConfiguration(parsing: program.machine.description))
        } catch {
            throw SetupError(message: "machine line: \(error)")
        }
    }

    /// Runs `program` against `oracle`. `kernel` defaults to a fresh engine for the program's machine.
    public func run(_ program: Program, oracle: Oracle, kernel: Kernel? = nil) throws(SetupError) -> RunReport {
        let engine: Kernel
        if let kernel { engine = kernel } else { engine = try Self.makeKernel(for: program) }
        var adapter = EngineAdapter(kernel: engine)
        let invariants = InvariantChecker()
        let bindings = BindingsBox(mask: engine.constants.pointerMask)
        let sites = FaultSiteLog()
        if !program.faults.isEmpty {
            let plan: FaultPlan
            do { plan = try FaultPlan(program.faults) } catch { throw SetupError(message: "fault plan: \(error)") }
            let decide = plan.decider(pageMask: ~(engine.constants.pageSize - 1) & engine.constants.pointerMask,
                                      evaluate: { bindings.evaluate($0) })
            engine.faultDecider = recordFaultSites ? { site in
                let decision = decide(site)
                sites.record(site, failed: decision != .proceed)
                return decision
            } : decide
        } else if recordFaultSites {
            engine.faultDecider = { site in sites.record(site, failed: false); return .proceed }
        }
        var steps: [Step] = []
        steps.reserveCapacity(program.calls.count)
        invariants.observe(adapter.kernel, after: nil, outcome: nil, adapter: adapter)
        if let violation = invariants.check(adapter.kernel) {
            return RunReport(steps: steps, faultSites: sites.entries, verdict: .invariant(step: 0, call: nil, violation: violation))
        }
        for (index, call) in program.calls.enumerated() {
            let stepNumber = index + 1
            let expectation = oracle.expect(call)
            forgetOverwrittenBytes(call, adapter, invariants)
            let outcome = adapter.perform(call)
            if !program.faults.isEmpty { bindings.values = adapter.bindings }
            oracle.apply(call, observed: outcome)
            steps.append(Step(index: stepNumber, call: call, outcome: outcome, expectation: expectation))
            if let reason = PredictionMatcher(adapter: adapter).mismatch(expectation, outcome) {
                if case .bugCheck = outcome, !Self.predictsBugCheck(expectation) {
                    return RunReport(steps: steps, faultSites: sites.entries, verdict: .bugcheck(step: stepNumber, call: call, engine: outcome, expected: expectation))
                }
                let diff = StateDiff.describe(call, adapter: adapter, oracle: oracle)
                return RunReport(steps: steps, faultSites: sites.entries, verdict: .divergence(step: stepNumber, call: call, engine: outcome, expected: expectation,
                                                                    reason: diff.isEmpty ? reason : reason + "\n" + diff))
            }
            if call.routine == .writeMemory, case .expression(let va) = call.arguments[0], case .bytes(let data) = call.arguments[1] {
                if case .returned = outcome {
                    invariants.recordWrite(adapter.kernel, at: adapter.evaluate(va), data)
                } else {
                    // A write that faulted part way (a failed page-in) has written some bytes: which ones is
                    // not the checker's to know, so it stops vouching for the pages it touched.
                    invariants.forgetShadow(adapter.kernel, around: adapter.evaluate(va), bytes: UInt64(data.count))
                }
            }
            // A bug check the oracle predicted is correct behaviour, and it ends the machine: the run is over.
            if case .bugCheck = outcome { break }
            invariants.observe(adapter.kernel, after: call, outcome: outcome, adapter: adapter)
            if stepNumber % checkEvery == 0 || stepNumber == program.calls.count {
                if let violation = invariants.check(adapter.kernel) {
                    return RunReport(steps: steps, faultSites: sites.entries, verdict: .invariant(step: stepNumber, call: call, violation: violation))
                }
            }
        }
        return RunReport(steps: steps, faultSites: sites.entries, verdict: .pass)
    }

    private static func predictsBugCheck(_ expectation: Prediction) -> Bool {
        switch expectation {
        case .bugChecks: true
        case .oneOf(let options): options.contains(where: predictsBugCheck)
        default: false
        }
    }

    /// The engine writes MDL headers and PFN arrays into whatever memory the MDL argument names; bytes
    /// the program wrote there are no longer the program's.
    private func forgetOverwrittenBytes(_ call: Call, _ adapter: EngineAdapter, _ invariants: InvariantChecker) {
        for (parameter, argument) in zip(call.routine.signature.parameters, call.arguments) where parameter.kind == .handle {
            if case .expression(let e) = argument {
                invariants.forgetShadow(adapter.kernel, around: adapter.evaluate(e), bytes: 0x1_0000)
            }
        }
    }
}
