import LockstepPrograms

/// The deliberately wrong calls a program may end with (a tunable share of programs,
/// `GenerationOptions.misusePercent`), each one a driver bug Windows or Driver Verifier catches.
enum Misuse: CaseIterable {
    /// MmUnlockPages of an MDL that is not locked.
    case unlockUnlocked
    /// IoFreeMdl (or ExFreePool) of an MDL already freed.
    case freeTwice
    /// MmUnmapLockedPages of an address that is not the MDL's mapping.
    case unmapWrong
    /// A routine called above the IRQL it allows.
    case highIrql
    /// MmProbeAndLockPages for write of a read-only buffer.
    case readOnlyWrite
    /// IoAllocateMdl of a length at or past the limits.
    case limitLength
    /// MmProbeAndLockPages in UserMode of kernel memory.
    case userModeKernelAddress
    /// A process ends while a driver still has its pages locked (PROCESS_HAS_LOCKED_PAGES).
    case endProcessWithLockedPages
    /// MmUnmapLockedPages of an address inside the mapping instead of its start.
    case unmapInside
    /// MmUnmapIoSpace with an offset into the mapping or a shorter length than it was mapped with.
    case unmapIoPartial

    /// The misuse written instead when the program has nothing to misuse this way. The chain ends in
    /// `unmapIoPartial`, which is always possible.
    var fallback: Misuse? {
        switch self {
        case .unlockUnlocked: .freeTwice
        case .freeTwice: .unmapWrong
        case .unmapWrong: .unmapInside
        case .unmapInside: .unmapIoPartial
        default: nil
        }
    }
}

/// A routine called above the IRQL it allows (Driver Verifier's IRQL checks, spec §4.2).
enum HighIrqlCall: CaseIterable {
    case allocateMdl, unmapIoSpace, mapIoSpace, probe, createMdl, pagedPool, mapUser, unlock, sizeOf
}

/// The deliberate part of a program: one wrong call at the end and the fault plan.
extension ProgramBuilder {
    /// One deliberately wrong call at the end of the program.
    mutating func misuse() {
        var misuse = random.pick(Misuse.allCases)
        while !write(misuse), let next = misuse.fallback { misuse = next }
    }

    /// Writes `misuse`; false, with nothing drawn or written, when the program has nothing to misuse
    /// that way.
    mutating func write(_ misuse: Misuse) -> Bool {
        switch misuse {
        case .unlockUnlocked:
            guard let mdl = mdls.first(where: { $0.alive && !$0.locked && !$0.overPool }) else { return false }
            call(.mmUnlockPages, [ref(mdl.name)])
        case .freeTwice:
            guard let mdl = mdls.first(where: { !$0.alive && !$0.allocatedPages }) else { return false }
            call(mdl.poolBlock ? .exFreePool : .ioFreeMdl, [ref(mdl.name)])
        case .unmapWrong:
            guard let mdl = mdls.first(where: { $0.alive && $0.locked && $0.mapping == nil }) else { return false }
            call(.mmUnmapLockedPages, [.literal(0xC100_0000), ref(mdl.name)])
        case .unmapInside:
            // An address inside the mapping instead of its start (a partial or unaligned unmap).
            guard let view = views.first(where: { !$0.io && $0.mdl != nil }), let mdl = view.mdl,
                  mdls.contains(where: { $0.name == mdl && $0.alive }) else { return false }
            call(.mmUnmapLockedPages, [ref(view.name, view.length > pageSize ? random.pick([1, pageSize]) : 1), ref(mdl)])
        case .unmapIoPartial:
            let view = views.first { $0.io }
                ?? View(name: bind(.mmMapIoSpace, [.literal(Self.deviceMemory), .literal(2 * pageSize), .symbol("MmNonCached")]), mdl: nil, length: 2 * pageSize, io: true)
            let choices: [(UInt64, UInt64)] = [(pageSize, max(view.length, pageSize + 1) - pageSize), (1, max(view.length, 2) - 1), (0, 1), (pageSize - 1, 2)]
            let (offset, length) = random.pick(choices)
            call(.mmUnmapIoSpace, [ref(view.name, offset), .literal(max(length, 1))])
        case .highIrql:
            highIrqlCall()
        case .readOnlyWrite:
            let buffer = bind(.allocateUserBuffer, [.literal(pageSize), .symbol("ReadOnly")])
            let mdl = ioAllocateMdl(ref(buffer), pageSize)
            call(.mmProbeAndLockPages, [ref(mdl), .symbol("KernelMode"), .symbol("IoWriteAccess")])
        case .endProcessWithLockedPages:
            let process = bind(.createProcess, [])
            call(.attachProcess, [ref(process)])
            let buffer = bind(.allocateUserBuffer, [.literal(2 * pageSize), .symbol("ReadWrite")])
            let mdl = ioAllocateMdl(ref(buffer, 0x10), pageSize)
            call(.mmProbeAndLockPages, [ref(mdl), .symbol("KernelMode"), .symbol("IoReadAccess")])
            call(.attachProcess, [.literal(Self.bootProcess)])
            call(.terminateProcess, [ref(process)])
        case .limitLength:
            call(.ioAllocateMdl, [.literal(0x1_0001), .literal(random.pick([0, 0xFFFF_FFFF, 0xFFFF_F001, 0x3FF_8000])),
                                  .boolean(false), .boolean(false), .null])
        case .userModeKernelAddress:
            let block = bind(.exAllocatePoolWithTag, [.symbol("NonPagedPool"), .literal(0x100)])
            let mdl = ioAllocateMdl(ref(block), 0x100)
            call(.mmProbeAndLockPages, [ref(mdl), .symbol("UserMode"), .symbol("IoReadAccess")])
        }
        return true
    }

    /// A routine called above the IRQL it allows (Driver Verifier's IRQL checks, spec §4.2). The level
    /// and the routine are drawn; whether it is legal there is the model's business, not the generator's.
    /// A routine with nothing to act on becomes IoAllocateMdl.
    mutating func highIrqlCall() {
        let level = random.pick(["DISPATCH_LEVEL", "DISPATCH_LEVEL", "HIGH_LEVEL"])
        let user = liveBuffers.first.map { buffers[$0].name }
        let unlocked = mdls.first { $0.alive && !$0.locked && !$0.overPool && !$0.poolBlock }
        let lockedMdl = mdls.first { $0.alive && $0.locked && !$0.partial }
        var io = views.first { $0.io }
        let kind = random.pick(HighIrqlCall.allCases)
        if kind == .unmapIoSpace && io == nil {
            io = View(name: bind(.mmMapIoSpace, [.literal(Self.deviceMemory), .literal(pageSize), .symbol("MmNonCached")]), mdl: nil, length: pageSize, io: true)
        }
        call(.keRaiseIrql, [.symbol(level)])
        switch kind {
        case .unmapIoSpace:
            call(.mmUnmapIoSpace, [ref(io!.name), .literal(io!.length)])
        case .mapIoSpace:
            call(.mmMapIoSpace, [.literal(Self.deviceMemory + 0x1000), .literal(pageSize), .symbol("MmCached")])
        case .probe where unlocked != nil:
            call(.mmProbeAndLockPages, [ref(unlocked!.name), .symbol("KernelMode"), .symbol("IoReadAccess")])
        case .createMdl where user != nil:
            call(.mmCreateMdl, [.null, ref(user!), .literal(pageSize)])
        case .pagedPool:
            call(.exAllocatePoolWithTag, [.symbol("PagedPool"), .literal(0x40)])
        case .mapUser where lockedMdl != nil:
            call(.mmMapLockedPagesSpecifyCache, [ref(lockedMdl!.name), .symbol("UserMode"), .symbol("MmCached"), .null,
                                                 .boolean(false), .symbol("NormalPagePriority")])
        case .unlock where lockedMdl != nil:
            call(.mmUnlockPages, [ref(lockedMdl!.name)])
        case .sizeOf where user != nil:
            call(.mmSizeOfMdl, [ref(user!), .literal(pageSize)])
        default:
            call(.ioAllocateMdl, [.literal(0x1_0000), .literal(0x10), .boolean(false), .boolean(false), .null])
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
