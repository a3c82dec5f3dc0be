/// What a physical frame is used for: the state column of the PFN database.
public enum FrameUse: Hashable, Sendable {
    /// On the free list.
    case free
    /// Never handed out (PFN 0, as Windows never puts page 0 in an MDL).
    case reserved
    /// Backs nonpaged pool (never paged).
    case nonpagedPool
    /// Backs a resident page of paged pool (system working set) at this virtual page number.
    case pagedPool(vpn: UInt64)
    /// Backs a resident user page of a process at this virtual page number.
    case processPage(processId: UInt32, vpn: UInt64)
    /// Handed out by MmAllocatePagesForMdl.
    case mdlPages
    /// Its virtual page was released while the frame was still locked for I/O; it returns to the free
    /// list when the last lock reference drops (NT keeps such a page until its reference count is 0).
    case pendingFree
}

/// One PFN database entry.
public struct FrameRecord: Hashable, Sendable {
    public var use: FrameUse
    /// Lock references taken by MmProbeAndLockPages (and dropped by MmUnlockPages).
    public var lockCount: UInt32
}

/// Physical memory: the PFN database over RAM, the frames' bytes (allocated lazily; a frame without
/// stored bytes reads as zeros) and device memory in I/O space.
final class PhysicalMemory {
    let pageSize: Int
    let pageShift: UInt64
    /// Number of PFNs covered by RAM (including the legacy hole, which is not in the database).
    let ramFrameCount: UInt64
    private(set) var frames: [FrameRecord] { didSet { recordChanges &+= 1 } }
    /// Changes to the PFN database so far (any frame's use or lock count).
    private(set) var recordChanges: UInt64 = 0
    /// RAM bytes: frame → slot in `pages` (-1: never written since it was last zeroed, reads as
    /// zeros). A trivial index table plus only the pages in use keeps machine set-up and tear-down cheap.
    private var pageSlot: [Int32]
    private var pages: [[UInt8]] = []
    private var spareSlots: [Int32] = []
    private var deviceContents: [UInt64: [UInt8]] = [:]
    /// Content changes so far; each frame keeps the count at its last change (its content stamp), so
    /// an observer can tell in O(1) that a frame's bytes are unchanged since it last looked.
    private var contentChanges: UInt64 = 0
    private var contentStamps: [UInt64]
    private var deviceContentStamps: [UInt64: UInt64] = [:]
    /// Free frames as a stack whose top is the lowest PFN: allocation order is deterministic.
    private var freeList: [PageFrameNumber]
    private let holeFirst: UInt64, holeEnd: UInt64
    private let deviceFrames: [(first: UInt64, end: UInt64)]
    /// Frames with a lock count above zero (kept so invariant checks need not scan all of RAM).
    private(set) var lockedFrames: Set<PageFrameNumber> = []

    init(constants: PlatformConstants, ramBytes: UInt64, devices: [DeviceWindow]) {
        pageSize = Int(constants.pageSize)
        pageShift = constants.pageShift
        ramFrameCount = ramBytes >> constants.pageShift
        holeFirst = 0xA_0000 >> constants.pageShift
        holeEnd = 0x10_0000 >> constants.pageShift
        frames = Array(repeating: FrameRecord(use: .free, lockCount: 0), count: Int(ramFrameCount))
        pageSlot = Array(repeating: -1, count: Int(ramFrameCount))
        contentStamps = Array(repeating: 0, count: Int(ramFrameCount))
        deviceFrames = devices.map { ($0.physicalAddress >> constants.pageShift,
                                      ($0.physicalAddress &+ $0.length &+ constants.pageSize &- 1) >> constants.pageShift) }
        freeList = []
        freeList.reserveCapacity(Int(ramFrameCount))
        var pfn = ramFrameCount
        while pfn > 1 {
            pfn -= 1
            if isInDatabase(pfn) { freeList.append(pfn) }
        }
        frames[0].use = .reserved
    }

    /// The same physical memory, sharing nothing mutable (every field is a value).
    init(copying other: PhysicalMemory) {
        pageSize = other.pageSize
        pageShift = other.pageShift
        ramFrameCount = other.ramFrameCount
        frames = other.frames
        recordChanges = other.recordChanges
        pageSlot = other.pageSlot
        pages = other.pages
        spareSlots = other.spareSlots
        deviceContents = other.deviceContents
        contentChanges = other.contentChanges
        contentStamps = other.contentStamps
        deviceContentStamps = other.deviceContentStamps
        freeList = other.freeList
        holeFirst = other.holeFirst
        holeEnd = other.holeEnd
        deviceFrames = other.deviceFrames
        lockedFrames = other.lockedFrames
    }

    /// True when the frame is RAM with a PFN database entry. Everything else is I/O space.
    @inline(__always) func isInDatabase(_ pfn: PageFrameNumber) -> Bool {
        pfn < ramFrameCount && (pfn < holeFirst || pfn >= holeEnd)
    }

    /// The highest RAM PFN (the "highest physical page" of 0xC4/0x6F).
    var highestPfn: PageFrameNumber { ramFrameCount - 1 }

    var freeFrameCount: Int { freeList.count }

    func record(_ pfn: PageFrameNumber) -> FrameRecord? { isInDatabase(pfn) ? frames[Int(pfn)] : nil }

    /// Takes the lowest free frame; its bytes read as zeros. Nil when RAM is exhausted.
    func allocate(for use: FrameUse) -> PageFrameNumber? {
        guard let pfn = freeList.popLast() else { return nil }
        frames[Int(pfn)] = FrameRecord(use: use, lockCount: 0)
        releaseSlot(pfn)
        stamp(pfn)
        return pfn
    }

    /// Records that `pfn`'s bytes changed.
    @inline(__always) private func stamp(_ pfn: PageFrameNumber) {
        contentChanges &+= 1
        if isInDatabase(pfn) { contentStamps[Int(pfn)] = contentChanges } else { deviceContentStamps[pfn] = contentChanges }
    }

    /// A value that changes whenever `pfn`'s bytes may have changed (RAM or device memory).
    func contentStamp(_ pfn: PageFrameNumber) -> UInt64 {
        isInDatabase(pfn) ? contentStamps[Int(pfn)] : deviceContentStamps[pfn] ?? 0
    }

    /// Returns a frame to the free list (or marks it pending if it is still locked).
    func release(_ pfn: PageFrameNumber) {
        guard isInDatabase(pfn) else { return }
        let index = Int(pfn)
        if frames[index].lockCount > 0 {
            frames[index].use = .pendingFree
            return
        }
        guard frames[index].use != .free, frames[index].use != .reserved else { return }
        frames[index].use = .free
        insertFree(pfn)
    }

    /// Releases many frames at once: one sort instead of one sorted insertion each (releasing the
    /// 780,000 frames of a 3 GiB MmAllocatePagesForMdl one by one took half a minute).
    func release(_ pfns: [PageFrameNumber]) {
        var freed: [PageFrameNumber] = []
        for pfn in pfns where isInDatabase(pfn) {
            let index = Int(pfn)
            if frames[index].lockCount > 0 { frames[index].use = .pendingFree; continue }
            guard frames[index].use != .free, frames[index].use != .reserved else { continue }
            frames[index].use = .free
            freed.append(pfn)
        }
        guard !freed.isEmpty else { return }
        freeList.append(contentsOf: freed)
        freeList.sort(by: >)
    }

    /// Puts a frame on the free list even though it is locked (only the trim mutation does this).
    func releaseIgnoringLocks(_ pfn: PageFrameNumber) {
        guard isInDatabase(pfn), frames[Int(pfn)].use != .free else { return }
        frames[Int(pfn)].use = .free
        insertFree(pfn)
    }

    private func insertFree(_ pfn: PageFrameNumber) {
        // Keep the stack sorted descending so the lowest PFN is always handed out next.
        var low = 0, high = freeList.count
        while low < high {
            let mid = (low + high) / 2
            if freeList[mid] > pfn { low = mid + 1 } else { high = mid }
        }
        freeList.insert(pfn, at: low)
    }

    func setUse(_ pfn: PageFrameNumber, _ use: FrameUse) {
        guard isInDatabase(pfn) else { return }
        frames[Int(pfn)].use = use
    }

    /// Takes one lock reference. Returns false for frames outside the database (I/O space).
    @discardableResult func lock(_ pfn: PageFrameNumber) -> Bool {
        guard isInDatabase(pfn) else { return false }
        frames[Int(pfn)].lockCount &+= 1
        lockedFrames.insert(pfn)
        return true
    }

    /// Drops one lock reference; a pending-free frame whose last lock drops goes back to the free list.
    /// Returns false if the frame had no lock to drop (the caller bug-checks PFN_LIST_CORRUPT).
    func unlock(_ pfn: PageFrameNumber) -> Bool {
        guard isInDatabase(pfn), frames[Int(pfn)].lockCount > 0 else { return false }
        frames[Int(pfn)].lockCount -= 1
        if frames[Int(pfn)].lockCount == 0 { lockedFrames.remove(pfn) }
        if frames[Int(pfn)].lockCount == 0 && frames[Int(pfn)].use == .pendingFree {
            frames[Int(pfn)].use = .free
            insertFree(pfn)
        }
        return true
    }

    func deviceBacked(_ pfn: PageFrameNumber) -> Bool {
        deviceFrames.contains { pfn >= $0.first && pfn < $0.end } || (pfn >= holeFirst && pfn < holeEnd)
    }

    // MARK: Bytes

    func read(_ pfn: PageFrameNumber, offset: Int, into buffer: inout [UInt8], at start: Int, count: Int) {
        if isInDatabase(pfn) {
            let slot = Int(pageSlot[Int(pfn)])
            if slot >= 0 {
                pages[slot].withUnsafeBufferPointer { page in
                    for i in 0..<count { buffer[start + i] = page[offset + i] }
                }
            } else {
                for i in 0..<count { buffer[start + i] = 0 }
            }
        } else if let page = deviceContents[pfn] {
            for i in 0..<count { buffer[start + i] = page[offset + i] }
        } else {
            // Unwritten device memory reads as zeros; nothing decodes unbacked addresses (floating bus).
            let fill: UInt8 = deviceBacked(pfn) ? 0 : 0xFF
            for i in 0..<count { buffer[start + i] = fill }
        }
    }

    func write(_ pfn: PageFrameNumber, offset: Int, from buffer: [UInt8], at start: Int, count: Int) {
        stamp(pfn)
        if isInDatabase(pfn) {
            let slot = ensureSlot(pfn)
            pages[slot].withUnsafeMutableBufferPointer { page in
                for i in 0..<count { page[offset + i] = buffer[start + i] }
            }
        } else if deviceBacked(pfn) {
            if deviceContents[pfn] == nil { deviceContents[pfn] = [UInt8](repeating: 0, count: pageSize) }
            deviceContents[pfn]!.withUnsafeMutableBufferPointer { page in
                for i in 0..<count { page[offset + i] = buffer[start + i] }
            }
        }
    }

    /// A frame's whole contents (zeros if never written): what a page-out saves.
    func snapshot(_ pfn: PageFrameNumber) -> [UInt8]? {
        guard isInDatabase(pfn) else { return deviceContents[pfn] }
        let slot = Int(pageSlot[Int(pfn)])
        return slot >= 0 ? pages[slot] : nil
    }

    /// Restores a frame's contents (a page-in).
    func restore(_ pfn: PageFrameNumber, _ bytes: [UInt8]?) {
        guard isInDatabase(pfn) else { return }
        stamp(pfn)
        guard let bytes else { return releaseSlot(pfn) }
        pages[ensureSlot(pfn)] = bytes
    }

    func zero(_ pfn: PageFrameNumber) {
        guard isInDatabase(pfn) else { return }
        stamp(pfn)
        releaseSlot(pfn)
    }

    /// The slot holding `pfn`'s bytes, taking a zeroed one if it has none.
    private func ensureSlot(_ pfn: PageFrameNumber) -> Int {
        let existing = Int(pageSlot[Int(pfn)])
        if existing >= 0 { return existing }
        let slot: Int
        if let spare = spareSlots.popLast() {
            slot = Int(spare)
            // A spare page may still be shared with a pagefile snapshot: this write copies, as it must.
            pages[slot].withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        } else {
            slot = pages.count
            pages.append([UInt8](repeating: 0, count: pageSize))
        }
        pageSlot[Int(pfn)] = Int32(slot)
        return slot
    }

    /// Forgets `pfn`'s bytes (it reads as zeros again); its page is kept for reuse.
    private func releaseSlot(_ pfn: PageFrameNumber) {
        let slot = pageSlot[Int(pfn)]
        guard slot >= 0 else { return }
        pageSlot[Int(pfn)] = -1
        spareSlots.append(slot)
    }
}

extension PhysicalMemory {
    /// Reads a little-endian integer of `width` bytes that lies within one frame.
    func readInteger(_ pfn: PageFrameNumber, offset: Int, width: Int) -> UInt64 {
        var value: UInt64 = 0
        if isInDatabase(pfn) {
            let slot = Int(pageSlot[Int(pfn)])
            guard slot >= 0 else { return 0 }
            pages[slot].withUnsafeBufferPointer { page in
                for i in stride(from: width - 1, through: 0, by: -1) { value = value << 8 | UInt64(page[offset + i]) }
            }
            return value
        }
        var buffer = [UInt8](repeating: 0, count: width)
        read(pfn, offset: offset, into: &buffer, at: 0, count: width)
        for i in stride(from: width - 1, through: 0, by: -1) { value = value << 8 | UInt64(buffer[i]) }
        return value
    }

    /// Writes a little-endian integer of `width` bytes that lies within one frame.
    func writeInteger(_ pfn: PageFrameNumber, offset: Int, width: Int, _ value: UInt64) {
        if isInDatabase(pfn) {
            stamp(pfn)
            pages[ensureSlot(pfn)].withUnsafeMutableBufferPointer { page in
                for i in 0..<width { page[offset + i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
            }
            return
        }
        var buffer = [UInt8](repeating: 0, count: width)
        for i in 0..<width { buffer[i] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(i))) }
        write(pfn, offset: offset, from: buffer, at: 0, count: width)
    }
}

extension PhysicalMemory {
    /// Takes the lowest free frame whose PFN lies in `range` (MmAllocatePagesForMdl's Low/High bounds).
    func allocate(for use: FrameUse, in range: ClosedRange<PageFrameNumber>) -> PageFrameNumber? {
        guard let position = freeList.lastIndex(where: { range.contains($0) }) else { return nil }
        let pfn = freeList.remove(at: position)
        frames[Int(pfn)] = FrameRecord(use: use, lockCount: 0)
        zero(pfn)
        return pfn
    }
}
