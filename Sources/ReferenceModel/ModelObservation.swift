import LockstepPrograms

/// The model's half of the state comparison: what a driver could observe, built from the model's own
/// records (never from the engine). Where the model cannot know a value it leaves the field nil, so
/// the comparison counts it as unknown rather than trusting either side.
extension ReferenceModel {
    /// PFN slots and mapping pages compared per object; longer spans are compared up to this many.
    static let observedPagesLimit = 512

    /// The projection of the model's state, for `scope`; nil when the model has stopped following the
    /// program (it then predicts nothing either).
    public func observableState(_ scope: ObservationScope) -> ObservableState? {
        if lostTrack != nil || halted { return nil }
        var state = ObservableState()
        // A call names a handful of objects: a plain array searches them faster than a set is built.
        let wanted: [UInt64]?
        switch scope {
        case .full:
            wanted = nil
            state.isFull = true
        case .objects(let addresses):
            wanted = addresses.map { $0 & machine.mask }
        }
        if let wanted {
            // An address a call names is an MDL in the current process's view, as the call saw it.
            for address in wanted {
                let key = mdlKey(address)
                guard let record = mdls[key] else { continue }
                state.mdls[ObservedMdlKey(address: key.address, process: key.process)] = observe(key, record)
            }
        } else {
            for (key, record) in mdls { state.mdls[ObservedMdlKey(address: key.address, process: key.process)] = observe(key, record) }
        }
        func inScope(_ mapping: Mapping) -> Bool {
            guard let wanted else { return true }
            return wanted.contains(mapping.base) || mapping.mdl.map { wanted.contains($0.address) } == true
                || wanted.contains { machine.pageAlign($0) == mapping.base }
        }
        for mapping in mappings.values where inScope(mapping) {
            state.mappings[ObservedMappingKey(base: mapping.base, process: nil)] = observe(mapping)
        }
        for (process, views) in userMappings {
            for mapping in views.values where inScope(mapping) {
                state.mappings[ObservedMappingKey(base: mapping.base, process: process)] = observe(mapping)
            }
        }
        state.lockedPageCharges.reserveCapacity(processes.count)
        for (id, process) in processes where !process.terminated {
            state.lockedPageCharges.append(ObservedCharge(process: id, lockedPages: process.lockedPages))
        }
        state.lockedPageCharges.sort { $0.process < $1.process }
        state.systemLockedPages = systemLocks
        state.systemPtesInUse = ptesInUse
        state.nonpagedPoolBytes = poolBytes.nonpaged
        state.pagedPoolBytes = poolBytes.paged
        state.allocatedPageRanges = allocatedRanges
        for irp in irps where wanted?.contains(irp) ?? true { state.irpChains[irp] = chain(irp) }
        guard wanted == nil else { return state }
        // The inventories, in full observations only.
        state.frameLocks = Dictionary(uniqueKeysWithValues: locks.filter { $0.value > 0 }.map { (name($0.key), $0.value) })
        // A created process's EPROCESS is a pool block whose address no call returns.
        state.nonpagedPoolBlocks = hiddenBlocks ? nil : pool.values.filter { !$0.paged }.map(\.base).sorted()
        return state
    }

    /// How a page is named to the comparison: by where it is mapped while that address still names it.
    func name(_ frame: Frame) -> FrameName {
        switch frame {
        case .user(let buffer, let index):
            guard let owner = buffers[buffer], owner.alive else { return .detached(token: UInt64(buffer) << 32 | index) }
            return .virtual(process: owner.process, va: owner.base + index * machine.pageSize)
        case .system(let vpn): return .virtual(process: nil, va: vpn * machine.pageSize)
        case .device(let pfn): return .physical(page: pfn)
        case .allocated(let batch, let index): return .allocated(batch: batch, index: Int(index))
        case .unknown(let page): return .physical(page: page)
        }
    }

    /// A frame's name where the page is certain to still be that frame: it is locked, or it can never
    /// be paged out (nonpaged pool, device memory, pages MmAllocatePagesForMdl handed out). A pageable
    /// unlocked page may have moved since the MDL or mapping captured its PFN: unknown.
    func stableName(_ frame: Frame?) -> FrameName? {
        guard let frame else { return nil }
        if pageable(frame) && (locks[frame] ?? 0) == 0 { return nil }
        return name(frame)
    }

    private func observe(_ key: MdlKey, _ record: MdlRecord) -> ObservedMdl {
        var mdl = ObservedMdl()
        mdl.next = nextLink[key.address] ?? 0
        mdl.size = UInt16(truncatingIfNeeded: record.size)
        mdl.flags = record.flags
        if record.processKnown { mdl.process = record.process.map { .process($0) } ?? .null }
        // MappedSystemVa means something only while the MDL is mapped or describes nonpaged pool; any
        // other time it holds whatever was left there.
        if record.flags & (Flag.mapped | Flag.nonpaged) != 0 { mdl.mappedSystemVa = record.mappedSystemVa }
        mdl.startVa = record.startVa
        mdl.byteCount = record.byteCount
        mdl.byteOffset = record.byteOffset
        // The PFN array describes pages only once a routine filled it (locked, nonpaged, partial of
        // either, or pages handed out by MmAllocatePagesForMdl).
        if record.flags & (Flag.locked | Flag.nonpaged | Flag.partial) != 0 || record.allocatedPages {
            let span = Int(min(machine.span(record.va, record.byteCount), UInt64(Self.observedPagesLimit)))
            mdl.pfns = (0..<span).map { index in
                // MmFreePagesFromMdl leaves (PFN_NUMBER)-1 in the slots of the pages it freed (spec §2.20).
                if index < record.emptiedSlots { return .empty }
                guard index < record.pfns.count, let name = stableName(record.pfns[index]) else { return nil }
                // A slot is a PFN_NUMBER, a ULONG on 32-bit machines: a device page past 2^44 keeps its low 32 bits.
                if case .physical(let page) = name, !machine.pointer64 { return page & 0xFFFF_FFFF == 0xFFFF_FFFF ? .empty : .physical(page: page & 0xFFFF_FFFF) }
                return name
            }
        }
        return mdl
    }

    private func observe(_ mapping: Mapping) -> ObservedMapping {
        var view = ObservedMapping(kind: mapping.io ? .ioSpace : mapping.process == nil ? .mdlSystem : .mdlUser)
        let usable = min(mapping.frames.count, Self.observedPagesLimit)
        view.pages = mapping.process == nil ? mapping.ptes : UInt64(mapping.frames.count)
        view.frames = mapping.frames.prefix(usable).map { stableName($0) }
        view.valid = mapping.frames.prefix(usable).map { $0 == nil ? nil : true }
        // Every mapping these routines make is read/write (spec §2.9: the user VAD is READWRITE).
        view.writable = mapping.frames.prefix(usable).map { $0 == nil ? nil : true }
        // MDL and I/O-space mappings are never working-set pages (spec §2.9: a physical-memory VAD in
        // user space, system PTEs in kernel space).
        view.pageable = mapping.frames.prefix(usable).map { $0 == nil ? nil : false }
        view.caching = mapping.frames.prefix(usable).map { frame in
            guard let frame else { return nil }
            // A user mapping takes the page's own attribute where the page has one: RAM is cached
            // (spec §2.9 step 3); device memory has no PFN entry, so the request stands.
            if mapping.process != nil, case .device = frame { return mapping.cache }
            if mapping.process != nil { return .writeBack }
            return mapping.cache
        }
        return view
    }

    /// Irp->MdlAddress and the Next links after it, up to NULL; the chain stops being known at an MDL
    /// that is no longer live (IoFreeMdl does not unlink it, and its block may hold anything now).
    private func chain(_ irp: UInt64) -> ObservedChain {
        var links: [UInt64] = []
        var current = irpHead[irp] ?? 0
        while current != 0 {
            if links.contains(current) || links.count >= 64 { return ObservedChain(links: links, endsInNull: false) }
            links.append(current)
            guard mdls[MdlKey(address: current, process: nil)] != nil else { return ObservedChain(links: links, endsInNull: false) }
            current = nextLink[current] ?? 0
        }
        return ObservedChain(links: links, endsInNull: true)
    }
}
