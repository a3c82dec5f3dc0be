import LockstepPrograms

/// Arguments at the edges of their parameter domains (`ParameterEdges`): the probe limit, RAM's end,
/// IoAllocateMdl's thresholds, every enumeration's maximum and first invalid value, every combination
/// of the boolean and optional parameters. Each sequence is self-contained: it releases what it made
/// when the call surely succeeded, and otherwise leaves it (a leak is not a finding). The edge values
/// come from the parameters' kinds (GenerationArguments.swift).
extension ProgramBuilder {
    /// MDL construction at the edges of the address and length domains: IoAllocateMdl (every
    /// secondary/quota/irp combination), MmCreateMdl and MmSizeOfMdl over NULL, raw addresses at the
    /// probe limit and in the system half, buffers at byte offsets 0, 1 and PAGE_SIZE-1, pool and
    /// mappings; lengths at the fixed-size threshold, the Size field limit, 2 GiB and 4 GiB.
    mutating func edgeMdl() {
        let c = edgeConstants
        // The length domain's edges (the same for IoAllocateMdl's, MmCreateMdl's and MmSizeOfMdl's length).
        let (_, edgeLength) = random.pick(edges(.ioAllocateMdl, "length"))
        var length = random.chance(70) ? edgeLength : random.pick([1, 0x10, pageSize] as [UInt64])
        var va: Argument
        var vaValue: UInt64? = nil
        switch random.below(7) {
        case 0: va = .null; vaValue = 0
        case 1:
            // Raw addresses: at the probe limit, ending exactly at it, straddling it by one byte, in the other half.
            let probe = c.userProbeAddress
            let choices: [(UInt64, UInt64?)] = [(probe - pageSize, nil), (probe, nil), (c.systemRangeStart + 0x10_0000, nil),
                                                (probe - pageSize, pageSize), (probe - 1, 2), (probe - 0x10, 0x10)]
            let (address, fixed) = random.pick(choices)
            if let fixed { length = fixed }
            va = .literal(address); vaValue = address
        case 2, 3:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            va = ref(buffers[index].name, random.pick([0, 1, pageSize - 1]))
        case 4:
            guard let block = blocks.filter({ $0.alive }).randomElement(using: &random) else { fallthrough }
            va = ref(block.name, random.pick([0, 1] as [UInt64]))
        case 5:
            guard let view = views.randomElement(using: &random) else { fallthrough }
            va = ref(view.name)
        default:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            va = ref(buffers[index].name, pageSize - 1)
        }
        var routine = random.pick([Routine.ioAllocateMdl, .ioAllocateMdl, .mmCreateMdl, .mmSizeOfMdl, .mmInitializeMdl])
        // The byte offset is known for NULL, raw addresses and user buffers (page aligned); elsewhere
        // only short lengths, whose MDL surely fits.
        var offset: UInt64 = vaValue.map { $0 & (pageSize - 1) } ?? 0
        if case .expression(.reference(let name, let delta)) = va {
            if buffers.contains(where: { $0.name == name }) { offset = UInt64(delta) & (pageSize - 1) }
            else if length > pageSize + 1 { length = pageSize + 1; offset = pageSize - 1 }
        }
        // Release the MDL only when it surely exists; never leave a large one behind (it would starve
        // the nonpaged pool the rest of the program needs): a length that may go either way becomes short.
        var outcome = c.mdlAllocation(offset: offset, length: length, create: routine == .mmCreateMdl)
        if outcome == nil && routine == .mmCreateMdl { routine = .mmSizeOfMdl }
        if outcome == nil { length = pageSize; outcome = c.mdlAllocation(offset: offset, length: length) }
        let sure = outcome == true
        let mdl: String
        switch routine {
        case .mmSizeOfMdl:
            call(.mmSizeOfMdl, [va, .literal(length)])
            return
        case .mmInitializeMdl:
            // Caller memory (MmSizeOfMdl bytes of nonpaged pool) for a short range at the address edge,
            // through MmInitializeMdl or MmCreateMdl's MemoryDescriptorList argument; freed at once.
            let short = random.pick([1, pageSize - 1, pageSize] as [UInt64])
            let block = bind(.exAllocatePoolWithTag, [.symbol("NonPagedPool"), .literal(mdlSize(pages: 2))])
            if random.chance(50) {
                call(.mmInitializeMdl, [ref(block), va, .literal(short)])
            } else {
                call(.mmCreateMdl, [ref(block), va, .literal(short)])
            }
            call(.mmGetMdlByteCount, [ref(block)])
            call(.exFreePool, [ref(block)])
            return
        case .mmCreateMdl:
            mdl = bind(.mmCreateMdl, [.null, va, .literal(length)])
        default:
            let secondary = random.chance(50), quota = random.chance(50)
            // An IRP of its own: SecondaryBuffer TRUE only once the IRP has a primary MDL (an empty
            // chain with SecondaryBuffer TRUE crashes Windows).
            if sure && random.chance(40) {
                let irp = bind(.ioAllocateIrp, [])
                if secondary {
                    let primary = ioAllocateMdl(va, length, irp: ref(irp))
                    let secondaryMdl = ioAllocateMdl(va, length, secondary: true, quota: quota, irp: ref(irp))
                    call(.mmGetMdlByteCount, [ref(secondaryMdl)])
                    call(.ioFreeMdl, [ref(secondaryMdl)])
                    call(.ioFreeMdl, [ref(primary)])
                } else {
                    let mdl = ioAllocateMdl(va, length, quota: quota, irp: ref(irp))
                    call(.mmGetMdlByteCount, [ref(mdl)])
                    call(.ioFreeMdl, [ref(mdl)])
                }
                call(.ioFreeIrp, [ref(irp)])
                return
            }
            mdl = ioAllocateMdl(va, length, secondary: secondary, quota: quota)
        }
        guard sure else { return }
        call(random.pick([Routine.mmGetMdlByteCount, .mmGetMdlByteOffset, .mmGetMdlVirtualAddress]), [ref(mdl)])
        call(routine == .mmCreateMdl ? .exFreePool : .ioFreeMdl, [ref(mdl)])
    }

    /// Buffers of every kind (user, pool, a system mapping, I/O space) locked with every access mode and
    /// every lock operation (the maximum and the first invalid one too), then mapped in either mode with
    /// every caching type, requested address and bug-check flag.
    mutating func edgeAccess() {
        var source: Expression
        var user = false, readOnly = false
        var cleanup: [Call] = []
        var room = pageSize
        // Driver Verifier stops a probe of I/O space (0xC4/0x6F): that buffer kind only on other builds.
        switch random.below(edgeConstants.verifier ? 3 : 4) {
        case 0:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            let offset = min(random.pick([0, 1, pageSize - 1] as [UInt64]), buffers[index].size - 1)
            source = .reference(buffers[index].name, offset: Int64(offset))
            room = buffers[index].size - offset
            user = true
            readOnly = buffers[index].readOnly
        case 1:
            let block = bind(.exAllocatePoolWithTag, [enumeration(.exAllocatePoolWithTag, "type", ordinary: ["NonPagedPool"]), .literal(2 * pageSize)])
            source = .reference(block, offset: Int64(random.pick([0, 1] as [UInt64])))
            cleanup.append(Call(nil, .exFreePool, [ref(block)]))
        case 2:
            // A system mapping of a locked MDL that stays locked (its views are live system mappings).
            guard let view = views.filter({ !$0.io && !$0.user && $0.mdl != nil }).randomElement(using: &random) else { return }
            source = .reference(view.name, offset: 0)
            room = max(view.length, 1)
        default:
            let view = bind(.mmMapIoSpace, [.literal(Self.deviceMemory + UInt64(random.below(4)) * pageSize), .literal(2 * pageSize), .symbol("MmNonCached")])
            source = .reference(view, offset: 0)
            cleanup.append(Call(nil, .mmUnmapIoSpace, [ref(view), .literal(2 * pageSize)]))
        }
        let length = min(random.pick([1, pageSize - 1, pageSize] as [UInt64]), room)
        let mdl = ioAllocateMdl(.expression(source), length)
        let userMode = random.chance(user ? 50 : 25)
        let mode: Argument = userMode ? (random.chance(20) ? firstInvalid(.mmProbeAndLockPages, "mode") : .symbol("UserMode")) : .symbol("KernelMode")
        let operation = readOnly ? Argument.symbol("IoReadAccess") : enumeration(.mmProbeAndLockPages, "operation", ordinary: ["IoReadAccess", "IoWriteAccess"], invalid: true)
        call(.mmProbeAndLockPages, [ref(mdl), mode, operation])
        // UserMode over kernel memory raises: the MDL is not locked then.
        if userMode && !user {
            call(.ioFreeMdl, [ref(mdl)])
        } else {
            let mapUser = random.chance(40)
            var mapped = true
            let view: String
            if random.chance(50) {
                // A requested address, only for a kernel mapping, which ignores it (a user mapping that the
                // request makes fail would become one that succeeds, unreleased, under a mutation).
                let requested: UInt64 = !mapUser && random.chance(25) ? edgeConstants.userProbeAddress - pageSize : 0
                mapped = !mapUser || requested == 0
                let routine = Routine.mmMapLockedPagesSpecifyCache
                view = bind(routine, [ref(mdl), .symbol(mapUser ? "UserMode" : "KernelMode"),
                                      enumeration(routine, "cache", ordinary: ["MmCached", "MmNonCached"]), requested == 0 ? .null : .literal(requested),
                                      .boolean(random.chance(50)), enumeration(routine, "priority", ordinary: ["NormalPagePriority"])])
            } else {
                let userMode: Argument = random.chance(20) ? firstInvalid(.mmMapLockedPages, "mode") : .symbol("UserMode")
                view = bind(.mmMapLockedPages, [ref(mdl), mapUser ? userMode : .symbol("KernelMode")])
            }
            if mapUser && mapped { call(.mmUnmapLockedPages, [ref(view), ref(mdl)]) }
            call(.mmUnlockPages, [ref(mdl)])
            if user && random.chance(30) {
                // The MDL reused at the probe limit (a range that ends exactly at MmUserProbeAddress, or
                // starts at it): the UserMode lock raises, and what it leaves in a header that still
                // holds the earlier lock's Process and PFNs is observable.
                let probe = edgeConstants.userProbeAddress
                let (start, length) = random.pick([(probe - pageSize, pageSize), (probe - 0x10, 0x10), (probe, 0x10)] as [(UInt64, UInt64)])
                call(.mmInitializeMdl, [ref(mdl), .literal(start), .literal(length)])
                call(.mmProbeAndLockPages, [ref(mdl), .symbol("UserMode"), .symbol("IoReadAccess")])
            }
            call(.ioFreeMdl, [ref(mdl)])
        }
        calls.append(contentsOf: cleanup)
    }

    /// Physical ranges at the edges of RAM: MmMapIoSpace of device memory and of a pool block's own
    /// frames (with every caching type, the first invalid one included), MmAllocatePagesForMdl with
    /// bounded ranges (Low above zero, High below RAM's end, one page, beyond RAM), HalTranslateBusAddress
    /// with every interface type's edges.
    mutating func edgePhysical() {
        let c = edgeConstants
        switch random.below(3) {
        case 0:
            let invalid = random.chance(15)
            let cache: Argument = invalid ? firstInvalid(.mmMapIoSpace, "cache") : .symbol(random.pick(symbols(.mmMapIoSpace, "cache")))
            var pa: Expression, length: UInt64
            if random.chance(50) {
                // A nonpaged pool block's own frames: RAM the Verifier lets a driver map.
                let block = bind(.exAllocatePoolWithTag, [.symbol("NonPagedPool"), .literal(pageSize)])
                pa = .reference(bind(.mmGetPhysicalAddress, [ref(block)]), offset: 0)
                length = random.pick([1, 0x10, 0x100])
                let view = bind(.mmMapIoSpace, [.expression(pa), .literal(length), cache])
                if !invalid { call(.mmUnmapIoSpace, [ref(view), .literal(length)]) }
                call(.exFreePool, [ref(block)])
                return
            }
            let offset = random.pick([0, 1, pageSize - 1] as [UInt64])
            length = random.pick([1, pageSize - 1, pageSize, pageSize + 1, 2 * pageSize] as [UInt64])
            // x64's PHYSICAL_ADDRESS is all 64 bits: device memory at and across 4 GiB (the HighPart matters).
            if options.machine.architecture == "x64" && random.chance(40) {
                pa = .literal(random.pick([0x1_0000_0000, 0x1_F000_0000, 0xFFFF_F000 + offset]))
            } else {
                pa = .literal(Self.deviceMemory + UInt64(random.below(3)) * pageSize + offset)
            }
            let view = bind(.mmMapIoSpace, [.expression(pa), .literal(length), cache])
            if !invalid { call(.mmUnmapIoSpace, [ref(view), .literal(length)]) }
        case 1:
            let ram = c.ramEnd
            let ranges: [(UInt64, UInt64)] = [(pageSize, ram - 1), (0, ram / 2 - 1), (ram / 2, ram / 2 + pageSize - 1), (0, 0xFFFF_FFFF),
                                              (ram - pageSize, ram - 1), (ram, 0xFFFF_FFFF), (pageSize, 0xFFFF_FFFF), (0, ram - 1)]
            let (low, high) = random.pick(ranges)
            let skip = random.pick([0, 0, pageSize] as [UInt64])
            let total = random.pick([pageSize, pageSize - 1, pageSize + 1, 3 * pageSize] as [UInt64])
            let mdl = bind(.mmAllocatePagesForMdl, [.literal(low), .literal(high), .literal(skip), .literal(total)])
            if surelyGrants(low: low, high: high, pages: (total + pageSize - 1) / pageSize) {
                call(.mmFreePagesFromMdl, [ref(mdl)])
                call(.exFreePool, [ref(mdl)])
            }
        default:
            let interfaces = symbols(.halTranslateBusAddress, "interface")
            let type: Argument = random.chance(30) ? firstInvalid(.halTranslateBusAddress, "interface") : .symbol(random.pick([interfaces.first!, interfaces.last!, "PCIBus", "Isa"]))
            let bus = random.pick([0, 1, 0xFFFF_FFFF] as [UInt64])
            let raw = random.pick([0, 0xF000_0000, c.ramEnd - pageSize, c.ramEnd, 0xFFFF_FFFF] as [UInt64])
            let address: Argument = random.chance(20) && !physical.isEmpty ? ref(random.pick(physical)) : .literal(raw)
            let space = random.pick([0, 1, 0xFFFF_FFFF] as [UInt64])
            call(.halTranslateBusAddress, [type, .literal(bus), address, .literal(space)])
        }
    }

    /// A virtual address at one of its domain's edges: NULL, a raw address at the probe limit or in the
    /// system half, a user buffer, a pool block or a live mapping, at byte offsets 0, 1 and PAGE_SIZE-1.
    mutating func edgeAddress() -> Argument? {
        switch random.below(5) {
        case 0: return .null
        case 1: return .literal(random.pick(edges(.mmGetPhysicalAddress, "va")).1)
        case 2: return liveBuffers.randomElement(using: &random).map { ref(buffers[$0].name, random.pick([0, 1, pageSize - 1])) }
        case 3: return blocks.filter({ $0.alive }).randomElement(using: &random).map { ref($0.name, random.pick([0, 1] as [UInt64])) }
        default: return views.randomElement(using: &random).map { ref($0.name) }
        }
    }

    /// Queries that read no memory of the caller at every edge of the address domain: MmGetPhysicalAddress,
    /// MmIsAddressValid, MmSizeOfMdl; and HalTranslateBusAddress of a physical address the program got.
    mutating func edgeQuery() {
        guard let va = edgeAddress() else { return }
        switch random.below(3) {
        case 0: call(.mmGetPhysicalAddress, [va])
        case 1: call(.mmIsAddressValid, [va])
        default: call(.mmSizeOfMdl, [va, .literal(random.pick(edges(.mmSizeOfMdl, "length")).1)])
        }
    }

    /// The remaining enumerations at their edges: IRQLs (APC_LEVEL, HIGH_LEVEL, the first invalid level),
    /// pool types and user-buffer protections.
    mutating func edgeEnums() {
        switch random.below(3) {
        case 0:
            let level: Argument = random.chance(25) ? firstInvalid(.keRaiseIrql, "irql") : .symbol(random.pick(["APC_LEVEL", "HIGH_LEVEL"]))
            call(.keRaiseIrql, [level])
            call(.keLowerIrql, [.symbol("PASSIVE_LEVEL")])
        case 1:
            if random.chance(30) {
                // Paged pool at the length edges: past 2 GiB surely NULL (nothing to free).
                let size = random.pick(edges(.exAllocatePoolWithTag, "size").filter { $0.1 > 2 * pageSize && $0.1 < 0x8000_0000 || $0.1 >= 0x8000_0000 }).1
                let block = bind(.exAllocatePoolWithTag, [.symbol("PagedPool"), .literal(size)])
                if size < 0x8000_0000 && size <= edgeConstants.fixedSizePages * pageSize + 1 { call(.exFreePool, [ref(block)]) }
                return
            }
            let block = bind(.exAllocatePoolWithTag, [enumeration(.exAllocatePoolWithTag, "type", ordinary: ["PagedPool", "NonPagedPool"], invalid: true),
                                                      .literal(random.pick([1, pageSize - 1, pageSize, pageSize + 1] as [UInt64]))])
            call(.exFreePool, [ref(block)])
        default:
            let protection: Argument = random.chance(30) ? firstInvalid(.allocateUserBuffer, "protect") : .symbol("NoAccess")
            let buffer = bind(.allocateUserBuffer, [.literal(random.pick([1, pageSize] as [UInt64])), protection])
            call(.freeUserBuffer, [ref(buffer)])
        }
    }
}
