import LockstepPrograms

/// Environment actions, the address queries, HalTranslateBusAddress, and the dispatch over every routine.
extension ReferenceModel {
    func predict(_ call: Call) -> Prediction {
        // A NULL MDL (say, from an allocation the fault plan failed) is dereferenced like any pointer:
        // kernel code reading address 0 without a handler (conventions: 0x1E).
        let opensMdl = switch call.routine {
        case .mmUnmapLockedPages: true
        case .mmCreateMdl, .ioBuildPartialMdl, .ioAllocateMdl, .mmSizeOfMdl, .mmMapIoSpace, .mmUnmapIoSpace, .mmAllocatePagesForMdl, .mmGetPhysicalAddress,
             .mmIsAddressValid, .halTranslateBusAddress: false
        default: call.routine.isNtRoutine
        }
        if irql <= 2, opensMdl, number(call, "mdl") == 0 {
            return bugCheck(0x1E, .exactly(UInt64(Status.accessViolation)), .exactly(0), .any, .any)
        }
        switch call.routine {
        case .halTranslateBusAddress: return predictTranslate(call)
        case .mmGetPhysicalAddress: return predictPhysical(call)
        case .mmIsAddressValid: return predictIsValid(call)
        case .mmGetMdlVirtualAddress, .mmGetMdlByteCount, .mmGetMdlByteOffset: return predictMdlField(call)
        case .mmSizeOfMdl: return predictSizeOfMdl(call)
        case .mmInitializeMdl: return predictInitializeMdl(call)
        case .mmCreateMdl: return predictCreateMdl(call)
        case .ioAllocateMdl: return predictIoAllocateMdl(call)
        case .ioFreeMdl: return predictIoFreeMdl(call)
        case .mmBuildMdlForNonPagedPool: return predictBuildMdlForNonPagedPool(call)
        case .mmPrepareMdlForReuse: return predictPrepareMdlForReuse(call)
        case .ioBuildPartialMdl: return predictBuildPartialMdl(call)
        case .mmProbeAndLockPages: return predictProbeAndLock(call)
        case .mmUnlockPages: return predictUnlock(call)
        case .mmGetSystemAddressForMdl: return predictGetSystemAddress(call, safe: false)
        case .mmGetSystemAddressForMdlSafe: return predictGetSystemAddress(call, safe: true)
        case .mmMapLockedPages: return predictMapLockedPages(call, specify: false)
        case .mmMapLockedPagesSpecifyCache: return predictMapLockedPages(call, specify: true)
        case .mmUnmapLockedPages: return predictUnmapLockedPages(call)
        case .mmMapIoSpace: return predictMapIoSpace(call)
        case .mmUnmapIoSpace: return predictUnmapIoSpace(call)
        case .mmAllocatePagesForMdl: return predictAllocatePagesForMdl(call)
        case .mmFreePagesFromMdl: return predictFreePagesFromMdl(call)
        case .exAllocatePoolWithTag: return predictAllocatePool(call)
        case .exFreePool: return predictFreePool(call)
        case .allocateUserBuffer: return predictAllocateBuffer(call)
        case .freeUserBuffer: return predictFreeBuffer(call)
        case .protectUserBuffer: return predictProtect(call)
        case .readMemory: return predictAccess(call, write: false)
        case .writeMemory: return predictAccess(call, write: true)
        case .createProcess:
            if decide(.nonpagedPool) != nil { return .returns(.null) }
            settle { observed in
                if case .returned(.number(let id)) = observed, id != 0 {
                    self.hiddenPoolAllocation()
                    // The EPROCESS is a nonpaged block of a fixed size (conventions), never freed.
                    self.poolBytes.nonpaged += self.machine.pointer64 ? 0x4D0 : 0x280
                    self.processes[UInt32(truncatingIfNeeded: id)] = (0, false)
                    self.nextProcess = UInt32(truncatingIfNeeded: id) &+ 4
                }
            }
            return .returns(.exactly(UInt64(nextProcess)))
        case .attachProcess:
            let id = UInt32(truncatingIfNeeded: number(call, "process"))
            guard let process = processes[id], !process.terminated else { return .returns(.boolean(false)) }
            currentProcess = id
            return .returns(.boolean(true))
        case .terminateProcess: return predictTerminate(call)
        case .keRaiseIrql, .keLowerIrql: return predictIrql(call)
        case .ioAllocateIrp:
            let bytes: UInt64 = machine.pointer64 ? 0xD0 : 0x70
            if decide(.nonpagedPool) != nil { return .returns(.null) }
            settle { observed in
                if case .returned(.number(let irp)) = observed, irp != 0 {
                    self.irps.insert(irp)
                    // IoAllocateIrp initializes the IRP: Irp->MdlAddress starts NULL.
                    self.irpHead[irp] = nil
                    self.addBlock(PoolBlock(base: irp, size: bytes, paged: false))
                    self.poolBytes.nonpaged += bytes
                }
            }
            return poolBytes.nonpaged &+ 2 * machine.pageSize < machine.nonpagedBytes ? .returns(.fresh(.irp)) : .oneOf([.returns(.fresh(.irp)), .returns(.null)])
        case .ioFreeIrp:
            let irp = number(call, "irp")
            guard irps.remove(irp) != nil, let block = removeBlock(irp) else {
                return bugCheck(0xC2, .exactly(7), .exactly(0), .exactly(0), parameter(call, "irp"))
            }
            poolBytes.nonpaged = poolBytes.nonpaged >= block.size ? poolBytes.nonpaged - block.size : 0
            return .returns(.none)
        case .trimWorkingSet: return predictTrim(call)
        case .pageOut: return predictPageOut(call)
        case .setMdlFlags, .clearMdlFlags:
            guard var record = mdls[mdlKey(number(call, "mdl"))] else { return lose("\(call.routine.name) on memory the model does not know as an MDL") }
            let mask = UInt16(truncatingIfNeeded: number(call, "flags"))
            // MDL_MAPPING_CAN_FAIL is the one flag a driver may set or clear itself (spec §1.3).
            if number(call, "flags") & ~UInt64(Flag.mappingCanFail) != 0 {
                return lose("\(call.routine.name) writes MdlFlags bits only the memory manager may set")
            }
            record.flags = call.routine == .setMdlFlags ? record.flags | mask : record.flags & ~mask
            mdls[mdlKey(number(call, "mdl"))] = record
            return .returns(.none)
        case .driverRead, .driverWrite, .driverDeviceControl, .driverCompleteDpc, .driverCancel, .driverUnload:
            // What a driver under test does is not in the spec: stop predicting, as for any call the model cannot follow.
            return lose("\(call.routine.name) is a driver-harness request; only the driver harness runs it")
        }
    }

    func predictTranslate(_ call: Call) -> Prediction {
        // Spec §2.19: IRQL <= DISPATCH_LEVEL; a checked build ASSERTs it (the model does not name that ASSERT).
        if machine.checked && irql > 2 { return lose("checked-build IRQL ASSERT in HalTranslateBusAddress") }
        let names = ArgumentKind.interfaceType.symbols!
        // INTERFACE_TYPE counts from InterfaceTypeUndefined, -1.
        let raw = Int(arguments(call).interfaceType("interface"))
        let type = raw >= -1 && raw < names.count - 1 ? names[raw + 1] : "?"
        let bus = number(call, "bus") & 0xFFFF_FFFF, address = number(call, "address"), space = number(call, "space") & 0xFFFF_FFFF
        let memoryTop: UInt64 = machine.pointer64 ? 0xFFFF_FFFF_FFFF : 0xFFFF_FFFF
        func lookup(_ type: String) -> Prediction? {
            let exists = ["Internal", "Eisa", "Isa"].contains(type) && bus == 0 || type == "PCIBus" && bus < machine.pciBuses
            guard exists else { return nil }
            if space == 0 {
                for device in machine.devices where device.type == type && device.bus == bus
                    && address >= device.busAddress && address - device.busAddress < device.length {
                    return .returns(.translated(address: (address - device.busAddress) &+ device.physical, space: 0))
                }
                let top: UInt64 = type == "Isa" ? 0xFF_FFFF : memoryTop
                return address <= top ? .returns(.translated(address: address, space: 0)) : nil
            }
            if space == 1 { return address <= 0xFFFF ? .returns(.translated(address: address, space: 1)) : nil }
            return nil
        }
        if let result = lookup(type) { return result }
        if type == "Isa" && space == 0 && bus == 0, let result = lookup("Eisa") { return result }
        return .returns(.boolean(false))
    }

    func predictPhysical(_ call: Call) -> Prediction {
        let va = number(call, "va")
        if case .page(let frame, let protection, let residentNow) = place(va), residentNow, protection != "NoAccess" {
            if let name = call.result { physicalOf[name] = (frame, machine.byteOffset(va)) }
            return .returns(.physicalAddressOf(expression(call, "va")))
        }
        if let name = call.result { physicalOf[name] = (nil, 0) }
        return .returns(.exactly(0))
    }

    func predictIsValid(_ call: Call) -> Prediction {
        if machine.checked && irql > 2 { return assertion(parameter(call, "va"), .exactly(0)) }
        if case .page(_, let protection, let residentNow) = place(number(call, "va")) { return .returns(.boolean(residentNow && protection != "NoAccess")) }
        return .returns(.boolean(false))
    }

    func predictAllocatePool(_ call: Call) -> Prediction {
        let paged = arguments(call).poolType("type") == .pagedPool
        let bytes = number(call, "size")
        if machine.verifier {
            if bytes == 0 { return verifier(0x00, .exactly(irql), .exactly(paged ? 1 : 0), .exactly(0)) }
            if paged && irql > 1 { return verifier(0x01, .exactly(irql), .exactly(1), .exactly(bytes)) }
            if !paged && irql > 2 { return verifier(0x02, .exactly(irql), .exactly(0), .exactly(bytes)) }
        }
        if decide(paged ? .pagedPool : .nonpagedPool) != nil { return .returns(.null) }
        let capacity = paged ? machine.pagedBytes : machine.nonpagedBytes
        let used = paged ? poolBytes.paged : poolBytes.nonpaged
        let rounded = machine.poolBlockSize(bytes)
        let free = capacity > used ? capacity - used : 0
        if bytes > capacity || rounded > free { return .returns(.null) }
        settle { observed in
            guard case .returned(.number(let address)) = observed, address != 0 else { return }
            self.addBlock(PoolBlock(base: address, size: rounded, paged: paged))
            if paged { self.poolBytes.paged += rounded } else { self.poolBytes.nonpaged += rounded }
        }
        let fits = free - rounded >= 2 * machine.pageSize
        return fits ? .returns(.fresh(.pool)) : .oneOf([.returns(.fresh(.pool)), .returns(.null)])
    }

    func predictFreePool(_ call: Call) -> Prediction {
        let address = number(call, "block")
        let paged = address >= machine.pagedBase && address - machine.pagedBase < machine.pagedBytes
        if machine.verifier && paged && irql > 1 { return verifier(0x11, .exactly(irql), .exactly(1), parameter(call, "block")) }
        if machine.verifier && !paged && irql > 2 && inPoolRegion(address) { return verifier(0x12, .exactly(irql), .exactly(0), parameter(call, "block")) }
        if lookaside.contains(address) { return lose("ExFreePool of an MDL block on the lookaside list (freed twice)") }
        guard let block = pool[address] else {
            if let unsure = maybeReused(address) { return unsure }
            return bugCheck(0xC2, .exactly(7), .exactly(0), .exactly(0), parameter(call, "block"))
        }
        if mdls.contains(where: { $0.key.process == nil && $0.key.address >= address && $0.key.address - address < block.size && $0.value.flags & (Flag.locked | Flag.mapped) != 0 }) {
            return lose("ExFreePool of a block holding a locked or mapped MDL")
        }
        for key in mdls.keys where key.process == nil && key.address >= address && key.address - address < block.size { mdls[key] = nil }
        irps.remove(address)
        removeBlock(address)
        if block.paged {
            poolBytes.paged = poolBytes.paged >= block.size ? poolBytes.paged - block.size : 0
        } else {
            poolBytes.nonpaged = poolBytes.nonpaged >= block.size ? poolBytes.nonpaged - block.size : 0
        }
        return .returns(.none)
    }

    func predictAllocateBuffer(_ call: Call) -> Prediction {
        let size = number(call, "size")
        if machine.checked && irql != 0 { return assertion(.exactly(0), .exactly(0)) }
        guard size > 0, size <= 2 * machine.ramBytes, currentProcess != 4 else { return .returns(.null) }
        let pages = (size + machine.pageSize - 1) / machine.pageSize
        // The commit limit (RAM + an equal pagefile) is system-wide: every live process's buffers count.
        let committed = buffers.values.lazy.filter(\.alive).reduce(0) { $0 + $1.pages }
        guard (committed + pages) * machine.pageSize <= 2 * machine.ramBytes else { return .returns(.null) }
        let protection = arguments(call).protection("protect").rawValue
        let id = nextBuffer
        nextBuffer += 1
        settle { observed in
            guard case .returned(.number(let base)) = observed, base != 0 else { return }
            self.buffers[id] = UserBuffer(id: id, process: self.currentProcess, base: base, pages: pages,
                                          protection: Array(repeating: protection, count: Int(pages)))
        }
        return .returns(.fresh(.buffer))
    }

    func predictFreeBuffer(_ call: Call) -> Prediction {
        let base = number(call, "buffer")
        guard let id = buffers.values.first(where: { $0.alive && $0.process == currentProcess && $0.base == base })?.id else {
            return .returns(.boolean(false))
        }
        buffers[id]?.alive = false
        buffers[id]?.protection = []        // a dead buffer's pages are nobody's: do not keep a value per page
        for mdl in mdls.keys where mdl.process == currentProcess && mdl.address >= base && mdl.address - base < buffers[id]!.pages * machine.pageSize {
            mdls[mdl] = nil
        }
        for index in 0..<buffers[id]!.pages where (locks[.user(buffer: id, index: index)] ?? 0) == 0 {
            resident.remove(.user(buffer: id, index: index))
        }
        return .returns(.boolean(true))
    }

    func predictProtect(_ call: Call) -> Prediction {
        let va = number(call, "va"), size = number(call, "size")
        let start = machine.pageAlign(va)
        // ROUND_TO_PAGES wraps in pointer width: a range that ends in the last page rounds to 0 (and is refused).
        let end = (va &+ size &+ (machine.pageSize - 1)) & ~(machine.pageSize - 1) & machine.mask
        guard size > 0, end > start,
              let buffer = buffers.values.first(where: { $0.alive && $0.process == currentProcess && start >= $0.base && start - $0.base < $0.pages * machine.pageSize }),
              end <= buffer.base + buffer.pages * machine.pageSize else { return .returns(.boolean(false)) }
        let first = (start - buffer.base) / machine.pageSize
        let last = min((end - buffer.base) / machine.pageSize, buffer.pages)
        for index in first..<max(first, last) { buffers[buffer.id]?.protection[Int(index)] = arguments(call).protection("protect").rawValue }
        return .returns(.boolean(true))
    }

    /// ReadMemory / WriteMemory: driver code inside try/except (conventions: AV raises for user
    /// addresses, 0x50 for system ones, 0xD1 for a fault at DISPATCH_LEVEL).
    func predictAccess(_ call: Call, write: Bool) -> Prediction {
        let va = number(call, "va")
        let data: [UInt8]
        if write {
            guard let bytes = arguments(call).bytes("data") else { return lose("WriteMemory without bytes") }
            data = bytes
        } else {
            data = []
        }
        let count = write ? data.count : Int(min(number(call, "length"), 1 << 20))
        var output: [UInt8] = []
        var done = 0
        while done < count {
            let address = (va &+ UInt64(done)) & machine.mask
            let offset = Int(machine.byteOffset(address))
            let chunk = min(count - done, Int(machine.pageSize) - offset)
            switch place(address) {
            case .unmapped:
                if machine.isUser(address) { return .raises(status: Status.accessViolation) }
                return bugCheck(0x50, .exactly(address), .exactly(write ? 1 : 0), .exactly(0), .exactly(0))
            case .page(let frame, let protection, let residentNow):
                if protection == "NoAccess" || (write && protection == "ReadOnly") {
                    if machine.isUser(address) { return .raises(status: Status.accessViolation) }
                    return bugCheck(0x50, .exactly(address), .exactly(write ? 1 : 0), .exactly(0), .exactly(0))
                }
                if case .unknown = frame { return lose("memory behind a physical address the model cannot name") }
                if !residentNow {
                    if irql >= 2 { return bugCheck(0xD1, .exactly(address), .exactly(irql), .exactly(write ? 1 : 0), .exactly(0)) }
                    if let failure = faultIn(frame, at: address, probe: false) { return failure }
                }
                // Pages before a failing one are already written, as in the real copy loop.
                if write { self.write(frame, offset, data[done..<done + chunk]) } else { output += read(frame, offset, chunk) }
            }
            done += chunk
        }
        // A write that leaves the pool block it starts in (or starts in no block) corrupts whatever lies
        // there, an MDL's PFN array say: from here on the engine's answers are the program's doing.
        if write, inPoolRegion(va), poolBlock(containing: va).map({ (va - $0.base) + UInt64(count) > $0.size }) ?? true {
            let prediction: Prediction = .returns(.none)
            _ = lose("WriteMemory at \(String(va, radix: 16)) runs outside the pool block it starts in (pool corruption)")
            return prediction
        }
        if write, let mdl = mdlOverlapping(va, count) {
            let prediction: Prediction = .returns(.none)
            _ = lose("WriteMemory at \(String(va, radix: 16)) overwrites the MDL at \(String(mdl.address, radix: 16))")
            return prediction
        }
        if !write, count > 0, let mdl = mdlOverlapping(va, count) {
            // The model keeps MDL fields as records, not as bytes: what a read of them returns it cannot say.
            return .unpredictable(reason: "ReadMemory at \(String(va, radix: 16)) reads the MDL at \(String(mdl.address, radix: 16))")
        }
        return write ? .returns(.none) : .returns(.bytes(output))
    }

    /// A live MDL whose header or PFN array overlaps [va, va + count): the model keeps MDL fields in its
    /// records, not in memory (docs/INDEPENDENCE.md, finding M1), so it cannot follow a write there.
    private func mdlOverlapping(_ va: UInt64, _ count: Int) -> MdlKey? {
        let process: UInt32? = machine.isUser(va) ? currentProcess : nil
        let end = va &+ UInt64(count)
        return mdls.filter { key, record in
            // The header and the PFN slots its span names, within the memory that holds the MDL.
            let extent = min(machine.headerSize &+ machine.span(record.va, record.byteCount) &* machine.pfnSize, record.capacity)
            return key.process == process && va < key.address &+ extent && key.address < end
        }.keys.min()
    }

    func predictTerminate(_ call: Call) -> Prediction {
        let id = UInt32(truncatingIfNeeded: number(call, "process"))
        guard id != 4, let process = processes[id], !process.terminated else { return .returns(.boolean(false)) }
        if process.lockedPages != 0 {
            let pages = UInt64(bitPattern: process.lockedPages)
            // Verifier tracks locked pages from Vista (version index 3) on; before that it is 0x76.
            if machine.verifier && machine.version >= 3 { return bugCheck(0xCB, .exactly(0), .exactly(0), .any, .exactly(pages)) }
            return bugCheck(0x76, .exactly(0), .any, .exactly(pages), .exactly(0))
        }
        processes[id]?.terminated = true
        for buffer in buffers.values where buffer.process == id && buffer.alive {
            buffers[buffer.id]?.alive = false
            buffers[buffer.id]?.protection = []
        }
        userMappings[id] = nil
        for key in mdls.keys where key.process == id { mdls[key] = nil }
        if currentProcess == id { currentProcess = 4 }
        return .returns(.boolean(true))
    }

    func predictIrql(_ call: Call) -> Prediction {
        let level = UInt64(arguments(call).irql("irql"))
        if call.routine == .keRaiseIrql && level < irql { return bugCheck(0x09, .exactly(irql), .exactly(level), .exactly(0), .exactly(0)) }
        if call.routine == .keLowerIrql && level > irql { return bugCheck(0x0A, .exactly(level), .exactly(irql), .exactly(0), .exactly(0)) }
        irql = level
        return .returns(.none)
    }

    func predictTrim(_ call: Call) -> Prediction {
        let id = UInt32(truncatingIfNeeded: number(call, "process"))
        var trimmed = 0
        if id == 4 {
            for frame in resident.sorted() where isPagedPool(frame) && (locks[frame] ?? 0) == 0 {
                resident.remove(frame)
                pagedOut.insert(frame)
                everPagedOut.insert(frame)
                trimmed += 1
            }
            return .returns(.exactly(UInt64(trimmed)))
        }
        guard let process = processes[id], !process.terminated else { return .returns(.exactly(0)) }
        for buffer in buffers.values where buffer.process == id && buffer.alive {
            for index in 0..<buffer.pages {
                let frame = Frame.user(buffer: buffer.id, index: index)
                if resident.contains(frame) && (locks[frame] ?? 0) == 0 {
                    resident.remove(frame)
                    pagedOut.insert(frame)
                    everPagedOut.insert(frame)
                    trimmed += 1
                }
            }
        }
        return .returns(.exactly(UInt64(trimmed)))
    }

    func predictPageOut(_ call: Call) -> Prediction {
        guard case .page(let frame, _, let residentNow) = place(number(call, "va")), residentNow, pageable(frame), (locks[frame] ?? 0) == 0 else {
            return .returns(.boolean(false))
        }
        resident.remove(frame)
        pagedOut.insert(frame)
        everPagedOut.insert(frame)
        return .returns(.boolean(true))
    }
}
