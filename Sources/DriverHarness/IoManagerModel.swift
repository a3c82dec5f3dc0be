import Lockstep
import LockstepPrograms
import MemoryManager

/// The harness's I/O manager: what Windows does around a driver's dispatch routines. It prepares each
/// request for its transfer method before dispatch (a nonpaged system buffer, or a probed and locked
/// MDL), runs the driver's DPC and cancel routines when the program says so, and at completion copies
/// buffered data back and releases what it built. Its own allocations are outside the fault gate.
extension DriverRun {
    /// `q0 = DriverRead(…)` and friends: a new request, prepared and dispatched.
    func issue(_ call: Call) {
        let deviceControl = call.routine == .driverDeviceControl
        let arguments = CallArguments(call, bindings: adapter.bindings, mask: kernel.constants.pointerMask)
        let method: TransferMethod
        switch arguments["method"] ?? .symbol("Buffered") {
        case .symbol(let name): method = TransferMethod(rawValue: name) ?? .buffered
        case .expression(.literal(let n)) where n < 3: method = [TransferMethod.buffered, .direct, .neither][Int(n)]
        default: method = .buffered
        }
        let major: MajorFunction = call.routine == .driverRead ? .read : call.routine == .driverWrite ? .write : .deviceControl
        let request = Request(name: call.result ?? "q?\(states.count)", index: states.count, major: major,
                              controlCode: deviceControl ? UInt32(truncatingIfNeeded: arguments.number("code")) : 0, method: method,
                              userBuffer: arguments.number("buffer"), length: arguments.number("length"), position: arguments.number("position"),
                              processId: kernel.currentProcessId)
        requestsByName[request.name] = request
        states.append(RequestState(request: request, issueStep: monitor.step))
        monitor.request = request.name
        guard loaded else { return finishWithoutDriver(request, .noSuchDevice, "no driver loaded") }
        guard prepare(request) else { return }
        let result = runDriver(.dispatch, request, atDispatch: false, process: request.processId) { () throws(KernelError) -> RequestResult in
            switch major {
            case .read: try driver.dispatchRead(request, services)
            case .write: try driver.dispatchWrite(request, services)
            case .deviceControl: try driver.dispatchDeviceControl(request, services)
            }
        }
        if let result { handle(result, request, from: "dispatch") }
    }

    /// The device finished `request`: the driver's DPC at DISPATCH_LEVEL in the System process.
    func runDpc(_ request: Request) {
        let result = runDriver(.dpc, request, atDispatch: true, process: kernel.systemProcessId) { () throws(KernelError) in
            try driver.completionDpc(request, services)
        }
        if let result { handle(result, request, from: "DPC") }
    }

    /// IoCancelIrp: the driver's cancel routine at DISPATCH_LEVEL in the System process.
    func cancel(_ request: Request) {
        request.isCancelled = true
        let result = runDriver(.cancel, request, atDispatch: true, process: kernel.systemProcessId) { () throws(KernelError) in
            try driver.cancel(request, services)
        }
        if let result { handle(result, request, from: "cancel") }
    }

    private func handle(_ result: RequestResult, _ request: Request, from routine: String) {
        switch result {
        case .pending:
            if !isOutstanding(request) { outstanding.append(request) }
            note("\(stepLabel)  \(routine) of \(request.name) → pending")
        case .completed(let status, let information):
            complete(request, status: status, information: information, from: routine)
        }
    }

    // MARK: Before dispatch

    /// Builds what the transfer method needs. False when the I/O manager failed the request itself (a
    /// bad user buffer, no pool): the request completes without reaching the driver.
    private func prepare(_ request: Request) -> Bool {
        let k = kernel
        let index = request.index
        guard request.length > 0 else { return true }
        do {
            switch request.method {
            case .buffered:
                guard request.length <= 0x100_0000, let buffer = try k.env.allocatePool(.nonPagedPool, bytes: request.length) else {
                    finishWithoutDriver(request, .insufficientResources, "no pool for the system buffer")
                    return false
                }
                request.systemBuffer = buffer
                if request.writesDevice {
                    do {
                        let data = try k.env.readMemory(request.userBuffer, count: Int(request.length))
                        try k.env.writeMemory(buffer, data)
                        states[index].writeSnapshot = data
                    } catch .raised(let status) {
                        try k.env.freePool(buffer)
                        request.systemBuffer = 0
                        finishWithoutDriver(request, status, "copying the user buffer in raised")
                        return false
                    }
                }
            case .direct:
                guard request.length <= UInt64(UInt32.max),
                      let mdl = try k.io.allocateMdl(virtualAddress: request.userBuffer, length: UInt32(request.length),
                                                     secondaryBuffer: false, chargeQuota: false, irp: 0) else {
                    finishWithoutDriver(request, .insufficientResources, "no MDL for the user buffer")
                    return false
                }
                do {
                    try k.mm.probeAndLockPages(mdl, accessMode: .userMode, operation: request.readsDevice ? .ioWriteAccess : .ioReadAccess)
                } catch .raised(let status) {
                    try k.io.freeMdl(mdl)
                    finishWithoutDriver(request, status, "probing the user buffer raised")
                    return false
                }
                request.mdl = mdl
                if request.writesDevice { states[index].writeSnapshot = snapshot(request) }
            case .neither:
                if request.writesDevice { states[index].writeSnapshot = snapshot(request) }
            }
        } catch {
            monitor.phase = .dispatch
            recordEngineError(error, "the I/O manager preparing \(request.name)")
            return false
        }
        return true
    }

    /// The caller's bytes as they are now (nil if any page is not mapped, or the buffer is too large to judge).
    private func snapshot(_ request: Request) -> [UInt8]? {
        guard request.length <= 0x10_0000 else { return nil }
        return kernel.inspect.peek(request.userBuffer, count: Int(request.length), processId: request.processId)
    }

    /// A request the driver never saw (no driver, or the I/O manager failed it).
    private func finishWithoutDriver(_ request: Request, _ status: NTStatus, _ why: String) {
        states[request.index].completedStep = monitor.step
        note("\(stepLabel)  \(request.name) → \(status.harnessName) (\(why))")
    }

    // MARK: Completion

    /// IoCompleteRequest: the I/O manager's copy-back and cleanup, then the data-integrity checks.
    func complete(_ request: Request, status: NTStatus, information: UInt64, from routine: String) {
        outstanding.removeAll { $0 === request }
        states[request.index].completedStep = monitor.step
        note("\(stepLabel)  \(routine) of \(request.name) → completed \(status.harnessName) information=\(hexString(information))")
        monitor.phase = .completion
        monitor.request = request.name
        if !status.isError && information > request.length {
            monitor.record(.informationExceedsLength, nil,
                           "\(request.name) completed with information \(hexString(information)) for a \(hexString(request.length))-byte buffer")
            return
        }
        let copied = ioManagerCompletion(request, status: status, information: information)
        guard monitor.finding == nil, copied, !status.isError, information > 0 else { return }
        checkIntegrity(request, information: information)
    }

    /// Copies buffered read data back and releases the system buffer or the MDL. False when the copy
    /// back failed (the caller's buffer went away), so the data cannot be judged.
    private func ioManagerCompletion(_ request: Request, status: NTStatus, information: UInt64) -> Bool {
        let k = kernel
        let saved = k.currentProcessId
        if saved != request.processId { _ = try? k.env.attachProcess(request.processId) }
        defer { if k.currentProcessId != saved { _ = try? k.env.attachProcess(saved) } }
        var copied = true
        do {
            switch request.method {
            case .buffered where request.systemBuffer != 0:
                if request.readsDevice && !status.isError && information > 0 {
                    let data = try k.env.readMemory(request.systemBuffer, count: Int(information))
                    do { try k.env.writeMemory(request.userBuffer, data) } catch .raised { copied = false }
                }
                try k.env.freePool(request.systemBuffer)
            case .direct where request.mdl != 0:
                try k.mm.unlockPages(request.mdl)
                try k.io.freeMdl(request.mdl)
            default: break
            }
        } catch {
            recordEngineError(error, "the I/O manager completing \(request.name) (after the driver was done with it)")
            return false
        }
        return copied
    }
}
