import LockstepPrograms

/// The actions that map and unmap: system and user mappings of locked MDLs, device memory
/// (MmMapIoSpace), bus addresses, and pages allocated for an MDL.
extension ProgramBuilder {
    /// MmGetSystemAddressForMdlSafe of a locked MDL. Now and then it asks again for an MDL that is
    /// already mapped (legal and common in drivers: the call returns its MappedSystemVa, no second
    /// mapping, no PTEs), which is why it draws before it looks for an MDL.
    mutating func mapSafe() {
        if random.chance(20), let index = pickMdl(where: \.isMapped) {
            if random.chance(50) {
                call(.mmGetSystemAddressForMdl, [ref(mdls[index].name)])
            } else {
                call(.mmGetSystemAddressForMdlSafe, [ref(mdls[index].name), .symbol("NormalPagePriority")])
            }
            return
        }
        guard let index = pickMdl(where: \.isMappable) else { return }
        let priority = random.pick(symbols(.mmGetSystemAddressForMdlSafe, "priority"))
        systemMapping(bind(.mmGetSystemAddressForMdlSafe, [ref(mdls[index].name), .symbol(priority)]), of: index)
    }

    /// The legacy macro or MmMapLockedPagesSpecifyCache in kernel mode.
    mutating func mapLegacy(_ index: Int) {
        let mdl = mdls[index].name
        let view: String
        if random.chance(40) {
            // The legacy macro: maps with MmMapLockedPages, which bug-checks (0x3F) when out of PTEs,
            // unless the driver sets MDL_MAPPING_CAN_FAIL around it (the NT 4.0 idiom): then NULL.
            let canFail = random.chance(40)
            if canFail { call(.setMdlFlags, [ref(mdl), .literal(Self.mappingCanFail)]) }
            view = bind(.mmGetSystemAddressForMdl, [ref(mdl)])
            if canFail { call(.clearMdlFlags, [ref(mdl), .literal(Self.mappingCanFail)]) }
        } else {
            // Every caching type and priority (their edges too), and BugCheckOnFailure now and then.
            let routine = Routine.mmMapLockedPagesSpecifyCache
            view = bind(routine, [ref(mdl), .symbol("KernelMode"), enumeration(routine, "cache", ordinary: ["MmCached", "MmNonCached", "MmWriteCombined"]),
                                  .null, .boolean(random.chance(20)), enumeration(routine, "priority", ordinary: ["NormalPagePriority"])])
        }
        systemMapping(view, of: index)
    }

    /// Records the system mapping `view` of MDL `index`.
    mutating func systemMapping(_ view: String, of index: Int) {
        mdls[index].mapping = view
        views.append(View(name: view, mdl: mdls[index].name, length: mdls[index].length, io: false))
    }

    mutating func mapUser(_ index: Int) {
        let view: String
        if random.below(2) == 0 {
            view = bind(.mmMapLockedPages, [ref(mdls[index].name), .symbol("UserMode")])
        } else {
            // SpecifyCache in user mode: the page's own caching wins over the request for RAM.
            view = bind(.mmMapLockedPagesSpecifyCache, [ref(mdls[index].name), .symbol("UserMode"), .symbol(random.pick(["MmCached", "MmNonCached", "MmWriteCombined"])),
                                                        .null, .boolean(false), .symbol("NormalPagePriority")])
        }
        views.append(View(name: view, mdl: mdls[index].name, length: mdls[index].length, io: false, user: true))
    }

    /// Removes one MDL mapping: MmUnmapLockedPages, or MmPrepareMdlForReuse for a partial MDL's own.
    mutating func unmap(_ viewIndex: Int) {
        let view = views[viewIndex]
        guard let index = mdls.firstIndex(where: { $0.name == view.mdl && $0.alive }) else { return }
        if mdls[index].partial && mdls[index].mapping == view.name {
            call(.mmPrepareMdlForReuse, [ref(mdls[index].name)])
        } else {
            call(.mmUnmapLockedPages, [ref(view.name), ref(mdls[index].name)])
        }
        if mdls[index].mapping == view.name { mdls[index].mapping = nil }
        views.removeAll { $0.name == view.name }
    }

    mutating func ioSpace() {
        let offset = UInt64(random.below(4)) * pageSize + random.pick([0, 0x10, pageSize - 1])
        let length = random.pick([1, 0x10, pageSize, pageSize + 1, 2 * pageSize])
        let view = bind(.mmMapIoSpace, [.literal(Self.deviceMemory + offset), .literal(length),
                                        enumeration(.mmMapIoSpace, "cache", ordinary: ["MmNonCached", "MmCached", "MmWriteCombined"])])
        views.append(View(name: view, mdl: nil, length: length, io: true))
    }

    mutating func unmapIoSpace(_ index: Int) {
        let view = views[index]
        call(.mmUnmapIoSpace, [ref(view.name), .literal(view.length)])
        views.removeAll { $0.name == view.name }
    }

    mutating func translate() {
        let cases: [(String, UInt64, UInt64, UInt64)] = [("PCIBus", 0, 0xF000_0000, 0), ("PCIBus", 1, 0x4000_0010, 0), ("Isa", 0, 0x3F8, 1),
                                                        ("Isa", 0, 0x200_0000, 0), ("Eisa", 0, 0x1_0000, 1), ("MicroChannel", 0, 0x1000, 0), ("PCIBus", 7, 0, 0)]
        let (type, bus, address, space) = random.pick(cases)
        call(.halTranslateBusAddress, [.symbol(type), .literal(bus), .literal(address), .literal(space)])
    }

    mutating func allocatePages() {
        // 35 % of the time a bounded physical range (GenerationPageRanges.swift), else all of RAM.
        if random.chance(35) { return allocatePagesInBoundedRange() }
        let total = random.pick([pageSize, 3 * pageSize, pageSize + 1] as [UInt64])
        let name = bind(.mmAllocatePagesForMdl, [.literal(0), .literal(0xFFFF_FFFF), .literal(0), .literal(total)])
        var mdl = Mdl(name: name, base: .literal(0), length: total, span: (total + pageSize - 1) / pageSize, overPool: true, capacity: 0, locked: true)
        mdl.allocatedPages = true
        mdls.append(mdl)
    }

    mutating func freePages(_ index: Int) {
        // From Windows 7 MmFreePagesFromMdl also releases a system mapping left in place: half the
        // time there, the driver relies on that (user mappings it still removes first).
        let releasesMapping = ["6.1", "6.2", "10.0"].contains(options.machine["version"] ?? "")
        if releasesMapping && mdls[index].mapping != nil && random.below(2) == 0 {
            unmapUserViews(of: mdls[index].name)
            dropViews(of: mdls[index].name, systemOnly: true)
        } else {
            unmapAllViews(of: mdls[index].name)
        }
        mdls[index].mapping = nil
        call(.mmFreePagesFromMdl, [ref(mdls[index].name)])
        call(.exFreePool, [ref(mdls[index].name)])
        mdls[index].alive = false
    }
}
