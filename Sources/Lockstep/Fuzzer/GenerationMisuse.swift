import LockstepPrograms

/// The deliberate part of a program: one wrong call at the end (a tunable share of programs) and the
/// fault plan.
extension ProgramBuilder {
    /// One deliberately wrong call at the end of the program.
    mutating func misuse() {
        let kinds = ["unlockUnlocked", "freeTwice", "unmapWrong", "highIrql", "readOnlyWrite", "limitLength", "userModeKernelAddress",
                     "endProcessWithLockedPages", "unmapInside", "unmapIoPartial"]
        switch random.pick(kinds) {
        case "unlockUnlocked":
            guard let mdl = mdls.first(where: { $0.alive && !$0.locked && !$0.overPool }) else { fallthrough }
            append(nil, .mmUnlockPages, [ref(mdl.name)])
        case "freeTwice":
            guard let mdl = mdls.first(where: { !$0.alive && !$0.allocatedPages }) else { fallthrough }
            append(nil, mdl.poolBlock ? .exFreePool : .ioFreeMdl, [ref(mdl.name)])
        case "unmapWrong":
            guard let mdl = mdls.first(where: { $0.alive && $0.locked && $0.mapping == nil }) else { fallthrough }
            append(nil, .mmUnmapLockedPages, [.expression(.literal(0xC100_0000)), ref(mdl.name)])
        case "unmapInside":
            // An address inside the mapping instead of its start (a partial or unaligned unmap).
            guard let view = views.first(where: { !$0.io && $0.mdl != nil }), let mdl = view.mdl,
                  mdls.contains(where: { $0.name == mdl && $0.alive }) else { fallthrough }
            append(nil, .mmUnmapLockedPages, [ref(view.name, view.length > pageSize ? random.pick([1, pageSize]) : 1), ref(mdl)])
        case "unmapIoPartial":
            // MmUnmapIoSpace with an offset into the mapping or a shorter length than it was mapped with.
            var io = views.first { $0.io }
            if io == nil {
                append(nil, .mmMapIoSpace, [.expression(.literal(0xF000_0000)), .expression(.literal(2 * pageSize)), .symbol("MmNonCached")], result: "v")
                io = View(name: lastName, mdl: nil, length: 2 * pageSize, io: true)
            }
            let view = io!
            let choices: [(UInt64, UInt64)] = [(pageSize, max(view.length, pageSize + 1) - pageSize), (1, max(view.length, 2) - 1), (0, 1), (pageSize - 1, 2)]
            let (offset, length) = random.pick(choices)
            append(nil, .mmUnmapIoSpace, [ref(view.name, offset), .expression(.literal(max(length, 1)))])
        case "highIrql":
            highIrqlCall()
        case "readOnlyWrite":
            append(nil, .allocateUserBuffer, [.expression(.literal(pageSize)), .symbol("ReadOnly")], result: "b")
            let buffer = lastName
            append(nil, .ioAllocateMdl, [ref(buffer), .expression(.literal(pageSize)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
            append(nil, .mmProbeAndLockPages, [ref(lastName), .symbol("KernelMode"), .symbol("IoWriteAccess")])
        case "endProcessWithLockedPages":
            // A process ends while a driver still has its pages locked (PROCESS_HAS_LOCKED_PAGES).
            append(nil, .createProcess, [], result: "r")
            let process = lastName
            append(nil, .attachProcess, [ref(process)], result: "x")
            append(nil, .allocateUserBuffer, [.expression(.literal(2 * pageSize)), .symbol("ReadWrite")], result: "b")
            let buffer = lastName
            append(nil, .ioAllocateMdl, [ref(buffer, 0x10), .expression(.literal(pageSize)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
            append(nil, .mmProbeAndLockPages, [ref(lastName), .symbol("KernelMode"), .symbol("IoReadAccess")])
            append(nil, .attachProcess, [.expression(.literal(8))], result: "x")
            append(nil, .terminateProcess, [ref(process)], result: "x")
        case "limitLength":
            append(nil, .ioAllocateMdl, [.expression(.literal(0x1_0001)), .expression(.literal(random.pick([0, 0xFFFF_FFFF, 0xFFFF_F001, 0x3FF_8000]))),
                                         .boolean(false), .boolean(false), .expression(.null)], result: "m")
        default:
            append(nil, .exAllocatePoolWithTag, [.symbol("NonPagedPool"), .expression(.literal(0x100))], result: "p")
            append(nil, .ioAllocateMdl, [ref(lastName), .expression(.literal(0x100)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
            append(nil, .mmProbeAndLockPages, [ref(lastName), .symbol("UserMode"), .symbol("IoReadAccess")])
        }
    }

    /// A routine called above the IRQL it allows (Driver Verifier's IRQL checks, spec §4.2). The level
    /// and the routine are drawn; whether it is legal there is the model's business, not the generator's.
    mutating func highIrqlCall() {
        let level = random.pick(["DISPATCH_LEVEL", "DISPATCH_LEVEL", "HIGH_LEVEL"])
        let user = liveBuffers.first.map { buffers[$0].name }
        let unlocked = mdls.first { $0.alive && !$0.locked && !$0.overPool && !$0.poolBlock }
        let lockedMdl = mdls.first { $0.alive && $0.locked && !$0.partial }
        var io = views.first { $0.io }
        let kinds = ["allocateMdl", "unmapIoSpace", "mapIoSpace", "probe", "createMdl", "pagedPool", "mapUser", "unlock", "sizeOf"]
        let kind = random.pick(kinds)
        if kind == "unmapIoSpace" && io == nil {
            append(nil, .mmMapIoSpace, [.expression(.literal(0xF000_0000)), .expression(.literal(pageSize)), .symbol("MmNonCached")], result: "v")
            io = View(name: lastName, mdl: nil, length: pageSize, io: true)
        }
        append(nil, .keRaiseIrql, [.symbol(level)])
        switch kind {
        case "unmapIoSpace":
            append(nil, .mmUnmapIoSpace, [ref(io!.name), .expression(.literal(io!.length))])
        case "mapIoSpace":
            append(nil, .mmMapIoSpace, [.expression(.literal(0xF000_1000)), .expression(.literal(pageSize)), .symbol("MmCached")], result: "v")
        case "probe" where unlocked != nil:
            append(nil, .mmProbeAndLockPages, [ref(unlocked!.name), .symbol("KernelMode"), .symbol("IoReadAccess")])
        case "createMdl" where user != nil:
            append(nil, .mmCreateMdl, [.expression(.null), ref(user!), .expression(.literal(pageSize))], result: "m")
        case "pagedPool":
            append(nil, .exAllocatePoolWithTag, [.symbol("PagedPool"), .expression(.literal(0x40))], result: "p")
        case "mapUser" where lockedMdl != nil:
            append(nil, .mmMapLockedPagesSpecifyCache, [ref(lockedMdl!.name), .symbol("UserMode"), .symbol("MmCached"), .expression(.null),
                                                         .boolean(false), .symbol("NormalPagePriority")], result: "v")
        case "unlock" where lockedMdl != nil:
            append(nil, .mmUnlockPages, [ref(lockedMdl!.name)])
        case "sizeOf" where user != nil:
            append(nil, .mmSizeOfMdl, [ref(user!), .expression(.literal(pageSize))], result: "x")
        default:
            append(nil, .ioAllocateMdl, [.expression(.literal(0x1_0000)), .expression(.literal(0x10)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
        }
    }

    /// One or two fault lines: the nth (or every after the nth) decision of a kind fails, or page-ins of
    /// one page of the first buffer fail.
    mutating func faultPlan() -> [FaultLine] {
        var lines: [FaultLine] = []
        for _ in 0..<(1 + random.below(2)) {
            let kind = random.pick(["pool.nonpaged", "pool.nonpaged", "ptes", "frame", "frame", "pagein", "pool.paged"])
            var settings: [Setting]
            if kind == "pagein" && random.chance(50) {
                settings = [Setting("page", "b0+\(hex(UInt64(random.below(4)) * pageSize))")]
            } else if random.chance(25) {
                settings = [Setting("after", "\(random.below(6))")]
            } else {
                settings = [Setting("nth", "\(1 + random.below(kind == "frame" ? 10 : 4))")]
            }
            if kind == "pagein" && random.chance(50) { settings.append(Setting("status", "STATUS_DEVICE_DATA_ERROR")) }
            lines.append(FaultLine(kind: kind, settings: settings))
        }
        return lines
    }
}
