import Lockstep
import LockstepPrograms
import MemoryManager

/// Runs a driver program (environment calls plus `DriverRead` … `DriverUnload` requests) against a
/// driver under test on a fresh engine, checking the rules of ``DriverRule`` as it goes; the first
/// finding ends the run.
///
/// Order of a run: DriverEntry (System process, PASSIVE_LEVEL); the program's calls, environment calls
/// on the engine and requests through the harness's I/O manager to the driver; then the end of the
/// program: every outstanding request is cancelled and its DPC run until it completes, every user
/// process ends (Windows' locked-page check), and the driver unloads (Pool Tracking's leak check).
public struct DriverRunner: Sendable {
    /// The driver's name in findings and their signatures.
    public let name: String
    /// Makes the driver instance a run uses.
    public let make: @Sendable () -> any Driver
    /// Keep one trace line per step (for `lockstep` output and tests; campaigns leave it off).
    public var recordTrace: Bool
    /// Bytes of device storage.
    public static let deviceSize: UInt64 = 0x1_0000

    /// A runner for the driver `make` creates, named `name` in findings.
    public init(name: String = "driver", driver make: @escaping @Sendable () -> any Driver, recordTrace: Bool = false) {
        self.name = name
        self.make = make
        self.recordTrace = recordTrace
    }

    /// A runner for a registered driver.
    public init(_ entry: DriverRegistry.Entry, recordTrace: Bool = false) {
        self.init(name: entry.name, driver: entry.make, recordTrace: recordTrace)
    }

    /// Why a program could not be run (its machine line or fault plan is not valid).
    public struct SetupError: Error, CustomStringConvertible {
        /// One line: what is wrong with the machine line or the fault plan.
        public let description: String
    }

    /// Runs one program.
    public func run(_ program: Program) throws(SetupError) -> DriverReport {
        let kernel: Kernel
        do { kernel = try Execution.boot(program) } catch { throw SetupError(description: error.description) }
        let plan: FaultPlan
        do { plan = try FaultPlan(program.faults) } catch { throw SetupError(description: "fault plan: \(error)") }
        let run = DriverRun(program: program, kernel: kernel, name: name, driver: make(), rules: plan.rules, recordTrace: recordTrace)
        return run.execute()
    }
}

/// What a driver run found.
public struct DriverReport: Sendable {
    /// The first rule broken, nil when the run passed.
    public let finding: DriverFinding?
    /// One line per step when the runner records a trace.
    public let trace: [String]
    /// Resource decisions the driver's own code took, per kind: the fault points systematic mode fails.
    public let decisions: [(kind: ResourceKind, count: UInt64)]
    /// Requests the program issued.
    public let requests: Int
    /// Calls executed.
    public let steps: Int

    /// `pass`, or the finding's signature.
    public var signature: FailureSignature { finding?.signature ?? .pass }
}

/// Per-request bookkeeping for completion and the data-integrity checks.
struct RequestState {
    let request: Request
    let issueStep: Int
    var completedStep: Int?
    /// The caller's data when a write-like request was issued (nil: unknown).
    var writeSnapshot: [UInt8]?
    /// The program changed the request's buffer while it was outstanding: its data cannot be judged.
    var tainted = false
}

/// One execution of a program against one driver instance.
final class DriverRun {
    let program: Program
    let kernel: Kernel
    var adapter: EngineAdapter
    let driver: any Driver
    let monitor: RunMonitor
    let gate: DriverFaultGate
    let device: SimulatedDevice
    let services: DriverServices
    let recordTrace: Bool
    var trace: [String] = []
    var loaded = false
    var baseline: ResourceSnapshot
    /// Pool blocks the program's own environment calls allocated (EPROCESS blocks, the program's pool).
    var environmentBlocks = Set<VirtualAddress>()
    var requestsByName: [String: Request] = [:]
    var states: [RequestState] = []
    /// Pending requests, in issue order.
    var outstanding: [Request] = []

    init(program: Program, kernel: Kernel, name: String, driver: any Driver, rules: [FaultPlan.Rule], recordTrace: Bool) {
        monitor = RunMonitor(driver: name)
        self.program = program
        self.kernel = kernel
        self.driver = driver
        self.recordTrace = recordTrace
        adapter = EngineAdapter(kernel: kernel)
        gate = DriverFaultGate(rules: rules, constants: kernel.constants)
        device = SimulatedDevice(size: DriverRunner.deviceSize, kernel: kernel, monitor: monitor)
        services = DriverServices(kernel: kernel, device: device)
        baseline = ResourceSnapshot(kernel.inspect)
        let gate = self.gate
        kernel.faultDecider = { gate.decide($0) }
    }

    func execute() -> DriverReport {
        load()
        for (index, call) in program.calls.enumerated() where monitor.finding == nil {
            monitor.step = index + 1
            monitor.phase = .program
            monitor.request = nil
            perform(call)
        }
        if monitor.finding == nil {
            monitor.step = program.calls.count + 1
            finish()
        }
        return DriverReport(finding: monitor.finding, trace: trace, decisions: gate.decisions, requests: states.count,
                            steps: min(monitor.step, program.calls.count))
    }

    func note(_ line: @autoclosure () -> String) {
        if recordTrace { trace.append(line()) }
    }

    // MARK: Loading and unloading

    private func load() {
        monitor.step = 0
        let status = runDriver(.driverEntry, nil, atDispatch: false, process: kernel.systemProcessId) { () throws(KernelError) in
            try driver.driverEntry(services)
        }
        guard let status else { return }
        note("   0  DriverEntry → \(status.harnessName)")
        if !status.isError {
            loaded = true
            return
        }
        // A driver that failed to load is never unloaded: it must have released everything already.
        checkLeaks(moment: "after DriverEntry failed with \(status.harnessName)")
    }

    /// DriverUnload: drain every request, unload, then Pool Tracking's leak check.
    func unloadDriver() {
        guard loaded else { return }
        monitor.phase = .unload
        drain(processId: nil)
        guard monitor.finding == nil else { return }
        _ = runDriver(.unload, nil, atDispatch: false, process: kernel.systemProcessId) { () throws(KernelError) in
            try driver.unload(services)
        }
        loaded = false
        guard monitor.finding == nil else { return }
        note("\(stepLabel)  DriverUnload → returned")
        checkLeaks(moment: "at DriverUnload")
    }

    private func checkLeaks(moment: String) {
        let report = LeakReport(kernel.inspect, baseline: baseline, owned: environmentBlocks)
        if let (rule, check, detail) = report.finding(at: moment) { monitor.record(rule, check, detail) }
    }

    /// The end of the program: outstanding requests are cancelled and completed, every user process
    /// ends, then the driver unloads.
    private func finish() {
        monitor.phase = .processEnd
        monitor.request = nil
        if loaded { drain(processId: nil) }
        for process in kernel.inspect.processes where process.id != kernel.systemProcessId && !process.terminated && monitor.finding == nil {
            monitor.phase = .processEnd
            do {
                _ = try kernel.env.terminateProcess(process.id)
            } catch {
                recordEngineError(error, "ending process \(process.id)")
            }
        }
        if monitor.finding == nil { note("\(stepLabel)  end of program: requests drained, user processes ended") }
        if monitor.finding == nil { unloadDriver() }
    }

    /// Cancels, then runs the DPC of, every outstanding request (of one process, or all) until it
    /// completes; one that never does is a finding.
    func drain(processId: UInt32?) {
        let phase = monitor.phase
        let targets = outstanding.filter { processId == nil || $0.processId == processId }
        for request in targets where isOutstanding(request) && !request.isCancelled && monitor.finding == nil {
            cancel(request)
        }
        for _ in 0..<3 {
            for request in targets where isOutstanding(request) && monitor.finding == nil { runDpc(request) }
        }
        monitor.phase = phase
        guard monitor.finding == nil, let stuck = targets.first(where: isOutstanding) else { return }
        monitor.request = stuck.name
        monitor.record(.requestNeverCompleted, BugCheck(0xCE, 0, 0, 0, 0),
                       "\(stuck.name) is still pending after its cancel routine and three DPCs")
    }

    // MARK: Running driver code

    /// Runs one driver routine in `process`'s context at PASSIVE_LEVEL (or DISPATCH_LEVEL), with the
    /// fault gate open. Nil when the routine broke a rule (the finding is recorded).
    func runDriver<T>(_ phase: DriverPhase, _ request: Request?, atDispatch: Bool, process: UInt32,
                      _ body: () throws(KernelError) -> T) -> T? {
        let savedProcess = kernel.currentProcessId
        monitor.phase = phase
        monitor.request = request?.name
        if process != savedProcess { _ = try? kernel.env.attachProcess(process) }
        if atDispatch { try? kernel.env.raiseIrql(.dispatchLevel) }
        let expected: Irql = atDispatch ? .dispatchLevel : .passiveLevel
        var result: T?
        gate.inDriver = true
        do {
            result = try body()
        } catch {
            gate.inDriver = false
            recordDriverError(error, phase)
        }
        gate.inDriver = false
        if monitor.finding == nil, let check = kernel.haltedBy {
            monitor.record(DriverRule.classify(check), check, "\(phase.rawValue) went on after a bug check: \(check)")
        }
        if monitor.finding == nil, kernel.irql != expected {
            let check = BugCheck(0xC8, UInt64(kernel.irql.rawValue), UInt64(expected.rawValue), 0, 0)
            monitor.record(.irqlNotRestored, check, "\(phase.rawValue) returned at \(kernel.irql), expected \(expected)")
        }
        guard monitor.finding == nil else { return nil }
        if atDispatch { try? kernel.env.lowerIrql(.passiveLevel) }
        if kernel.currentProcessId != savedProcess { _ = try? kernel.env.attachProcess(savedProcess) }
        return result
    }

    private func recordDriverError(_ error: KernelError, _ phase: DriverPhase) {
        guard case .raised(let status) = error else {
            recordEngineError(error, phase.rawValue)
            return
        }
        let irql = kernel.irql
        if irql >= .dispatchLevel {
            monitor.record(.pageFaultAtRaisedIrql, BugCheck(BugCheck.driverIrqlNotLessOrEqual, 0, UInt64(irql.rawValue), 0, 0),
                           "\(phase.rawValue) let \(status) escape at \(irql): Windows takes no exception there")
        } else {
            monitor.record(.unhandledException, BugCheck(BugCheck.kmodeExceptionNotHandled, UInt64(status.rawValue), 0, 0, 0),
                           "\(phase.rawValue) let \(status) escape: no exception handler around the call that raised it")
        }
    }

    /// Records an engine bug check (or the bug check behind a refused call) as the rule it breaks.
    func recordEngineError(_ error: KernelError, _ context: String) {
        switch error {
        case .bugCheck(let check), .machineHalted(let check):
            monitor.record(DriverRule.classify(check), check, "\(context): engine bug check \(check)")
        case .raised(let status):
            monitor.record(.unhandledException, BugCheck(BugCheck.kmodeExceptionNotHandled, UInt64(status.rawValue), 0, 0, 0),
                           "\(context): \(status) raised")
        }
    }

    // MARK: Program calls

    private func perform(_ call: Call) {
        switch call.routine {
        case .driverRead, .driverWrite, .driverDeviceControl: issue(call)
        case .driverCompleteDpc:
            guard let request = request(named: call), isOutstanding(request) else {
                return note("\(stepLabel)  \(ProgramText.encode(call)) → no pending request")
            }
            runDpc(request)
        case .driverCancel:
            guard let request = request(named: call), isOutstanding(request), !request.isCancelled else {
                return note("\(stepLabel)  \(ProgramText.encode(call)) → nothing to cancel")
            }
            cancel(request)
        case .driverUnload:
            if !loaded { return note("\(stepLabel)  DriverUnload() → no driver loaded") }
            unloadDriver()
        default: environment(call)
        }
    }

    var stepLabel: String {
        let text = "\(monitor.step)"
        return String(repeating: " ", count: max(0, 4 - text.count)) + text
    }

    private func request(named call: Call) -> Request? {
        guard let name = call.arguments.first?.referencedName else { return nil }
        return requestsByName[name]
    }

    func isOutstanding(_ request: Request) -> Bool { outstanding.contains { $0 === request } }

    /// An environment call of the program: runs on the engine; pool it allocates is the program's.
    private func environment(_ call: Call) {
        if call.routine == .terminateProcess, case .expression(let e)? = call.arguments.first {
            // Windows cancels a process's I/O before it ends.
            drain(processId: UInt32(truncatingIfNeeded: adapter.evaluate(e)))
            monitor.phase = .program
            monitor.request = nil
            guard monitor.finding == nil else { return }
        }
        taintBuffers(for: call)
        let inspect = kernel.inspect
        let bytesBefore = inspect.poolBytesInUse(.nonPagedPool) &+ inspect.poolBytesInUse(.pagedPool)
        let blocksBefore = Set(ResourceSnapshot.liveBlocks(inspect).map(\.start))
        let outcome = adapter.perform(call)
        if gate.needsBindings { gate.bindings = adapter.bindings }
        note("\(stepLabel)  \(ProgramText.encode(call)) → \(outcome)")
        if inspect.poolBytesInUse(.nonPagedPool) &+ inspect.poolBytesInUse(.pagedPool) != bytesBefore {
            let live = ResourceSnapshot.liveBlocks(inspect).map(\.start)
            let liveSet = Set(live)
            environmentBlocks = environmentBlocks.intersection(liveSet).union(live.filter { !blocksBefore.contains($0) })
        }
        if case .bugCheck(let code, let parameters) = outcome {
            let check = BugCheck(code, parameters[0], parameters[1], parameters[2], parameters[3])
            monitor.record(DriverRule.classify(check), check, "\(call.routine.name) bug-checked: \(check)")
        }
    }

    /// The program writes memory a pending request uses, or frees a buffer: that request's data cannot be judged.
    private func taintBuffers(for call: Call) {
        let process = kernel.currentProcessId
        switch call.routine {
        case .writeMemory:
            guard case .expression(let e)? = call.arguments.first, case .bytes(let data)? = call.arguments.last else { return }
            let start = adapter.evaluate(e)
            for index in states.indices where states[index].completedStep == nil && states[index].request.processId == process {
                let r = states[index].request
                if start < r.userBuffer &+ r.length && r.userBuffer < start &+ UInt64(data.count) { states[index].tainted = true }
            }
        case .freeUserBuffer:
            // The range may be handed out again and refilled: nothing of it can be judged any more.
            for index in states.indices where states[index].completedStep == nil && states[index].request.processId == process {
                states[index].tainted = true
            }
        default: break
        }
    }
}
