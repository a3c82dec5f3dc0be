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
            switch outcome {
            case .returned(.number(let value)): bindings[name] = value
            case .returned(.boolean(let value)): bindings[name] = value ? 1 : 0
            case .returned(.translated(let address, _)): bindings[name] = address
            case .returned(.bytes(let bytes)): bindings[name] = UInt64(bytes.count); data[name] = bytes
            default: bindings[name] = 0
            }
        }
        return outcome
    }

    // MARK: Argument decoding

    private func number(_ call: Call, _ index: Int) -> UInt64 {
        guard index < call.arguments.count else { return 0 }
        switch call.arguments[index] {
        case .expression(let e): return evaluate(e)
        case .boolean(let b): return b ? 1 : 0
        case .symbol, .bytes: return 0
        }
    }

    private func flag(_ call: Call, _ index: Int) -> Bool { number(call, index) != 0 }

    private func symbol(_ call: Call, _ index: Int) -> String? {
        guard index < call.arguments.count, case .symbol(let s) = call.arguments[index] else { return nil }
        return s
    }

    private func mode(_ call: Call, _ index: Int) -> ProcessorMode {
        symbol(call, index) == "UserMode" || (symbol(call, index) == nil && number(call, index) != 0) ? .userMode : .kernelMode
    }

    private func operation(_ call: Call, _ index: Int) -> LockOperation {
        switch symbol(call, index) {
        case "IoReadAccess": return .ioReadAccess
        case "IoWriteAccess": return .ioWriteAccess
        case "IoModifyAccess": return .ioModifyAccess
        // LOCK_OPERATION is an int: only 0 reads (0x100 is not IoReadAccess).
        default: return number(call, index) <= 0xFF ? LockOperation(rawValue: UInt8(number(call, index))) ?? .ioModifyAccess : .ioModifyAccess
        }
    }

    private func cache(_ call: Call, _ index: Int) -> MemoryCachingType {
        if let name = symbol(call, index), let type = MemoryCachingType(name: name) { return type }
        return MemoryCachingType(rawValue: UInt32(truncatingIfNeeded: number(call, index)))
    }

    private func priority(_ call: Call, _ index: Int) -> PagePriority {
        switch symbol(call, index) {
        case "LowPagePriority": .lowPagePriority
        case "HighPagePriority": .highPagePriority
        default: .normalPagePriority
        }
    }

    private func irql(_ call: Call, _ index: Int) -> Irql {
        if let name = symbol(call, index), let level = Irql(name: name) { return level }
        // A KIRQL is a UCHAR: truncate first (0x100 is PASSIVE_LEVEL), as the model does.
        return Irql(rawValue: min(UInt8(truncatingIfNeeded: number(call, index)), 31))
    }

    private func protection(_ call: Call, _ index: Int) -> PageProtection {
        PageProtection(rawValue: symbol(call, index) ?? "") ?? .readWrite
    }

    private func bytes(_ call: Call, _ index: Int) -> [UInt8] {
        guard index < call.arguments.count, case .bytes(let data) = call.arguments[index] else { return [] }
        return data
    }

    private func pointer(_ value: UInt64?) -> Value { .number(value ?? 0) }

    // MARK: Dispatch

    private func invoke(_ call: Call) throws(KernelError) -> Value {
        let mm = kernel.mm, io = kernel.io, env = kernel.env
        let n = { (i: Int) in number(call, i) }
        switch call.routine {
        case .halTranslateBusAddress:
            let type = symbol(call, 0).flatMap(InterfaceType.init(name:)) ?? InterfaceType(rawValue: Int32(truncatingIfNeeded: n(0)))
            var space = UInt32(truncatingIfNeeded: n(3))
            var translated: UInt64 = 0
            let ok = try kernel.hal.translateBusAddress(type, busNumber: UInt32(truncatingIfNeeded: n(1)), busAddress: n(2),
                                                        addressSpace: &space, translatedAddress: &translated)
            return ok ? .translated(address: translated, space: space) : .boolean(false)
        case .mmGetPhysicalAddress: return .number(try mm.getPhysicalAddress(n(0)))
        case .mmGetMdlVirtualAddress: return .number(try mm.getMdlVirtualAddress(n(0)))
        case .mmGetSystemAddressForMdl: return pointer(try mm.getSystemAddressForMdl(n(0)))
        case .mmBuildMdlForNonPagedPool: try mm.buildMdlForNonPagedPool(n(0)); return .none
        case .mmGetMdlByteCount: return .number(UInt64(try mm.getMdlByteCount(n(0))))
        case .mmGetMdlByteOffset: return .number(UInt64(try mm.getMdlByteOffset(n(0))))
        case .mmMapLockedPages: return pointer(try mm.mapLockedPages(n(0), accessMode: mode(call, 1)))
        case .mmUnmapLockedPages: try mm.unmapLockedPages(n(0), n(1)); return .none
        case .mmIsAddressValid: return .boolean(try mm.isAddressValid(n(0)))
        case .mmSizeOfMdl: return .number(try mm.sizeOfMdl(base: n(0), length: n(1)))
        case .mmCreateMdl: return pointer(try mm.createMdl(n(0) == 0 ? nil : n(0), base: n(1), length: n(2)))
        case .mmPrepareMdlForReuse: try mm.prepareMdlForReuse(n(0)); return .none
        case .mmInitializeMdl: try mm.initializeMdl(n(0), baseVa: n(1), length: n(2)); return .none
        case .mmMapIoSpace: return pointer(try mm.mapIoSpace(n(0), numberOfBytes: n(1), cacheType: cache(call, 2)))
        case .mmUnmapIoSpace: try mm.unmapIoSpace(n(0), numberOfBytes: n(1)); return .none
        case .mmProbeAndLockPages: try mm.probeAndLockPages(n(0), accessMode: mode(call, 1), operation: operation(call, 2)); return .none
        case .mmUnlockPages: try mm.unlockPages(n(0)); return .none
        case .ioAllocateMdl:
            return pointer(try io.allocateMdl(virtualAddress: n(0), length: UInt32(truncatingIfNeeded: n(1)), secondaryBuffer: flag(call, 2),
                                              chargeQuota: flag(call, 3), irp: n(4)))
        case .ioBuildPartialMdl:
            try io.buildPartialMdl(source: n(0), target: n(1), virtualAddress: n(2), length: UInt32(truncatingIfNeeded: n(3)))
            return .none
        case .ioFreeMdl: try io.freeMdl(n(0)); return .none
        case .mmGetSystemAddressForMdlSafe: return pointer(try mm.getSystemAddressForMdlSafe(n(0), priority: priority(call, 1)))
        case .mmMapLockedPagesSpecifyCache:
            return pointer(try mm.mapLockedPagesSpecifyCache(n(0), accessMode: mode(call, 1), cacheType: cache(call, 2), requestedAddress: n(3),
                                                             bugCheckOnFailure: flag(call, 4), priority: priority(call, 5)))
        case .mmAllocatePagesForMdl:
            return pointer(try mm.allocatePagesForMdl(lowAddress: n(0), highAddress: n(1), skipBytes: n(2), totalBytes: n(3)))
        case .mmFreePagesFromMdl: try mm.freePagesFromMdl(n(0)); return .none
        case .exAllocatePoolWithTag:
            let type: PoolType = symbol(call, 0) == "PagedPool" || (symbol(call, 0) == nil && n(0) == 1) ? .pagedPool : .nonPagedPool
            return pointer(try env.allocatePool(type, bytes: n(1)))
        case .exFreePool: try env.freePool(n(0)); return .none
        case .allocateUserBuffer: return pointer(try env.allocateUserBuffer(size: n(0), protection: protection(call, 1)))
        case .freeUserBuffer: return .boolean(try env.freeUserBuffer(n(0)))
        case .protectUserBuffer: return .boolean(try env.protectUserBuffer(n(0), size: n(1), protection: protection(call, 2)))
        case .readMemory: return .bytes(try env.readMemory(n(0), count: Int(min(n(1), 1 << 20))))
        case .writeMemory: try env.writeMemory(n(0), bytes(call, 1)); return .none
        case .createProcess: return pointer(try env.createProcess().map(UInt64.init))
        case .attachProcess: return .boolean(try env.attachProcess(UInt32(truncatingIfNeeded: n(0))))
        case .terminateProcess: return .boolean(try env.terminateProcess(UInt32(truncatingIfNeeded: n(0))))
        case .keRaiseIrql: try env.raiseIrql(irql(call, 0)); return .none
        case .keLowerIrql: try env.lowerIrql(irql(call, 0)); return .none
        case .ioAllocateIrp: return pointer(try env.allocateIrp())
        case .ioFreeIrp: try env.freeIrp(n(0)); return .none
        case .trimWorkingSet: return .number(UInt64(try env.trimWorkingSet(UInt32(truncatingIfNeeded: n(0)))))
        case .pageOut: return .boolean(try env.pageOut(n(0)))
        case .setMdlFlags, .clearMdlFlags:
            // What the driver's C does: a read-modify-write of the 16-bit MdlFlags field.
            let field = n(0) &+ UInt64(kernel.constants.mdlLayout.mdlFlags)
            let old = try env.readMemory(field, count: 2)
            let flags = UInt16(old[0]) | UInt16(old[1]) << 8
            let mask = UInt16(truncatingIfNeeded: n(1))
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
