import LockstepPrograms

/// The model's identity for a page of memory. Physical frame numbers are the engine's business; the
/// model names a page by what owns it, which survives page-out/page-in by construction.
enum Frame: Hashable, Comparable {
    /// Page `index` of user buffer `buffer`.
    case user(buffer: Int, index: UInt64)
    /// The system-space page with this virtual page number (nonpaged or paged pool).
    case system(vpn: UInt64)
    /// Device memory at this physical page.
    case device(pfn: UInt64)
    /// Page `index` handed out by MmAllocatePagesForMdl call number `batch`.
    case allocated(batch: Int, index: UInt64)
    /// A RAM page the model cannot name (a raw physical address).
    case unknown(physicalPage: UInt64)

    var isPageable: Bool {
        switch self {
        case .user: true
        default: false
        }
    }
}

/// A user buffer (AllocateUserBuffer).
struct UserBuffer {
    let id: Int
    let process: UInt32
    let base: UInt64
    let pages: UInt64
    var protection: [String]
    var alive = true
}

/// A live pool block (freed blocks are removed).
struct PoolBlock {
    let base: UInt64
    let size: UInt64
    let paged: Bool
}

/// A mapping made by MmMapLockedPages* (system or user) or MmMapIoSpace.
struct Mapping {
    let base: UInt64
    let frames: [Frame?]
    let process: UInt32?
    let mdl: MdlKey?
    let io: Bool
    /// System PTEs the mapping holds (the span; 0 for user mappings).
    var ptes: UInt64 = 0
    /// The caching the request asked for (spec §2.9 step 3's attribute for its CacheType).
    var cache: ObservedCaching = .writeBack
}

/// Where an MDL lives: its address, and the process for one in user memory.
struct MdlKey: Hashable, Comparable {
    let address: UInt64
    let process: UInt32?
    static func < (a: MdlKey, b: MdlKey) -> Bool { (a.process ?? 0, a.address) < (b.process ?? 0, b.address) }
}

/// The model's MDL: the header fields the spec defines, with the PFN array as model frames.
struct MdlRecord {
    var startVa: UInt64
    var byteOffset: UInt64
    var byteCount: UInt64
    var size: UInt64
    var flags: UInt16
    /// Process id named by the Process field; nil for NULL; `unknownProcess` for garbage.
    var process: UInt32?
    var processKnown = true
    var pfns: [Frame?]
    var mappedSystemVa: UInt64?
    /// Bytes of the memory block holding it (header + PFN slots that fit), for 0x40 and special pool.
    var capacity: UInt64
    var allocatedPages = false
    /// Leading PFN slots MmFreePagesFromMdl has set to (PFN_NUMBER)-1.
    var emptiedSlots = 0

    var va: UInt64 { startVa &+ byteOffset }
}

/// MDL flag bits (spec §1.3).
enum Flag {
    static let mapped: UInt16 = 0x0001
    static let locked: UInt16 = 0x0002
    static let nonpaged: UInt16 = 0x0004
    static let fixedSize: UInt16 = 0x0008
    static let partial: UInt16 = 0x0010
    static let partialMapped: UInt16 = 0x0020
    static let ioPageRead: UInt16 = 0x0040
    static let write: UInt16 = 0x0080
    static let ioSpace: UInt16 = 0x0800
    static let mappingCanFail: UInt16 = 0x2000
    static let mustSucceed: UInt16 = 0x4000
}

/// The NTSTATUS values the model predicts.
enum Status {
    static let accessViolation: UInt32 = 0xC000_0005
    static let inPageError: UInt32 = 0xC000_0006
    static let invalidParameter: UInt32 = 0xC000_000D
    static let noMemory: UInt32 = 0xC000_0017
    static let conflictingAddresses: UInt32 = 0xC000_0018
    static let workingSetQuota: UInt32 = 0xC000_00A1
    static let invalidAddress: UInt32 = 0xC000_0141
    static let processIsTerminating: UInt32 = 0xC000_010A
}
