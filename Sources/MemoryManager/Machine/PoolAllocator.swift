/// A pool (nonpaged or paged) over a fixed range of system virtual addresses.
///
/// Blocks smaller than a page never cross a page boundary and are aligned to the pool granularity
/// (8 bytes on 32-bit targets, 16 on x64); blocks of a page or more are page aligned. First fit, so the
/// allocation order is deterministic. Running out returns nil, never traps. Freed blocks keep their bytes
/// (pool is not zeroed), which is why a recycled MDL's Process and MappedSystemVa are garbage.
final class PoolAllocator {
    let type: PoolType
    let base: VirtualAddress
    let size: UInt64
    private let granularity: UInt64
    private let pageSize: UInt64
    /// Free ranges sorted by start, never adjacent (merged on free).
    private var freeRanges: [(start: VirtualAddress, length: UInt64)]
    /// Live blocks: start → size.
    private(set) var blocks: [VirtualAddress: UInt64] = [:]
    /// Starts of live blocks, sorted (for "which block contains this address").
    private var sortedStarts: [VirtualAddress] = []
    private(set) var bytesInUse: UInt64 = 0
    /// Allocations and frees so far: observers that saw the same count hold a current view of the blocks.
    private(set) var changes: UInt64 = 0

    init(type: PoolType, base: VirtualAddress, size: UInt64, constants: PlatformConstants) {
        self.type = type
        self.base = base
        self.size = size
        self.granularity = constants.pointerBytes * 2
        self.pageSize = constants.pageSize
        self.freeRanges = [(base, size)]
    }

    /// The same pool, sharing nothing mutable (every field is a value).
    init(copying other: PoolAllocator) {
        type = other.type
        base = other.base
        size = other.size
        granularity = other.granularity
        pageSize = other.pageSize
        freeRanges = other.freeRanges
        blocks = other.blocks
        sortedStarts = other.sortedStarts
        bytesInUse = other.bytesInUse
        changes = other.changes
    }

    func contains(_ va: VirtualAddress) -> Bool { va >= base && va - base < size }

    /// Allocates `bytes` (0 is treated as the minimum block). Nil when no free range fits.
    func allocate(_ bytes: UInt64) -> VirtualAddress? {
        guard bytes <= size else { return nil }
        let large = bytes >= pageSize
        let length = large ? (bytes + pageSize - 1) & ~(pageSize - 1) : max(granularity, (bytes + granularity - 1) & ~(granularity - 1))
        for (index, range) in freeRanges.enumerated() {
            var start = large ? (range.start + pageSize - 1) & ~(pageSize - 1) : range.start
            if !large && (start % pageSize) + length > pageSize { start = (start + pageSize - 1) & ~(pageSize - 1) }
            guard start >= range.start, start - range.start + length <= range.length else { continue }
            carve(index: index, start: start, length: length)
            blocks[start] = length
            insertSorted(start)
            bytesInUse += length
            changes &+= 1
            return start
        }
        return nil
    }

    private func carve(index: Int, start: VirtualAddress, length: UInt64) {
        let range = freeRanges[index]
        let before = (range.start, start - range.start)
        let afterStart = start + length
        let after = (afterStart, range.start + range.length - afterStart)
        var replacement: [(start: VirtualAddress, length: UInt64)] = []
        if before.1 > 0 { replacement.append(before) }
        if after.1 > 0 { replacement.append(after) }
        freeRanges.replaceSubrange(index...index, with: replacement)
    }

    /// Frees the block that starts at `va`; returns its size, or nil if no live block starts there.
    func free(_ va: VirtualAddress) -> UInt64? {
        guard let length = blocks.removeValue(forKey: va) else { return nil }
        if let position = sortedIndex(of: va) { sortedStarts.remove(at: position) }
        bytesInUse -= length
        changes &+= 1
        var index = freeRanges.firstIndex { $0.start > va } ?? freeRanges.count
        freeRanges.insert((va, length), at: index)
        if index + 1 < freeRanges.count, freeRanges[index].start + freeRanges[index].length == freeRanges[index + 1].start {
            freeRanges[index].length += freeRanges[index + 1].length
            freeRanges.remove(at: index + 1)
        }
        if index > 0, freeRanges[index - 1].start + freeRanges[index - 1].length == freeRanges[index].start {
            freeRanges[index - 1].length += freeRanges[index].length
            freeRanges.remove(at: index)
            index -= 1
        }
        return length
    }

    /// The live block containing `va`, if any.
    func block(containing va: VirtualAddress) -> (start: VirtualAddress, size: UInt64)? {
        if let length = blocks[va] { return (va, length) }
        var low = 0, high = sortedStarts.count
        while low < high {
            let mid = (low + high) / 2
            if sortedStarts[mid] <= va { low = mid + 1 } else { high = mid }
        }
        guard low > 0 else { return nil }
        let start = sortedStarts[low - 1]
        let length = blocks[start]!
        return va - start < length ? (start, length) : nil
    }

    private func insertSorted(_ va: VirtualAddress) {
        var low = 0, high = sortedStarts.count
        while low < high {
            let mid = (low + high) / 2
            if sortedStarts[mid] < va { low = mid + 1 } else { high = mid }
        }
        sortedStarts.insert(va, at: low)
    }

    private func sortedIndex(of va: VirtualAddress) -> Int? {
        var low = 0, high = sortedStarts.count
        while low < high {
            let mid = (low + high) / 2
            if sortedStarts[mid] < va { low = mid + 1 } else { high = mid }
        }
        return low < sortedStarts.count && sortedStarts[low] == va ? low : nil
    }

    /// Live blocks in address order.
    var liveBlocks: [(start: VirtualAddress, size: UInt64)] { sortedStarts.map { ($0, blocks[$0]!) } }
}
