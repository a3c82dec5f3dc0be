import LockstepPrograms

/// MmMapLockedPages*, MmGetSystemAddressForMdl*, MmUnmapLockedPages, MmMapIoSpace, MmUnmapIoSpace
/// (spec §2.9–§2.11, §2.17, §2.18).
extension ReferenceModel {
    var freePtes: UInt64 { machine.ptes > ptesInUse ? machine.ptes - ptesInUse : 0 }

    /// Whether a reservation of `pages` system PTEs succeeds: certain when the range is empty or too
    /// small; otherwise it depends on fragmentation, which the model does not replicate (nil).
    func pteReservationSucceeds(_ pages: UInt64) -> Bool? {
        if pages == 0 || pages > freePtes { return false }
        if ptesInUse == 0 || mappings.isEmpty { return true }
        return nil
    }

    func predictGetSystemAddress(_ call: Call, safe: Bool) -> Prediction {
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        guard let record = mdls[mdlKey(number(call, "mdl"))] else { return lose("MmGetSystemAddressForMdl on an unknown MDL") }
        if record.flags & (Flag.mapped | Flag.nonpaged) != 0 {
            guard let va = record.mappedSystemVa else { return .returns(.any) }
            return .returns(.exactly(va))
        }
        return predictMap(call, kernel: true, bugCheckOnFailure: !safe, legacy: !safe, cacheValid: true, requested: 0)
    }

    func predictMapLockedPages(_ call: Call, specify: Bool) -> Prediction {
        let kernel = !isUserMode(call, "mode")
        if specify {
            let cache = arguments(call).cachingType("cache") < 6   // MmMaximumCacheType and above are invalid
            return predictMap(call, kernel: kernel, bugCheckOnFailure: number(call, "bugcheck") != 0, legacy: false,
                              cacheValid: cache, requested: number(call, "requested"), caching: caching(call, "cache"))
        }
        return predictMap(call, kernel: kernel, bugCheckOnFailure: true, legacy: true, cacheValid: true, requested: 0)
    }

    private func predictMap(_ call: Call, kernel: Bool, bugCheckOnFailure: Bool, legacy: Bool, cacheValid: Bool,
                            requested: UInt64, caching: ObservedCaching = .writeBack) -> Prediction {
        let key = mdlKey(number(call, "mdl"))
        guard let record = mdls[key] else { return lose("mapping an unknown MDL") }
        let flags = UInt64(record.flags)
        let pages = machine.span(record.va, record.byteCount)
        let mdl = parameter(call, "mdl")
        if kernel {
            if machine.verifier {
                if irql > 2 { return verifier(legacy ? 0x74 : 0x76, .exactly(irql), mdl, .exactly(0)) }
                let bad = record.flags & (Flag.mapped | Flag.nonpaged | Flag.partialMapped)
                if bad != 0 { return verifier(0xB2, mdl, .exactly(flags), .exactly(UInt64(bad))) }
                if record.flags & (Flag.locked | Flag.partial) == 0 { return verifier(0xB3, mdl, .exactly(flags), .exactly(UInt64(Flag.locked))) }
                let policy = machine.strictMap && machine.policyStops
                if policy && legacy { return verifier(0x81, mdl, .exactly(flags), .exactly(0)) }
                if policy && !legacy && bugCheckOnFailure { return verifier(0x82, mdl, .exactly(flags), .exactly(0)) }
            }
            if machine.checked {
                if irql > 2 { return lose("checked-build IRQL ASSERT in MmMapLockedPages") }
                // ReactOS' kernel-mode ASSERTs (spec §2.9).
                if record.byteCount == 0 || record.flags & (Flag.mapped | Flag.nonpaged | Flag.partialMapped) != 0
                    || record.flags & (Flag.locked | Flag.partial) == 0 {
                    return assertion(mdl, .exactly(flags))
                }
            }
        } else {
            if machine.verifier && irql > 1 { return verifier(legacy ? 0x75 : 0x77, .exactly(irql), mdl, .exactly(1)) }
            if machine.checked && irql > 1 { return assertion(mdl, .exactly(0)) }
        }
        guard record.pfns.count >= Int(min(pages, 4096)), pages <= 4096 else { return lose("mapping an MDL whose PFN array the model does not know") }
        let frames = Array(record.pfns.prefix(Int(pages)))
        if machine.verifier {
            for frame in frames {
                guard let frame else { break }
                switch frame {
                case .device: if record.flags & Flag.ioSpace == 0 { return verifier(0x89, mdl, .any, .any) }
                case .system where !isPagedPool(frame): continue
                default:
                    guard (locks[frame] ?? 0) == 0 else { continue }
                    // Trimmed since the unlock: the stale PFN names a physical frame the pager freed, which
                    // may since be someone else's (locked or not); Verifier judges that frame, not the page.
                    if pageable(frame) && (!resident.contains(frame) || everPagedOut.contains(frame)) { return lose("mapping an unlocked MDL whose page was trimmed (stale PFN)") }
                    return verifier(0x85, mdl, .exactly(pages), .any)
                }
            }
        }
        if !cacheValid { return .returns(.null) }
        if !kernel { return predictUserMap(call, key, record, frames: frames, requested: requested, caching: caching) }
        let failure: Prediction = record.flags & Flag.mappingCanFail != 0 || !bugCheckOnFailure
            ? .returns(.null)
            : bugCheck(0x3F, .exactly(0), .exactly(pages), .exactly(freePtes), .exactly(machine.ptes))
        let offset = machine.version == 0 ? 0 : record.byteOffset
        let success: Prediction = .returns(.systemMapping(mdl: expression(call, "mdl").referencedName ?? "", byteOffset: offset))
        settle { observed in
            guard case .returned(.number(let value)) = observed, value != 0 else { return }
            let base = self.machine.pageAlign(value)
            let usable = Array(frames.prefix { $0 != nil })
            self.mappings[base] = Mapping(base: base, frames: usable, process: nil, mdl: key, io: false, ptes: pages, cache: caching)
            self.ptesInUse += pages
            var updated = self.mdls[key] ?? record
            updated.mappedSystemVa = (base &+ record.byteOffset) & self.machine.mask
            updated.flags |= Flag.mapped
            if updated.flags & Flag.partial != 0 { updated.flags |= Flag.partialMapped }
            self.mdls[key] = updated
        }
        if expression(call, "mdl").referencedName == nil { return lose("mapping an MDL given as a raw address") }
        if pages > 0 && decide(.systemPtes) != nil {
            pending = nil
            return failure
        }
        switch pteReservationSucceeds(pages) {
        case true?: return success
        case false?: return failure
        case nil: return .oneOf([success, failure])
        }
    }

    private func predictUserMap(_ call: Call, _ key: MdlKey, _ record: MdlRecord, frames: [Frame?], requested: UInt64,
                                caching: ObservedCaching) -> Prediction {
        if currentProcess == 4 || processes[currentProcess]?.terminated == true { return .raises(status: Status.processIsTerminating) }
        let usable = Array(frames.prefix { $0 != nil })
        let bytes = UInt64(usable.count) * machine.pageSize
        if bytes == 0 { return .raises(status: Status.invalidParameter) }
        if decide(.nonpagedPool) != nil { return .raises(status: 0xC000_009A) }
        if requested != 0 {
            let end = requested &+ bytes
            if machine.byteOffset(requested) != 0 || end <= requested || end - 1 > machine.highestVad { return .raises(status: Status.invalidAddress) }
            if overlapsUserRange(requested, end) { return .raises(status: Status.conflictingAddresses) }
        }
        guard let name = expression(call, "mdl").referencedName else { return lose("user mapping of a raw MDL address") }
        settle { observed in
            guard case .returned(.number(let value)) = observed, value != 0 else { return }
            let base = self.machine.pageAlign(value)
            self.userMappings[self.currentProcess, default: [:]][base] = Mapping(base: base, frames: usable, process: self.currentProcess, mdl: key, io: false, cache: caching)
        }
        // Conventions: before NT 4.0 SP4 the page base comes back without the byte offset, in user mode too.
        return .returns(.userMapping(mdl: name, byteOffset: machine.version == 0 ? 0 : record.byteOffset))
    }

    func overlapsUserRange(_ start: UInt64, _ end: UInt64) -> Bool {
        for buffer in buffers.values where buffer.alive && buffer.process == currentProcess {
            // The region reserved is the committed size; the 64 KiB granule only aligns where regions start.
            let bufferEnd = buffer.base + buffer.pages * machine.pageSize
            if start < bufferEnd && buffer.base < end { return true }
        }
        for mapping in (userMappings[currentProcess] ?? [:]).values {
            let mappingEnd = mapping.base + UInt64(mapping.frames.count) * machine.pageSize
            if start < mappingEnd && mapping.base < end { return true }
        }
        return false
    }

    /// Releases an MDL's system mapping (unmap, auto-unmap on unlock, IoFreeMdl of a mapped partial).
    func releaseMapping(_ key: MdlKey, _ record: MdlRecord) {
        var updated = record
        if let va = record.mappedSystemVa, let mapping = mappings[machine.pageAlign(va)], mapping.mdl == key {
            mappings[mapping.base] = nil
            ptesInUse = ptesInUse >= mapping.ptes ? ptesInUse - mapping.ptes : 0
        }
        updated.flags &= ~(Flag.mapped | Flag.partialMapped)
        mdls[key] = updated
    }

    func predictUnmapLockedPages(_ call: Call) -> Prediction {
        let base = number(call, "base")
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        let key = mdlKey(number(call, "mdl"))
        guard let record = mdls[key] else { return lose("MmUnmapLockedPages with an unknown MDL") }
        let flags = UInt64(record.flags)
        let mdl = parameter(call, "mdl")
        if !machine.isUser(base) {
            if machine.verifier {
                if irql > 2 { return verifier(0x79, .exactly(irql), parameter(call, "base"), mdl) }
                if record.flags & Flag.partial != 0 && record.flags & Flag.partialMapped == 0 {
                    return verifier(0xB5, mdl, .exactly(flags), .exactly(UInt64(Flag.partial)))
                }
                if record.flags & Flag.mapped == 0 { return verifier(0xB6, mdl, .exactly(flags), .exactly(UInt64(Flag.mapped))) }
                let page = machine.pageAlign(base)
                guard let mapping = mappings[page], mapping.mdl == key else { return bugCheck(0xDA, .exactly(3), .exactly(0), .exactly(0), .exactly(page)) }
            } else if machine.checked && (irql > 2 || record.flags & Flag.mapped == 0) {
                return assertion(mdl, .exactly(flags))
            } else if let va = record.mappedSystemVa, machine.pageAlign(va) != machine.pageAlign(base) || record.flags & Flag.mapped == 0 {
                return lose("free-build unmap of something that is not this MDL's mapping")
            }
            releaseMapping(key, record)
            return .returns(.none)
        }
        if machine.verifier && irql > 1 { return verifier(0x7A, .exactly(irql), parameter(call, "base"), mdl) }
        if machine.checked && irql > 1 { return assertion(mdl, .exactly(0)) }
        let page = machine.pageAlign(base)
        guard let views = userMappings[currentProcess],
              let mapping = views.values.first(where: { page >= $0.base && (page - $0.base) / machine.pageSize < UInt64($0.frames.count) }) else {
            if machine.verifier { return verifier(0xB9, parameter(call, "base"), mdl, .exactly(0)) }
            return .returns(.none)
        }
        userMappings[currentProcess]?[mapping.base] = nil
        return .returns(.none)
    }

    func predictMapIoSpace(_ call: Call) -> Prediction {
        let physical = number(call, "pa")
        let bytes = length(number(call, "length"))
        let cache = arguments(call).cachingType("cache") & 0xFF < 6
        if machine.verifier && irql > 2 {
            return verifier(0x73, .exactly(irql), .exactly(machine.pointer64 ? physical : physical & 0xFFFF_FFFF), .exactly(bytes))
        }
        if machine.checked && (bytes == 0 || irql > (machine.version <= 1 ? 0 : 2)) { return lose("checked-build ASSERT in MmMapIoSpace") }
        guard cache else { return .returns(.null) }
        let pages = machine.span(physical & 0xFFFF_FFFF, bytes)
        if pages == 0 { return .returns(.null) }
        guard pages <= 4096 else {
            _ = decide(.systemPtes)  // taken, and the reservation fails anyway
            return .returns(.null)
        }
        // Which pages are behind the physical range: device pages, or a RAM page the program named.
        var frames: [Frame?] = []
        let named = physicalNamed(call)
        for index in 0..<pages {
            let page = physical / machine.pageSize &+ index
            if machine.isRam(page &* machine.pageSize) {
                if index == 0, let named { frames.append(named); continue }
                frames.append(.unknown(physicalPage: page))
            } else {
                frames.append(.device(pfn: page))
            }
        }
        if machine.verifier {
            for frame in frames {
                guard let frame else { continue }
                switch frame {
                case .device: continue
                case .system where !isPagedPool(frame): continue
                case .unknown: return lose("MmMapIoSpace of RAM the model cannot name")
                default:
                    if (locks[frame] ?? 0) == 0 { return verifier(0x83, .exactly(physical), .exactly(bytes), .any) }
                }
            }
        }
        if decide(.systemPtes) != nil || pages > freePtes { return .returns(.null) }
        settle { observed in
            guard case .returned(.number(let value)) = observed, value != 0 else { return }
            let base = self.machine.pageAlign(value)
            self.mappings[base] = Mapping(base: base, frames: frames, process: nil, mdl: nil, io: true, ptes: pages,
                                          cache: self.caching(call, "cache"))
            self.ptesInUse += pages
        }
        let success: Prediction = .returns(.ioSpaceMapping(physical: physical))
        return ptesInUse == 0 ? success : .oneOf([success, .returns(.null)])
    }

    /// The frame a physical-address argument names, when it is a bound MmGetPhysicalAddress result.
    private func physicalNamed(_ call: Call) -> Frame? {
        guard case .reference(let name, let offset) = expression(call, "pa"), let known = physicalOf[name], let frame = known.frame else { return nil }
        let total = known.offset &+ UInt64(bitPattern: offset)
        return total < machine.pageSize ? frame : nil
    }

    func predictUnmapIoSpace(_ call: Call) -> Prediction {
        let va = number(call, "va")
        let bytes = length(number(call, "length"))
        if machine.verifier && irql > 1 { return verifier(0x7B, .exactly(irql), parameter(call, "va"), .exactly(bytes)) }
        let page = machine.pageAlign(va)
        let pages = machine.span(va, bytes)
        guard let mapping = mappings[page], mapping.io else {
            if machine.verifier { return bugCheck(0xDA, .exactly(3), .exactly(0), .exactly(0), .exactly(page)) }
            let inPteRange = page >= machine.pteBase && (page - machine.pteBase) / machine.pageSize < machine.ptes
            if machine.checked && !inPteRange { return assertion(site: 71, parameter(call, "va"), .exactly(bytes)) }
            return lose("MmUnmapIoSpace of something that is not an I/O-space mapping")
        }
        if UInt64(mapping.frames.count) != pages {
            if machine.verifier { return bugCheck(0xDA, .exactly(2), .exactly(0), .exactly(UInt64(mapping.frames.count)), .exactly(pages)) }
            return lose("MmUnmapIoSpace with the wrong length")
        }
        mappings[page] = nil
        ptesInUse = ptesInUse >= mapping.ptes ? ptesInUse - mapping.ptes : 0
        return .returns(.none)
    }
}
