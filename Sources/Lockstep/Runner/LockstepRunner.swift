import LockstepPrograms
@_spi(Mutations) import MemoryManager

/// The step loop behind `Execution`: runs a program on an engine and an oracle step by step; after
/// each call it compares the engine's outcome with the oracle's expectation and checks the engine's
/// invariants. The first failure ends the run. Only `Execution` builds one.
struct LockstepRunner {
    typealias StateComparisonMode = Execution.StateComparisonMode

    /// Check invariants after every `checkEvery` steps (1 = every step, the default) and always after the last.
    var checkEvery: Int
    /// Record every resource decision the program passes (fault-site coverage for the fuzzer).
    var recordFaultSites = false
    var stateComparison: StateComparisonMode = .perStep

    init(checkEvery: Int = 1, recordFaultSites: Bool = false, stateComparison: StateComparisonMode = .perStep) {
        self.checkEvery = max(1, checkEvery)
        self.recordFaultSites = recordFaultSites
        self.stateComparison = stateComparison
    }

    /// Runs `program`, whose fault lines read as `plan`, against `oracle` on `engine`, a machine booted for it.
    func run(_ program: Program, plan: FaultPlan, oracle: Oracle, kernel engine: Kernel) -> RunReport {
        let comparison = StateComparison(kernel: engine)
        var report = run(program, plan: plan, oracle: oracle, engine: engine, comparison: comparison)
        report.unknownObservations = comparison.unknownFields
        return report
    }

    private func run(_ program: Program, plan: FaultPlan, oracle: Oracle, engine: Kernel, comparison: StateComparison) -> RunReport {
        var adapter = EngineAdapter(kernel: engine)
        let invariants = InvariantChecker()
        // The comparison reads MDL headers from the checker's decode of the step (set once, not per step).
        comparison.decodedHeader = { invariants.lastObservedHeader($0, processId: $1) }
        let bindings = BindingsBox(mask: engine.constants.pointerMask)
        let sites = FaultSiteLog()
        if !program.faults.isEmpty {
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
        // What a driver reads in the current context, for the values the oracle learns by reading them.
        let inspect = engine.inspect
        let driverMemory: (UInt64, Int) -> [UInt8]? = { inspect.peek($0, count: $1) }
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
            oracle.apply(call, observed: outcome, memory: driverMemory)
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
                    invariants.noteCorruption(adapter.kernel, writeAt: adapter.evaluate(va), count: UInt64(data.count))
                    invariants.forgetShadow(adapter.kernel, around: adapter.evaluate(va), bytes: UInt64(data.count))
                }
            }
            // A bug check the oracle predicted is correct behaviour, and it ends the machine: the run is over.
            if case .bugCheck = outcome { break }
            invariants.observe(adapter.kernel, after: call, outcome: outcome, adapter: adapter)
            // Memory the program corrupted is no state either side can vouch for (the invariants stand down too).
            if stateComparison != .off && !invariants.programCorruptedKernelMemory {
                let last = stepNumber == program.calls.count
                let scope: ObservationScope = last || stateComparison == .everythingEveryStep ? .full : .objects(Self.objects(of: call, outcome, adapter))
                if let expected = oracle.observableState(scope), let difference = comparison.firstDifference(expected) {
                    if last && stateComparison == .perStep, let earlier = firstStepShowing(program, plan: plan, oracle: oracle, like: engine) {
                        return RunReport(steps: Array(steps.prefix(earlier.step ?? steps.count)), faultSites: sites.entries, verdict: earlier)
                    }
                    return RunReport(steps: steps, faultSites: sites.entries, verdict: .state(step: stepNumber, call: call, difference: difference))
                }
            }
            if stepNumber % checkEvery == 0 || stepNumber == program.calls.count {
                if let violation = invariants.check(adapter.kernel) {
                    return RunReport(steps: steps, faultSites: sites.entries, verdict: .invariant(step: stepNumber, call: call, violation: violation))
                }
            }
        }
        return RunReport(steps: steps, faultSites: sites.entries, verdict: .pass)
    }

    /// The addresses a call's arguments and result name: the objects whose state it may have changed.
    private static func objects(of call: Call, _ outcome: Outcome, _ adapter: EngineAdapter) -> [UInt64] {
        var addresses: [UInt64] = []
        for argument in call.arguments { if case .expression(let e) = argument { addresses.append(adapter.evaluate(e)) } }
        if case .returned(.number(let value)) = outcome { addresses.append(value) }
        return addresses
    }

    /// Re-runs `program` on a fresh engine (with the same deliberate slips as `kernel`) and a fresh
    /// oracle, comparing everything after every step: the state difference found at the end of a
    /// per-step run, reported at the first step that shows it. Nil if the oracle cannot restart.
    private func firstStepShowing(_ program: Program, plan: FaultPlan, oracle: Oracle, like kernel: Kernel) -> Verdict? {
        guard let fresh = oracle.restarted(for: program), let engine = try? Execution.boot(program) else { return nil }
        engine.mutations = kernel.mutations
        var strict = self
        strict.stateComparison = .everythingEveryStep
        let verdict = strict.run(program, plan: plan, oracle: fresh, kernel: engine).verdict
        guard case .state = verdict else { return nil }
        return verdict
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
                invariants.forgetShadow(adapter.kernel, around: adapter.evaluate(e), bytes: Limits.mdlWriteExtent)
            }
        }
    }
}
