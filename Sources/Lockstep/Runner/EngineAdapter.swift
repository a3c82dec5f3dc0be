import LockstepPrograms
import MemoryManager

/// Runs vocabulary calls on an engine ``Kernel``: evaluates arguments against the names bound so far,
/// calls the routine, turns the result or error into an ``Outcome`` and binds the result name.
/// A name bound by a call that returned NULL, raised or bug-checked holds 0.
package struct EngineAdapter {
    /// The engine the calls run on.
    package let kernel: Kernel
    /// Result name → the engine value it was bound to (an address, id, number).
    package private(set) var bindings: [String: UInt64] = [:]
    /// ReadMemory results, by name.
    package private(set) var data: [String: [UInt8]] = [:]

    package init(kernel: Kernel) {
        self.kernel = kernel
    }

    /// The value of an expression under the current bindings, wrapped to the pointer width.
    package func evaluate(_ expression: Expression) -> UInt64 {
        expression.value(in: bindings, mask: kernel.constants.pointerMask)
    }

    /// Runs one call and binds its result.
    package mutating func perform(_ call: Call) -> Outcome {
        let outcome: Outcome
        do {
            outcome = .returned(try invoke(call))
        } catch {
            switch error {
            case .raised(let status): outcome = .raised(status: status.rawValue)
            case .bugCheck(let check): outcome = .bugCheck(code: check.code, parameters: check.parameterList)
            case .machineHalted: outcome = .refused
            }
        }
        if let name = call.result {
            bindings[name] = outcome.boundValue
            if case .returned(.bytes(let bytes)) = outcome { data[name] = bytes }
        }
        return outcome
    }

    private func pointer(_ value: UInt64?) -> Value { .number(value ?? 0) }

    // MARK: Dispatch

    private func invoke(_ call: Call) throws(KernelError) -> Value {
        let mm = kernel.mm, io = kernel.io, env = kernel.env
        // Arguments by parameter name, read as the vocabulary reads them; converted to engine types here.
        let a = CallArguments(call, bindings: bindings, mask: kernel.constants.pointerMask)
        let n = { (name: String) in a.number(name) }
        let mode = { (name: String) -> ProcessorMode in a.processorMode(name) == .userMode ? .userMode : .kernelMode }
        let cache = { (name: String) in MemoryCachingType(rawValue: a.cachingType(name)) }
        let priority = { (name: String) -> PagePriority in
            switch a.pagePriority(name) {
            case .lowPagePriority: .lowPagePriority
            case .normalPagePriority: .normalPagePriority
            case .highPagePriority: .highPagePriority
            }
        }
        let protection = { (name: String) -> PageProtection in
            switch a.protection(name) {
            case .readWrite: .readWrite
            case .readOnly: .readOnly
            case .noAccess: .noAccess
            }
        }
        switch call.routine {
        case .halTranslateBusAddress:
            var space = UInt32(truncatingIfNeeded: n("space"))
            var translated: UInt64 = 0
            let ok = try kernel.hal.translateBusAddress(InterfaceType(rawValue: a.interfaceType("interface")),
                                                        busNumber: UInt32(truncatingIfNeeded: n("bus")), busAddress: n("address"),
                                                        addressSpace: &space, translatedAddress: &translated)
            return ok ? .translated(address: translated, space: space) : .boolean(false)
        case .mmGetPhysicalAddress: return .number(try mm.getPhysicalAddress(n("va")))
        case .mmGetMdlVirtualAddress: return .number(try mm.getMdlVirtualAddress(n("mdl")))
        case .mmGetSystemAddressForMdl: return pointer(try mm.getSystemAddressForMdl(n("mdl")))
        case .mmBuildMdlForNonPagedPool: try mm.buildMdlForNonPagedPool(n("mdl")); return .none
        case .mmGetMdlByteCount: return .number(UInt64(try mm.getMdlByteCount(n("mdl"))))
        case .mmGetMdlByteOffset: return .number(UInt64(try mm.getMdlByteOffset(n("mdl"))))
        case .mmMapLockedPages: return pointer(try mm.mapLockedPages(n("mdl"), accessMode: mode("mode")))
        case .mmUnmapLockedPages: try mm.unmapLockedPages(n("base"), n("mdl")); return .none
        case .mmIsAddressValid: return .boolean(try mm.isAddressValid(n("va")))
        case .mmSizeOfMdl: return .number(try mm.sizeOfMdl(base: n("va"), length: n("length")))
        case .mmCreateMdl: return pointer(try mm.createMdl(n("mdl") == 0 ? nil : n("mdl"), base: n("va"), length: n("length")))
        case .mmPrepareMdlForReuse: try mm.prepareMdlForReuse(n("mdl")); return .none
        case .mmInitializeMdl: try mm.initializeMdl(n("mdl"), baseVa: n("va"), length: n("length")); return .none
        case .mmMapIoSpace: return pointer(try mm.mapIoSpace(n("pa"), numberOfBytes: n("length"), cacheType: cache("cache")))
        case .mmUnmapIoSpace: try mm.unmapIoSpace(n("va"), numberOfBytes: n("length")); return .none
        case .mmProbeAndLockPages:
            let operation: LockOperation = switch a.lockOperation("operation") {
            case .ioReadAccess: .ioReadAccess
            case .ioWriteAccess: .ioWriteAccess
            case .ioModifyAccess: .ioModifyAccess
            }
            try mm.probeAndLockPages(n("mdl"), accessMode: mode("mode"), operation: operation)
            return .none
        case .mmUnlockPages: try mm.unlockPages(n("mdl")); return .none
        case .ioAllocateMdl:
            return pointer(try io.allocateMdl(virtualAddress: n("va"), length: UInt32(truncatingIfNeeded: n("length")), secondaryBuffer: a.flag("secondary"),
                                              chargeQuota: a.flag("quota"), irp: n("irp")))
        case .ioBuildPartialMdl:
            try io.buildPartialMdl(source: n("source"), target: n("target"), virtualAddress: n("va"), length: UInt32(truncatingIfNeeded: n("length")))
            return .none
        case .ioFreeMdl: try io.freeMdl(n("mdl")); return .none
        case .mmGetSystemAddressForMdlSafe: return pointer(try mm.getSystemAddressForMdlSafe(n("mdl"), priority: priority("priority")))
        case .mmMapLockedPagesSpecifyCache:
            return pointer(try mm.mapLockedPagesSpecifyCache(n("mdl"), accessMode: mode("mode"), cacheType: cache("cache"), requestedAddress: n("requested"),
                                                             bugCheckOnFailure: a.flag("bugcheck"), priority: priority("priority")))
        case .mmAllocatePagesForMdl:
            return pointer(try mm.allocatePagesForMdl(lowAddress: n("low"), highAddress: n("high"), skipBytes: n("skip"), totalBytes: n("total")))
        case .mmFreePagesFromMdl: try mm.freePagesFromMdl(n("mdl")); return .none
        case .exAllocatePoolWithTag:
            return pointer(try env.allocatePool(a.poolType("type") == .pagedPool ? .pagedPool : .nonPagedPool, bytes: n("size")))
        case .exFreePool: try env.freePool(n("block")); return .none
        case .allocateUserBuffer: return pointer(try env.allocateUserBuffer(size: n("size"), protection: protection("protect")))
        case .freeUserBuffer: return .boolean(try env.freeUserBuffer(n("buffer")))
        case .protectUserBuffer: return .boolean(try env.protectUserBuffer(n("va"), size: n("size"), protection: protection("protect")))
        case .readMemory: return .bytes(try env.readMemory(n("va"), count: Int(min(n("length"), 1 << 20))))
        case .writeMemory: try env.writeMemory(n("va"), a.bytes("data") ?? []); return .none
        case .createProcess: return pointer(try env.createProcess().map(UInt64.init))
        case .attachProcess: return .boolean(try env.attachProcess(UInt32(truncatingIfNeeded: n("process"))))
        case .terminateProcess: return .boolean(try env.terminateProcess(UInt32(truncatingIfNeeded: n("process"))))
        case .keRaiseIrql: try env.raiseIrql(Irql(rawValue: a.irql("irql"))); return .none
        case .keLowerIrql: try env.lowerIrql(Irql(rawValue: a.irql("irql"))); return .none
        case .ioAllocateIrp: return pointer(try env.allocateIrp())
        case .ioFreeIrp: try env.freeIrp(n("irp")); return .none
        case .trimWorkingSet: return .number(UInt64(try env.trimWorkingSet(UInt32(truncatingIfNeeded: n("process")))))
        case .pageOut: return .boolean(try env.pageOut(n("va")))
        case .setMdlFlags, .clearMdlFlags:
            // What the driver's C does: a read-modify-write of the 16-bit MdlFlags field.
            let field = n("mdl") &+ UInt64(kernel.constants.mdlLayout.mdlFlags)
            let old = try env.readMemory(field, count: 2)
            let flags = UInt16(old[0]) | UInt16(old[1]) << 8
            let mask = UInt16(truncatingIfNeeded: n("flags"))
            let new = call.routine == .setMdlFlags ? flags | mask : flags & ~mask
            try env.writeMemory(field, [UInt8(new & 0xFF), UInt8(new >> 8)])
            return .none
        case .driverRead, .driverWrite, .driverDeviceControl, .driverCompleteDpc, .driverCancel, .driverUnload:
            // Driver-harness requests are not engine calls: without a driver under test they do nothing
            // (DriverHarness carries them out). A request name binds 0.
            return .none
        }
    }
}
