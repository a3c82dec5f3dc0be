/// The system PTE range that MDL mappings and MmMapIoSpace take their virtual addresses from.
///
/// Reservations are contiguous and first fit, so the range fragments as mappings come and go, and a
/// request can fail while enough PTEs are free in total. Releasing PTEs that are not reserved is
/// recorded (as a corruption) rather than trapping: on a free build it corrupts the PTE free list.
final class SystemPteAllocator {
    let base: VirtualAddress
    let count: Int
    private let pageSize: UInt64
    private var inUse: [Bool]
    /// Live reservations: first PTE index → PTE count.
    private(set) var reservations: [Int: Int] = [:]
    private(set) var inUseCount = 0
    /// Releases of PTEs that were not reserved (free-build corruption the invariants report).
    private(set) var corruptReleases = 0

    init(base: VirtualAddress, count: Int, pageSize: UInt64) {
        self.base = base
        self.count = count
        self.pageSize = pageSize
        self.inUse = Array(repeating: false, count: count)
    }

    /// The same PTE range, sharing nothing mutable (every field is a value).
    init(copying other: SystemPteAllocator) {
        base = other.base
        count = other.count
        pageSize = other.pageSize
        inUse = other.inUse
        reservations = other.reservations
        inUseCount = other.inUseCount
        corruptReleases = other.corruptReleases
    }

    var freeCount: Int { count - inUseCount }

    func contains(_ va: VirtualAddress) -> Bool { va >= base && (va - base) / pageSize < UInt64(count) }

    func index(of va: VirtualAddress) -> Int { Int((va - base) / pageSize) }

    /// Reserves `pages` contiguous PTEs; nil when no run is long enough.
    func reserve(_ pages: Int) -> VirtualAddress? {
        guard pages > 0, pages <= count else { return nil }
        var runStart = 0
        var runLength = 0
        for index in 0..<count {
            if inUse[index] {
                runLength = 0
                runStart = index + 1
            } else {
                runLength += 1
                if runLength == pages {
                    for i in runStart..<(runStart + pages) { inUse[i] = true }
                    reservations[runStart] = pages
                    inUseCount += pages
                    return base + UInt64(runStart) * pageSize
                }
            }
        }
        return nil
    }

    /// Releases `pages` PTEs starting at the PTE that maps `va`. Returns true when that exactly matches
    /// one reservation.
    @discardableResult func release(_ va: VirtualAddress, pages: Int) -> Bool {
        guard contains(va), pages > 0 else { corruptReleases += 1; return false }
        let first = index(of: va)
        let exact = reservations[first] == pages
        for i in first..<min(count, first + pages) {
            if inUse[i] { inUse[i] = false; inUseCount -= 1 } else { corruptReleases += 1 }
        }
        if exact {
            reservations[first] = nil
        } else {
            // Trim or split the reservations the range touched, so accounting stays consistent.
            for (start, length) in reservations.sorted(by: { $0.key < $1.key }) where start < first + pages && first < start + length {
                reservations[start] = nil
                if start < first { reservations[start] = first - start }
                if start + length > first + pages { reservations[first + pages] = start + length - first - pages }
            }
            corruptReleases += 1
        }
        return exact
    }

    /// Length of the longest free run (fragmentation indicator).
    var largestFreeRun: Int {
        var best = 0, run = 0
        for used in inUse { run = used ? 0 : run + 1; best = max(best, run) }
        return best
    }
}
