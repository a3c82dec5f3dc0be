import LockstepPrograms

/// MmAllocatePagesForMdl and MmFreePagesFromMdl (spec §2.20; conventions: the lowest free frames in
/// [Low, High], one `frame` decision per frame and the first that fails ends the allocation, then the
/// MDL block with one `pool.nonpaged` decision).
///
/// The model does not know which frames are free, only bounds: at most the RAM frames in the range
/// that boot left free, at least those minus every frame the program may have taken since. Where the
/// bounds meet it predicts the MDL exactly; otherwise it predicts what the range allows and learns the
/// count the engine granted from the MDL's ByteCount, which is how a driver learns it too.
extension ReferenceModel {
    func predictAllocatePagesForMdl(_ call: Call) -> Prediction {
        if machine.verifier && irql > 2 { return verifier(0x7E, .exactly(irql), .exactly(2), .exactly(0)) }
        if machine.checked && irql > 1 { return assertion(.exactly(0), .exactly(0)) }
        let low = number(call, "low"), high = number(call, "high")
        let requested = min(number(call, "total") & machine.mask, 0x1_0000_0000 - machine.pageSize)
        let wanted = requested / machine.pageSize + (requested % machine.pageSize != 0 ? 1 : 0)
        if wanted == 0 || low > high { return .returns(.null) }
        // HighAddress names the last byte allowed: its page is the last page (not rounded up).
        let range = low / machine.pageSize ... high / machine.pageSize
        let firstDecision = decisions[.frame, default: 0]
        let (least, most) = grantBounds(range, wanted: wanted, firstDecision: firstDecision)
        if most == 0 {
            // No frame to give (no RAM left in the range, or the first decision fails): one decision, NULL.
            decisions[.frame] = firstDecision + 1
            return .returns(.null)
        }
        if least == most {
            decisions[.frame] = firstDecision + most + (most < wanted ? 1 : 0)
            return allocateMdlBlock(call, bytes: allocatedMdlBytes(most)) { _ in self.allocatedPagesRecord(range, most) }
        }
        return predictUncertainGrant(range, wanted: wanted, least: least, most: most, firstDecision: firstDecision)
    }

    /// The fewest and the most pages the engine can grant from `range`.
    private func grantBounds(_ range: ClosedRange<UInt64>, wanted: UInt64, firstDecision: UInt64) -> (least: UInt64, most: UInt64) {
        let available = framesBootLeavesFree(range)
        var most = min(wanted, available)
        var least = available > framesTakenSinceBoot ? min(most, available - framesTakenSinceBoot) : 0
        if faultPlan.rules.contains(where: { $0.kind == .frame }) {
            var ordinal: UInt64 = 1
            while ordinal <= most {
                if failure(.frame, ordinal: firstDecision + ordinal) != nil { most = ordinal - 1; break }
                ordinal += 1
            }
            least = min(least, most)
        }
        return (least, most)
    }

    /// RAM frames in `range` that boot did not take. PFN 0 is reserved, the legacy hole is no RAM, and
    /// boot gives nonpaged pool the lowest RAM frames for good (conventions, "The machine").
    func framesBootLeavesFree(_ range: ClosedRange<UInt64>) -> UInt64 {
        let ramPages = machine.ramBytes / machine.pageSize
        let holeStart = 0xA_0000 / machine.pageSize, holeEnd = 0x10_0000 / machine.pageSize
        func ramFrames(_ first: UInt64, _ last: UInt64) -> UInt64 {
            let first = max(first, 1), last = min(last, ramPages &- 1)
            guard ramPages > 1, first <= last else { return 0 }
            var count = last - first + 1
            let holeFirst = max(first, holeStart), holeLast = min(last, holeEnd - 1)
            if holeFirst <= holeLast { count -= holeLast - holeFirst + 1 }
            return count
        }
        let poolFrames = (machine.nonpagedBytes + machine.pageSize - 1) / machine.pageSize
        let belowHole = ramFrames(1, holeStart - 1)
        let firstFree = poolFrames <= belowHole ? 1 + poolFrames : holeEnd + (poolFrames - belowHole)
        return ramFrames(max(range.lowerBound, firstFree), range.upperBound)
    }

    /// Frames the program may hold beyond boot's, at most: a frame is taken only by a fault on a
    /// demand-zero or paged-out page (user buffers, paged pool) or by MmAllocatePagesForMdl
    /// (conventions, `frame` decisions). Freed buffers count too: their locked pages may stay taken.
    private var framesTakenSinceBoot: UInt64 {
        let bufferPages = buffers.values.reduce(0) { $0 + $1.pages }
        return bufferPages + machine.pagedBytes / machine.pageSize + allocatedFramesHeld
    }

    private var allocatedFramesHeld: UInt64 {
        UInt64(locks.keys.count(where: { if case .allocated = $0 { true } else { false } }))
    }

    /// The MDL block's bytes for `pages` pages (before pool rounding).
    private func allocatedMdlBytes(_ pages: UInt64) -> UInt64 { machine.headerSize + pages * machine.pfnSize }

    /// A new batch of `pages` pages in `range`: its MDL record, with one lock reference per page.
    private func allocatedPagesRecord(_ range: ClosedRange<UInt64>, _ pages: UInt64) -> MdlRecord {
        let batch = allocatedBatches
        allocatedBatches += 1
        allocatedRanges[batch] = range
        var record = newRecord(0, pages * machine.pageSize, capacity: allocatedMdlBytes(pages))
        record.flags = Flag.locked
        record.process = nil
        record.processKnown = true
        record.allocatedPages = true
        record.pfns = (0..<pages).map { Frame.allocated(batch: batch, index: $0) }
        // Each page holds one lock reference; IoPageLockLimit counts only probe-locked pages (spec §2.7,
        // KB121965: "pages that can be probe-locked"), so these do not count toward it.
        for index in 0..<pages { locks[.allocated(batch: batch, index: index)] = 1 }
        // A large batch in RAM the program may fill anyway can leave a later fault without a frame, which
        // the model does not follow (it assumes every fault finds one).
        if pages > 64 && framesTakenSinceBoot > framesBootLeavesFree(0...machine.highestRamPfn) {
            _ = lose("MmAllocatePagesForMdl took \(pages) pages of RAM the program may need for faults")
        }
        return record
    }

    /// Between `least` and `most` pages (`most` ≥ 1): the MDL or NULL the bounds allow; once the engine
    /// answers, the count it granted, read from the MDL's ByteCount.
    private func predictUncertainGrant(_ range: ClosedRange<UInt64>, wanted: UInt64, least: UInt64, most: UInt64,
                                       firstDecision: UInt64) -> Prediction {
        let poolDecision = decisions[.nonpagedPool, default: 0] + 1
        let smallest = machine.poolBlockSize(allocatedMdlBytes(max(least, 1)))
        let largest = machine.poolBlockSize(allocatedMdlBytes(most))
        let blockFails = failure(.nonpagedPool, ordinal: poolDecision) != nil || nonpagedBlockFits(smallest) == false
        let blockFits = !blockFails && nonpagedBlockFits(largest) == true
        settle { observed in
            guard case .returned(.number(let address)) = observed, address != 0 else {
                self.settleNullGrant(least: least, firstDecision: firstDecision, poolDecision: poolDecision, blockFits: blockFits)
                return
            }
            guard let granted = self.grantedPages(mdl: address, least: max(least, 1), most: most) else {
                _ = self.lose("how many pages MmAllocatePagesForMdl granted (the model reads it from the MDL's ByteCount)")
                return
            }
            self.decisions[.frame] = firstDecision + granted + (granted < wanted ? 1 : 0)
            self.decisions[.nonpagedPool] = poolDecision
            self.addMdlBlock(at: address, bytes: self.machine.poolBlockSize(self.allocatedMdlBytes(granted)), self.allocatedPagesRecord(range, granted))
        }
        if blockFails { return .returns(.null) }
        let mdl: Prediction = .returns(.fresh(.mdl))
        return least >= 1 && blockFits ? mdl : .oneOf([mdl, .returns(.null)])
    }

    /// NULL after an uncertain grant: no frame was free (one frame decision, no block), or the MDL block
    /// failed after some frames (each a decision, then the block's). Which, the model can tell only
    /// when one of them cannot happen; where it cannot tell, the decision counts matter only to a plan
    /// that still fails frames or pool.
    private func settleNullGrant(least: UInt64, firstDecision: UInt64, poolDecision: UInt64, blockFits: Bool) {
        if least == 0 && blockFits {
            decisions[.frame] = firstDecision + 1
            return
        }
        if faultPlan.rules.contains(where: { $0.kind == .frame || $0.kind == .nonpagedPool }) {
            _ = lose("a NULL MmAllocatePagesForMdl: the model cannot tell whether frames or the MDL block ran out")
            return
        }
        decisions[.frame] = firstDecision + 1
        if least >= 1 { decisions[.nonpagedPool] = poolDecision }
    }

    /// The pages the MDL at `mdl` describes, from its ByteCount as a driver reads it (spec §1 offsets).
    /// A count outside `least...most` pages is the engine's error: the model then expects the nearest
    /// count it allows, so the state comparison shows the difference. Nil when nothing can be read.
    private func grantedPages(mdl: UInt64, least: UInt64, most: UInt64) -> UInt64? {
        guard let read = driverMemory else { return nil }
        let offset: UInt64 = machine.pointer64 ? 40 : 20
        guard let bytes = read((mdl &+ offset) & machine.mask, 4) else { return least }
        let byteCount = bytes.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let pages = byteCount % machine.pageSize == 0 ? byteCount / machine.pageSize : least
        return min(max(pages, least), most)
    }

    func predictFreePagesFromMdl(_ call: Call) -> Prediction {
        if machine.verifier && irql > 2 { return verifier(0x7E, .exactly(irql), .exactly(2), .exactly(0)) }
        if machine.checked && irql > 1 { return assertion(parameter(call, "mdl"), .exactly(0)) }
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        let key = mdlKey(number(call, "mdl"))
        guard var record = mdls[key] else { return lose("MmFreePagesFromMdl on an unknown MDL") }
        if machine.version >= 4 && record.flags & Flag.mapped != 0 { releaseMapping(key, record); record = mdls[key]! }
        let span = machine.span(record.va, record.byteCount)
        let pages = Int(min(span, UInt64(record.pfns.count)))
        // A slot no call ever filled holds whatever the pool block held: the model cannot say which
        // frame it names, so it cannot say whether the routine frees it or bug-checks.
        let unfilled = "MmFreePagesFromMdl over PFN slots no call filled (their contents are the pool block's)"
        if span > UInt64(record.pfns.count) && !record.pfns.contains(where: { $0 == nil }) { return lose(unfilled) }
        for (index, frame) in record.pfns.prefix(pages).enumerated() {
            if frame == nil && index >= record.emptiedSlots { return lose(unfilled) }
            guard let frame else { break }
            guard case .allocated = frame, (locks[frame] ?? 0) > 0 else {
                let slot = (number(call, "mdl") &+ machine.headerSize &+ UInt64(index) * machine.pfnSize) & machine.mask
                return bugCheck(0x1A, .exactly(0x1236), parameter(call, "mdl"), .exactly(slot), .any)
            }
            if locks[frame] == 1 { locks[frame] = nil } else { return lose("freeing allocated pages that are also probe-locked") }
            contents[frame] = nil
            record.pfns[index] = nil
            record.emptiedSlots = index + 1
        }
        record.flags &= ~Flag.locked
        mdls[key] = record
        return .returns(.none)
    }
}
