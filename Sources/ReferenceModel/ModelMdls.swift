import LockstepPrograms

/// Building, reading, reusing and freeing MDLs (spec §2.1–§2.6, §2.12–§2.14).
extension ReferenceModel {
    func newRecord(_ va: UInt64, _ length: UInt64, capacity: UInt64) -> MdlRecord {
        MdlRecord(startVa: machine.pageAlign(va), byteOffset: machine.byteOffset(va), byteCount: length & 0xFFFF_FFFF,
                  size: machine.mdlBytes(va, length) & 0xFFFF, flags: 0, process: nil, processKnown: false, pfns: [],
                  mappedSystemVa: nil, capacity: capacity)
    }

    /// The SIZE_T / ULONG Length a routine receives.
    func length(_ value: UInt64) -> UInt64 { machine.version <= 1 ? value & 0xFFFF_FFFF : value & machine.mask }

    func predictSizeOfMdl(_ call: Call) -> Prediction {
        .returns(.exactly(machine.mdlBytes(number(call, "va"), length(number(call, "length")))))
    }

    func predictInitializeMdl(_ call: Call) -> Prediction {
        let address = number(call, "mdl")
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        if machine.checked && irql > 2 { return assertion(parameter(call, "mdl"), .exactly(0)) }
        let capacity: UInt64
        if let block = poolBlock(containing: address) {
            capacity = block.base + block.size - address
            if machine.verifier && capacity < machine.headerSize { return lose("MmInitializeMdl on a block smaller than the header") }
            // Writing the header into paged pool may page a frame in (a frame decision, a failure the model does not track).
            if block.paged { return lose("MmInitializeMdl into paged pool") }
        } else if case .page(let frame, _, let residentNow) = place(address) {
            // Writing the header faults a user page in (a frame decision, a residency the trims see) that
            // the model does not follow through this routine.
            if !residentNow && pageable(frame) { return lose("MmInitializeMdl into a user page that is not resident") }
            capacity = 1 << 20
        } else {
            return lose("MmInitializeMdl on memory the model does not know")
        }
        let key = mdlKey(address)
        var record = newRecord(number(call, "va"), length(number(call, "length")), capacity: capacity)
        if let old = mdls[key] {
            // Process, MappedSystemVa and the PFN array are left as they were.
            record.process = old.process
            record.processKnown = old.processKnown
            record.mappedSystemVa = old.mappedSystemVa
            record.pfns = old.pfns
        }
        if let old = mdls[key], old.flags & Flag.locked != 0 || old.flags & Flag.mapped != 0 {
            return lose("MmInitializeMdl over a locked or mapped MDL leaks its state")
        }
        mdls[key] = record
        // MmInitializeMdl sets Next to NULL (spec §1.4); a chain that ran through here now ends here.
        nextLink[address] = 0
        return .returns(.none)
    }

    func predictCreateMdl(_ call: Call) -> Prediction {
        let given = number(call, "mdl")
        let va = number(call, "va"), len = length(number(call, "length"))
        if given != 0 {
            // MmCreateMdl over given memory is MmInitializeMdl there (same parameters: mdl, va, length).
            let result = predictInitializeMdl(Call(nil, .mmInitializeMdl, call.arguments))
            guard case .returns = result else { return result }
            return .returns(.exactly(given))
        }
        if machine.checked && irql >= 2 { return assertion(.exactly(0), .exactly(0)) }
        let bytes = machine.mdlBytes(va, len)
        if machine.verifier && irql > 2 { return verifier(0x02, .exactly(irql), .exactly(0), .exactly(bytes)) }
        return allocateMdlBlock(call, bytes: bytes) { record in self.newRecord(va, len, capacity: bytes) }
    }

    /// A new MDL in a fresh nonpaged-pool block (or NULL if the pool may be exhausted).
    /// `afterAllocation`: what the call does once it has its block, when that is not simply returning
    /// the new MDL (IoAllocateMdl walking a NULL IRP chain).
    func allocateMdlBlock(_ call: Call, bytes: UInt64, fixedSize: Bool = false, afterAllocation: Prediction? = nil,
                          make: @escaping (UInt64) -> MdlRecord) -> Prediction {
        if decide(.nonpagedPool) != nil { return .returns(.null) }
        let bytes = machine.poolBlockSize(bytes)
        let fits = nonpagedBlockFits(bytes)
        if fits == false { return .returns(.null) }
        if let afterAllocation { return fits == true ? afterAllocation : .oneOf([afterAllocation, .returns(.null)]) }
        settle { observed in
            guard case .returned(.number(let address)) = observed, address != 0 else { return }
            var record = make(address)
            if fixedSize { record.flags |= Flag.fixedSize }
            self.addMdlBlock(at: address, bytes: bytes, record)
        }
        return fits == true ? .returns(.fresh(.mdl)) : .oneOf([.returns(.fresh(.mdl)), .returns(.null)])
    }

    /// Whether a nonpaged-pool block of `bytes` (already rounded) fits: false when the pool has fewer
    /// bytes free, true when it surely has a hole that large, nil when that depends on fragmentation.
    func nonpagedBlockFits(_ bytes: UInt64) -> Bool? {
        let free = machine.nonpagedBytes > poolBytes.nonpaged ? machine.nonpagedBytes - poolBytes.nonpaged : 0
        if bytes > free { return false }
        return free - bytes >= max(bytes, 16) - bytes + 2 * machine.pageSize ? true : nil
    }

    /// Records a new MDL in its own nonpaged-pool block of `bytes` (rounded) at `address`.
    func addMdlBlock(at address: UInt64, bytes: UInt64, _ record: MdlRecord) {
        addBlock(PoolBlock(base: address, size: bytes, paged: false))
        poolBytes.nonpaged += bytes
        nextLink[address] = 0
        var record = record
        // Special pool bounds the MDL by its whole block, rounded to the pool granularity.
        record.capacity = bytes
        mdls[MdlKey(address: address, process: nil)] = record
    }

    func predictIoAllocateMdl(_ call: Call) -> Prediction {
        let va = number(call, "va"), len = number(call, "length") & 0xFFFF_FFFF
        let secondary = number(call, "secondary") != 0, irp = number(call, "irp")
        if machine.checked && irql > 2 { return assertion(.exactly(va), .exactly(len)) }
        let pages = machine.span(va, len)
        let needed = machine.headerSize + pages * machine.pfnSize
        // Spec §2.4 with [SERGE]'s rows 0xFFFFF000-0xFFFFFFFF: NT 4/5 (like ReactOS) and 6.0 refuse a
        // Length of 2 GiB or more, which is every length whose 32-bit span can wrap.
        switch machine.version {
        case 0, 1, 2: if needed > 0xFFFF || len >= 0x8000_0000 { return .returns(.null) }
        case 3: if len >= 0x8000_0000 { return .returns(.null) }
        default: break
        }
        let threshold: UInt64 = machine.version >= 3 ? 17 : 23
        // Windows 7 gives a span that wrapped in 32 bits a pool block of the wrapped size; only 6.2 and
        // later take such an MDL from the lookaside.
        let wrapped = !machine.pointer64 && machine.byteOffset(va) + len + machine.pageSize - 1 > 0xFFFF_FFFF
        let fixed = pages <= threshold && !(wrapped && machine.version == 4)
        let block = fixed ? machine.headerSize + threshold * machine.pfnSize : needed
        if machine.verifier && irql > 2 { return verifier(0x02, .exactly(irql), .exactly(0), .exactly(block)) }
        var walksNullChain: Prediction?
        if irp != 0 {
            guard irps.contains(irp) else { return lose("IoAllocateMdl with an IRP argument that is not an IRP") }
            if secondary && (irpHead[irp] ?? 0) == 0 {
                // With its MDL allocated, Windows walks the chain from a NULL head: reading Next at
                // address 0 from kernel code. A failed allocation returns NULL before that.
                walksNullChain = bugCheck(0x1E, .exactly(UInt64(Status.accessViolation)), .exactly(0), .exactly(0), .exactly(0))
            } else if secondary, let head = irpHead[irp] {
                // A chain that runs back into itself (an MDL freed and reallocated while still linked)
                // never ends: the hang convention, 0xE2 (0, IRP, MDL, 0). If the cycle runs through a freed
                // block, the new MDL may be that block, and its NULL Next would end the walk.
                var seen: [UInt64] = []
                var tail = head
                while let next = nextLink[tail], next != 0, !seen.contains(tail) { seen.append(tail); tail = next }
                if seen.contains(tail) {
                    let cycle = seen.drop { $0 != tail }
                    guard cycle.allSatisfy({ mdls[MdlKey(address: $0, process: nil)] != nil }) else {
                        return lose("IoAllocateMdl walking an IRP chain that cycles through a freed MDL")
                    }
                    walksNullChain = bugCheck(0xE2, .exactly(0), .exactly(irp), .any, .exactly(0))
                }
            }
        }
        let link: (UInt64) -> Void = { mdl in
            self.nextLink[mdl] = 0
            guard irp != 0 else { return }
            if !secondary { self.irpHead[irp] = mdl; return }
            var tail = self.irpHead[irp] ?? 0
            var steps = 0
            while let next = self.nextLink[tail], next != 0, steps < 1 << 16 { tail = next; steps += 1 }
            self.nextLink[tail] = mdl
        }
        if !machine.verifier && fixed && !lookaside.isEmpty, let walksNullChain { return walksNullChain }
        if !machine.verifier && fixed, let recycled = lookaside.popLast() {
            // The lookaside hands back the last freed block, Process and MappedSystemVa as they were.
            var record = newRecord(va, len, capacity: machine.poolBlockSize(block))
            record.flags = Flag.fixedSize
            mdls[MdlKey(address: recycled, process: nil)] = record
            // The block keeps the size the pool gave it (rounded to the pool's granularity).
            addBlock(PoolBlock(base: recycled, size: machine.poolBlockSize(block), paged: false))
            link(recycled)
            return .returns(.exactly(recycled))
        }
        let expectation = allocateMdlBlock(call, bytes: block, fixedSize: fixed, afterAllocation: walksNullChain) { _ in self.newRecord(va, len, capacity: block) }
        let settleBlock = pendingSettle
        settle { observed in
            settleBlock?(observed)
            if case .returned(.number(let mdl)) = observed, mdl != 0 { link(mdl) }
        }
        return expectation
    }

    func predictMdlField(_ call: Call) -> Prediction {
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        guard let record = mdls[mdlKey(number(call, "mdl"))] else {
            // Reading paged pool may page a frame in (a frame decision the model does not track).
            if poolBlock(containing: number(call, "mdl"))?.paged == true { return lose("reading an MDL field in paged pool") }
            return .unpredictable(reason: "not an MDL the model knows")
        }
        switch call.routine {
        case .mmGetMdlVirtualAddress: return .returns(.exactly(record.va & machine.mask))
        case .mmGetMdlByteCount: return .returns(.exactly(record.byteCount))
        default: return .returns(.exactly(record.byteOffset))
        }
    }

    func predictBuildMdlForNonPagedPool(_ call: Call) -> Prediction {
        let address = number(call, "mdl")
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        let key = mdlKey(address)
        guard var record = mdls[key] else { return lose("MmBuildMdlForNonPagedPool on an unknown MDL") }
        if machine.checked {
            if irql > 2 { return lose("checked-build IRQL ASSERT in MmBuildMdlForNonPagedPool") }
            // ReactOS' ASSERTs (spec §2.6).
            if record.byteCount == 0 || record.flags & (Flag.locked | Flag.mapped | Flag.nonpaged | Flag.partial) != 0 {
                return assertion(parameter(call, "mdl"), .exactly(UInt64(record.flags)))
            }
        }
        // On other builds nothing stops it, and the MDL that described a mapping (MappedSystemVa, the
        // PFNs it unmaps by) now describes something else: the model does not follow that.
        if record.flags & Flag.mapped != 0 && record.flags & Flag.nonpaged == 0 {
            return lose("MmBuildMdlForNonPagedPool over an MDL that is mapped (its mapping's description is overwritten)")
        }
        let pages = machine.span(record.va, record.byteCount)
        guard pages <= 4096 else { return lose("huge MmBuildMdlForNonPagedPool") }
        var frames: [Frame?] = []
        for index in 0..<pages {
            let va = (record.startVa &+ index * machine.pageSize) & machine.mask
            let here = place(va)
            var frame: Frame?
            var usable = false
            if case .page(let f, let protection, let residentNow) = here {
                frame = residentNow ? f : nil
                usable = residentNow && protection != "NoAccess"
            }
            if !usable && machine.version >= 5 {
                // Not resident: Windows 8+ checked builds ASSERT, Windows 10 bug-checks (spec §2.6).
                if machine.checked { return assertion(parameter(call, "mdl"), .exactly(UInt64(record.flags))) }
                if machine.version >= 6 { return bugCheck(0x1A, .exactly(0x1240), parameter(call, "mdl"), .exactly(va), .exactly(0)) }
            }
            // Pageable where the MDL sees it: paged pool, or user memory at its user address. A user page
            // seen through a locked MDL's system mapping is not (that PTE is never paged).
            if machine.verifier, case .page(let f, _, _) = here, isPagedPool(f) || (machine.isUser(va) && pageable(f)) {
                return verifier(0x7F, .exactly(irql), parameter(call, "mdl"), .exactly(UInt64(record.flags)))
            }
            // Up to Windows 7 nothing checks residency ([KT-MmMdl], Server 2003): the slot gets the
            // PTE's frame, and a PTE without one gives physical page 0.
            frames.append(frame ?? .unknown(physicalPage: 0))
        }
        record.process = nil
        record.processKnown = true
        record.mappedSystemVa = record.va & machine.mask
        record.pfns = frames
        record.emptiedSlots = 0         // the build rewrites every slot, including ones MmFreePagesFromMdl emptied
        record.flags |= Flag.nonpaged
        if case .device = frames.last ?? nil { record.flags |= Flag.ioSpace }
        mdls[key] = record
        return .returns(.none)
    }

    func predictPrepareMdlForReuse(_ call: Call) -> Prediction {
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        guard let record = mdls[mdlKey(number(call, "mdl"))] else { return lose("MmPrepareMdlForReuse on an unknown MDL") }
        if record.flags & Flag.partialMapped != 0 {
            guard let base = record.mappedSystemVa else { return lose("partial mapping without an address") }
            let mdl = call.argument(named: "mdl") ?? .expression(.null)
            return predictUnmapLockedPages(Call(nil, .mmUnmapLockedPages, [.expression(.literal(base)), mdl]))
        }
        if record.flags & Flag.partial == 0 && record.flags & Flag.mapped != 0 && machine.checked {
            return assertion(parameter(call, "mdl"), .exactly(UInt64(record.flags)))
        }
        return .returns(.none)
    }

    func predictIoFreeMdl(_ call: Call) -> Prediction {
        let address = number(call, "mdl")
        if machine.verifier && irql > 2 { return verifier(0x12, .exactly(irql), .exactly(0), parameter(call, "mdl")) }
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        // Freeing a fixed-size MDL a second time (it is parked on the lookaside) never returns on Windows
        // ([SERGE]: hangs everywhere, crashes on Vista): the conventions' hang bug check.
        if lookaside.contains(address) { return bugCheck(0xE2, .exactly(0), .exactly(0), parameter(call, "mdl"), .exactly(0)) }
        let key = mdlKey(address)
        guard let record = mdls[key] else { return lose("IoFreeMdl of something the model does not know as an MDL") }
        if record.flags & Flag.partialMapped != 0 {
            releaseMapping(key, record)
        } else if record.flags & Flag.partial == 0 && record.flags & Flag.mapped != 0 {
            if machine.verifier { return verifier(0xB8, parameter(call, "mdl"), .exactly(UInt64(record.flags)), .exactly(0)) }
            if machine.checked { return assertion(parameter(call, "mdl"), .exactly(UInt64(record.flags))) }
            return lose("IoFreeMdl of a mapped MDL leaks its PTEs")
        }
        // A locked MDL freed here leaks its locks: frame locks and the process count stay, as NT leaves them.
        mdls[key] = nil
        guard let block = pool[address] else { return lose("IoFreeMdl of an MDL that is not a pool block start") }
        if record.flags & Flag.fixedSize != 0 && !machine.verifier && lookaside.count < 128 {
            // Back to the lookaside list: still allocated from the pool's point of view.
            lookaside.append(address)
            return .returns(.none)
        }
        removeBlock(address)
        poolBytes.nonpaged = poolBytes.nonpaged >= block.size ? poolBytes.nonpaged - block.size : 0
        return .returns(.none)
    }

    func predictBuildPartialMdl(_ call: Call) -> Prediction {
        if let freed = freedSpecialPool(call, "source") ?? freedSpecialPool(call, "target") { return freed }
        // Both MDLs are opened (special-pool checked) before either is read; a NULL one is read at 0.
        if irql <= 2 && (number(call, "source") == 0 || number(call, "target") == 0) {
            return bugCheck(0x1E, .exactly(UInt64(Status.accessViolation)), .exactly(0), .any, .any)
        }
        let sourceKey = mdlKey(number(call, "source")), targetKey = mdlKey(number(call, "target"))
        guard let source = mdls[sourceKey], var target = mdls[targetKey] else { return lose("IoBuildPartialMdl with an unknown MDL") }
        let va = number(call, "va")
        let offset = (va &- source.startVa &- source.byteOffset) & 0xFFFF_FFFF
        var len = number(call, "length") & 0xFFFF_FFFF
        if len == 0 { len = (source.byteCount &- offset) & 0xFFFF_FFFF }
        if machine.version >= 3 && (va < source.va || va &+ len > source.va &+ source.byteCount) {
            return bugCheck(0x12E, parameter(call, "source"), parameter(call, "target"), parameter(call, "va"), .exactly(len))
        }
        let pages = machine.span(va, len)
        let size = target.size
        // The target's Size as an unsigned 16-bit value; a Size below the header holds no slots.
        let slots = size >= machine.headerSize ? (size - machine.headerSize) / machine.pfnSize : 0
        if pages > slots { return bugCheck(0x40) }
        let first = Int(((machine.pageAlign(va) &- source.startVa) & machine.mask) / machine.pageSize)
        guard pages <= 4096, first >= 0, first + Int(pages) <= source.pfns.count else {
            return lose("IoBuildPartialMdl outside the source's PFN array")
        }
        target.startVa = machine.pageAlign(va)
        target.byteOffset = machine.byteOffset(va)
        target.byteCount = len
        target.process = source.process
        target.processKnown = source.processKnown
        target.flags = (target.flags & (Flag.fixedSize | Flag.mustSucceed))
            | (source.flags & (Flag.ioPageRead | Flag.nonpaged | Flag.mapped | Flag.ioSpace)) | Flag.partial
        target.mappedSystemVa = source.mappedSystemVa.map { ($0 &+ offset) & machine.mask }
        target.pfns = Array(source.pfns[first..<first + Int(pages)])
        mdls[targetKey] = target
        return .returns(.none)
    }
}
