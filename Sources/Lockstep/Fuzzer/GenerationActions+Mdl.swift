import LockstepPrograms

/// The actions on MDLs: build them (over a buffer, pool, device memory, caller memory or for an IRP),
/// lock and unlock them, build partial MDLs, query and free them.
extension ProgramBuilder {
    mutating func allocateMdl(over index: Int) { mdl(over: index, routine: .ioAllocateMdl) }

    mutating func createMdl(over index: Int) { mdl(over: index, routine: .mmCreateMdl) }

    /// An MDL over part of a user buffer (IoAllocateMdl or MmCreateMdl); now and then a long one.
    mutating func mdl(over index: Int, routine: Routine) {
        let buffer = buffers[index]
        if random.chance(8) { return longMdl(over: buffer.name, create: routine == .mmCreateMdl) }
        let (offset, length) = offsetAndLength(within: buffer.size)
        let name = routine == .ioAllocateMdl ? ioAllocateMdl(ref(buffer.name, offset), length)
            : bind(.mmCreateMdl, [.null, ref(buffer.name, offset), .literal(length)])
        let pages = span(offset, length)
        mdls.append(Mdl(name: name, base: .reference(buffer.name, offset: Int64(offset)), length: length, span: pages,
                        overPool: false, capacity: max(pages, 23), bufferReadOnly: buffer.readOnly))
    }

    /// A nonpaged pool buffer and an MDL over it (for MmBuildMdlForNonPagedPool and partial MDLs).
    mutating func poolMdl() {
        // Now and then the nonpaged buffer is device memory: an MmMapIoSpace mapping, whose MDL
        // MmBuildMdlForNonPagedPool marks MDL_IO_SPACE (and IoBuildPartialMdl passes that on).
        if let view = views.filter({ $0.io && $0.length >= 0x10 }).randomElement(using: &random), random.below(4) == 0 {
            let (offset, length) = offsetAndLength(within: view.length)
            let name = ioAllocateMdl(ref(view.name, offset), length)
            var mdl = Mdl(name: name, base: .reference(view.name, offset: Int64(offset)), length: length, span: span(offset, length),
                          overPool: true, capacity: 23)
            mdl.overIoSpace = true
            mdls.append(mdl)
            return
        }
        let size = random.pick([0x100, pageSize, 2 * pageSize, 0x40] as [UInt64])
        let block = bind(.exAllocatePoolWithTag, [.symbol("NonPagedPool"), .literal(size)])
        blocks.append(Block(name: block, size: size, paged: false))
        let (offset, length) = offsetAndLength(within: size)
        let name = ioAllocateMdl(ref(block, offset), length)
        mdls.append(Mdl(name: name, base: .reference(block, offset: Int64(offset)), length: length, span: span(offset, length),
                        overPool: true, capacity: 23))
    }

    mutating func lock(_ index: Int) {
        let operation = mdls[index].bufferReadOnly ? "IoReadAccess" : random.pick(symbols(.mmProbeAndLockPages, "operation"))
        let mode = !mdls[index].overPool && random.chance(30) ? "UserMode" : "KernelMode"
        call(.mmProbeAndLockPages, [ref(mdls[index].name), .symbol(mode), .symbol(operation)])
        mdls[index].locked = true
    }

    mutating func unlock(_ index: Int) {
        unmapUserViews(of: mdls[index].name)
        releasePartials(of: mdls[index].name)
        call(.mmUnlockPages, [ref(mdls[index].name)])
        mdls[index].locked = false
        dropViews(of: mdls[index].name, systemOnly: true)
        mdls[index].mapping = nil
    }

    mutating func buildNonPaged(_ index: Int) {
        call(.mmBuildMdlForNonPagedPool, [ref(mdls[index].name)])
        mdls[index].nonpaged = true
    }

    /// IoBuildPartialMdl of part of a locked (or built) MDL, into a new MDL or an idle one on an IRP.
    mutating func partial(from source: Int) {
        let src = mdls[source]
        let (offset, length) = offsetAndLength(within: src.length)
        let pages = span(0, length) + 1
        guard case .reference(let base, let baseOffset) = src.base else { return }
        // Now and then the target is an idle MDL already on an IRP's chain (drivers reuse MDLs for
        // partials): IoBuildPartialMdl must leave its Next, and so the chain, alone.
        let onChain = liveMdls.filter { index in
            let mdl = mdls[index]
            return mdl.irp != nil && !mdl.locked && !mdl.partial && !mdl.nonpaged && !mdl.allocatedPages && !mdl.poolBlock
                && mdl.mapping == nil && mdl.capacity >= pages && !mdls.contains { $0.alive && $0.source == mdl.name }
        }
        let reused = onChain.isEmpty || random.below(4) != 0 ? nil : onChain.randomElement(using: &random)
        let target = reused.map { mdls[$0].name } ?? ioAllocateMdl(.null, pages * pageSize)
        let va = Expression.reference(base, offset: baseOffset + Int64(offset))
        call(.ioBuildPartialMdl, [ref(src.name), ref(target), .expression(va), .literal(length)])
        var partialMdl = Mdl(name: target, base: va, length: length, span: pages, overPool: src.overPool,
                             capacity: reused.map { mdls[$0].capacity } ?? pages, partial: true)
        partialMdl.source = src.name
        if let reused {
            partialMdl.irp = mdls[reused].irp
            mdls[reused] = partialMdl
        } else {
            mdls.append(partialMdl)
        }
    }

    mutating func prepareReuse(_ index: Int) {
        call(.mmPrepareMdlForReuse, [ref(mdls[index].name)])
        dropViews(of: mdls[index].name, systemOnly: true)
        mdls[index].mapping = nil
    }

    mutating func freeMdl(_ index: Int) {
        releasePartials(of: mdls[index].name)
        call(mdls[index].poolBlock ? .exFreePool : .ioFreeMdl, [ref(mdls[index].name)])
        mdls[index].alive = false
        dropViews(of: mdls[index].name, systemOnly: false)
    }

    mutating func queryMdl(_ index: Int) {
        call(random.pick([Routine.mmGetMdlByteCount, .mmGetMdlByteOffset, .mmGetMdlVirtualAddress]), [ref(mdls[index].name)])
    }

    /// A caller-allocated MDL: MmSizeOfMdl bytes of nonpaged pool, then MmInitializeMdl.
    mutating func initializeMdl(over index: Int) {
        let buffer = buffers[index]
        let (offset, length) = offsetAndLength(within: buffer.size)
        let pages = span(offset, length)
        let block = bind(.exAllocatePoolWithTag, [.symbol("NonPagedPool"), .literal(mdlSize(pages: pages))])
        // Pool is not zeroed: a driver that reuses scratch memory leaves bytes MmInitializeMdl must overwrite.
        if random.chance(30) {
            call(.writeMemory, [ref(block), .bytes((0..<8).map { _ in UInt8(truncatingIfNeeded: random.next() | 1) })])
        }
        call(.mmInitializeMdl, [ref(block), ref(buffer.name, offset), .literal(length)])
        var mdl = Mdl(name: block, base: .reference(buffer.name, offset: Int64(offset)), length: length, span: pages,
                      overPool: false, capacity: pages, bufferReadOnly: buffer.readOnly)
        mdl.poolBlock = true
        mdls.append(mdl)
    }

    /// An MDL for an IRP. Half the time another MDL for an IRP that has one: as the new head
    /// (SecondaryBuffer FALSE) or appended to the chain (TRUE), which IoAllocateMdl walks, so only while
    /// every MDL on the chain is still live. Otherwise a new IRP.
    mutating func irp() {
        let chained = irps.filter { irp in !freedIrps.contains(irp) && !mdls.contains { $0.irp == irp && !$0.alive } }
        let reuse = !chained.isEmpty && random.below(2) == 0
        let irp: String
        if reuse {
            irp = chained.randomElement(using: &random)!
        } else {
            irp = bind(.ioAllocateIrp, [])
            irps.append(irp)
        }
        let secondary = reuse && random.below(2) == 0
        guard let index = liveBuffers.randomElement(using: &random) else { return }
        let name = ioAllocateMdl(ref(buffers[index].name), 0x100, secondary: secondary, irp: ref(irp))
        var mdl = Mdl(name: name, base: .reference(buffers[index].name, offset: 0), length: 0x100, span: 1, overPool: false, capacity: 23,
                      bufferReadOnly: buffers[index].readOnly)
        mdl.irp = irp
        mdls.append(mdl)
    }

    mutating func freeIrp(_ index: Int) {
        call(.ioFreeIrp, [ref(irps[index])])
        freedIrps.insert(irps[index])
    }
}

/// MDLs at the limits of the 16-bit Size field.
extension ProgramBuilder {
    /// Lengths whose MDL Size sits at the 16-bit limits: just past 0x7FFF (where a CSHORT turns
    /// negative), the largest that fits 0xFFFF, and one page more (NULL before NT 6.0).
    var longLengths: [UInt64] {
        let header = mdlSize(pages: 0), pfn = mdlSize(pages: 1) - header
        let pastSigned = (0x7FFF - header) / pfn + 1, largest = (0xFFFF - header) / pfn
        return [pastSigned * pageSize, largest * pageSize, (largest + 1) * pageSize]
    }

    /// An MDL of tens of megabytes over a small buffer: built and queried, never probed (its range runs
    /// past the buffer), then freed. Its Size is what the mdl-consistency invariant checks.
    mutating func longMdl(over buffer: String, create: Bool) {
        let lengths = longLengths
        let length = random.pick(lengths) - random.pick([0, 1, 0x10] as [UInt64])
        let offset = random.pick([0, 0x10, pageSize - 1] as [UInt64])
        let mdl = create ? bind(.mmCreateMdl, [.null, ref(buffer, offset), .literal(length)]) : ioAllocateMdl(ref(buffer, offset), length)
        // The longest length fails before NT 6.0 (NULL): nothing to query or free then.
        guard length + offset <= lengths[1] else { return }
        call(random.pick([Routine.mmGetMdlByteCount, .mmGetMdlByteOffset]), [ref(mdl)])
        call(create ? .exFreePool : .ioFreeMdl, [ref(mdl)])
    }
}
