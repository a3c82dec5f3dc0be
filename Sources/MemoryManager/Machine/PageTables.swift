/// A page table entry of the simulated machine.
public struct PageTableEntry: Hashable, Sendable {
    public enum State: Hashable, Sendable {
        /// Resident: the hardware PTE is valid and points at this frame.
        case valid(PageFrameNumber)
        /// Paged out; the contents are in this pagefile slot.
        case pagedOut(slot: Int)
        /// Committed but never touched: the first touch takes a zeroed frame.
        case demandZero
    }
    public var state: State
    public var protection: PageProtection
    /// False for physical mappings (MDL mappings, I/O space, nonpaged pool): never trimmed or paged out.
    public var pageable: Bool
    public var cache: CacheAttribute

    /// True when an access would not fault: resident and not PAGE_NOACCESS.
    public var isHardwareValid: Bool {
        if case .valid = state { return protection != .noAccess }
        return false
    }

    public var frame: PageFrameNumber? {
        if case .valid(let pfn) = state { return pfn }
        return nil
    }
}

/// The pagefile: slots that hold the contents of paged-out pages.
final class Pagefile {
    private var slots: [Int: [UInt8]?] = [:]
    private var freeSlots: [Int] = []
    private var nextSlot = 0

    init() {}

    /// The same pagefile, sharing nothing mutable.
    init(copying other: Pagefile) {
        slots = other.slots
        freeSlots = other.freeSlots
        nextSlot = other.nextSlot
        stores = other.stores
    }

    var slotsInUse: Int { slots.count }
    /// Pages stored so far: a slot's contents can change only when this does.
    private(set) var stores: UInt64 = 0

    func store(_ bytes: [UInt8]?) -> Int {
        stores &+= 1
        let slot = freeSlots.popLast() ?? { nextSlot += 1; return nextSlot - 1 }()
        slots[slot] = .some(bytes)
        return slot
    }

    func load(_ slot: Int) -> [UInt8]? { slots[slot] ?? nil }

    func release(_ slot: Int) {
        guard slots.removeValue(forKey: slot) != nil else { return }
        freeSlots.append(slot)
        freeSlots.sort(by: >)
    }
}

/// A virtual address descriptor: one reserved range of a process's user space.
public struct VirtualAddressDescriptor: Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        /// Memory from the environment's AllocateUserBuffer.
        case buffer
        /// A user-mode mapping of an MDL's pages (MmMapLockedPages(UserMode)).
        case lockedPagesMapping(mdl: VirtualAddress)
    }
    public var start: VirtualAddress
    /// Exclusive end.
    public var end: VirtualAddress
    public var kind: Kind
}

/// A simulated process (EPROCESS): its own page table, VADs and locked-page count.
final class Process {
    let id: UInt32
    /// The EPROCESS address (a nonpaged pool block) that MDLs store in their Process field.
    let eprocess: VirtualAddress
    var pageTable: [UInt64: PageTableEntry] = [:] { didSet { pageTableWrites &+= 1 } }
    /// Writes to this page table so far.
    private(set) var pageTableWrites: UInt64 = 0
    /// Sorted by start.
    var vads: [VirtualAddressDescriptor] = []
    /// `NumberOfLockedPages`.
    var lockedPages: Int64 = 0
    var terminated = false

    init(id: UInt32, eprocess: VirtualAddress) {
        self.id = id
        self.eprocess = eprocess
    }

    /// The same process, sharing nothing mutable.
    init(copying other: Process) {
        id = other.id
        eprocess = other.eprocess
        pageTable = other.pageTable
        pageTableWrites = other.pageTableWrites
        vads = other.vads
        lockedPages = other.lockedPages
        terminated = other.terminated
    }

    func vad(containing va: VirtualAddress) -> Int? {
        vads.firstIndex { va >= $0.start && va < $0.end }
    }

    func overlaps(start: VirtualAddress, end: VirtualAddress) -> Bool {
        vads.contains { start < $0.end && $0.start < end }
    }

    func insert(_ vad: VirtualAddressDescriptor) {
        let index = vads.firstIndex { $0.start > vad.start } ?? vads.count
        vads.insert(vad, at: index)
    }

    /// First 64 KiB-aligned free range of `bytes` at or above `lowest` that ends at or below `limit`.
    func findFreeRange(bytes: UInt64, lowest: VirtualAddress, limit: VirtualAddress) -> VirtualAddress? {
        let granularity: UInt64 = 0x1_0000
        var candidate = lowest
        for vad in vads {
            if candidate &+ bytes <= vad.start { break }
            if vad.end > candidate { candidate = (vad.end + granularity - 1) & ~(granularity - 1) }
        }
        guard candidate &+ bytes > candidate, candidate &+ bytes - 1 <= limit else { return nil }
        return candidate
    }
}
