import LockstepPrograms

/// MmAllocatePagesForMdl over bounded physical ranges [LowAddress, HighAddress]: the range's edges
/// decide which frames may be handed out, and a slip there shows only in the PFN array (a frame just
/// past HighAddress's page, or below LowAddress) or in a count the range cannot hold.
extension ProgramBuilder {
    /// Ranges at the edges of RAM and of what boot takes: High at a page's last byte, unaligned and at
    /// a page's first byte; Low at zero, inside RAM and unaligned; Low and High in one page; ranges
    /// boot took every frame of, ranges with no RAM at all (above RAM, the legacy hole, Low above High).
    var boundedPageRanges: [(low: UInt64, high: UInt64)] {
        let ram = edgeConstants.ramEnd, boot = edgeConstants.firstFreeAtBoot, middle = ram / 2 & ~(pageSize - 1)
        return [(0, boot - 1), (0, boot - pageSize + 0x10), (0, boot), (boot, boot + pageSize - 1), (boot + 0x123, boot + 0x123),
                (pageSize, middle - 1), (middle, middle + pageSize - 1), (middle + 0x800, middle + 2 * pageSize + 0x7FF),
                (middle + 1, middle + 1), (middle, ram - 1), (ram - pageSize, ram + pageSize - 1), (ram, 0xFFFF_FFFF),
                (ram + pageSize, ram + 2 * pageSize - 1), (0xA_0000, 0xF_FFFF), (middle + pageSize, middle)]
    }

    /// Whether MmAllocatePagesForMdl surely grants `pages` pages from [low, high]: the range holds that
    /// many frames in RAM's upper half, which a program's own faults and allocations never reach (they
    /// take the lowest free frames first).
    func surelyGrants(low: UInt64, high: UInt64, pages: UInt64) -> Bool {
        let ram = edgeConstants.ramEnd, middle = ram / 2 & ~(pageSize - 1)
        guard middle >= edgeConstants.firstFreeAtBoot + 1024 * pageSize, low <= high else { return false }
        let first = max(low / pageSize, middle / pageSize), last = min(high / pageSize, ram / pageSize - 1)
        return first <= last && last - first + 1 >= pages
    }

    /// One MmAllocatePagesForMdl over a bounded range, asking for a few pages or more than the range
    /// holds. The program goes on with the MDL only where it surely comes back whole (no conditionals:
    /// a NULL one would be freed); elsewhere it is left to the end of the program.
    mutating func allocatePagesInBoundedRange() {
        let (low, high) = random.pick(boundedPageRanges)
        let rangePages = low <= high ? high / pageSize - low / pageSize + 1 : 0
        var totals: [UInt64] = [pageSize, 2 * pageSize, 3 * pageSize + 1, 16 * pageSize]
        if rangePages <= 16 { totals.append((rangePages + 1) * pageSize) }
        let total = random.pick(totals)
        let name = bind(.mmAllocatePagesForMdl, [.literal(low), .literal(high), .literal(0), .literal(total)])
        let pages = (total + pageSize - 1) / pageSize
        guard surelyGrants(low: low, high: high, pages: pages) else { return }
        var mdl = Mdl(name: name, base: .literal(0), length: total, span: pages, overPool: true, capacity: 0, locked: true)
        mdl.allocatedPages = true
        mdls.append(mdl)
    }
}
