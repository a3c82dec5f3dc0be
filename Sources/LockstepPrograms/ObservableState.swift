/// What a driver, or a later call, can observe of the machine: the projection the lockstep runner
/// builds once from the engine's inspector and once from the reference model's own records, and
/// compares field by field after every step.
///
/// It is part of the shared vocabulary so that neither side sees the other's types. A field the
/// model cannot know is `nil` on the model's side: the comparison counts it as unknown instead of
/// skipping it silently. The engine's side always fills every field it has.
public struct ObservableState: Sendable, Equatable {
    /// Whether this is a full observation: `mdls` and `mappings` list every live one, and the
    /// inventories (frame locks, pool blocks) were taken. A per-step observation lists the objects the
    /// call named and leaves the inventories to the end of the program.
    public var isFull = false
    /// Live MDLs by where they are (the engine's side: for the addresses asked about).
    public var mdls: [ObservedMdlKey: ObservedMdl] = [:]
    /// Live mappings: MDL system and user mappings and I/O-space mappings, by page-aligned base.
    public var mappings: [ObservedMappingKey: ObservedMapping] = [:]
    /// Each live process's locked-page charge (`NumberOfLockedPages`), by process id.
    /// (A short list in process order rather than a dictionary: it is built after every step.)
    public var lockedPageCharges: [ObservedCharge] = []
    /// Pages locked by MmProbeAndLockPages system-wide.
    public var systemLockedPages: UInt64?
    /// The lock count of every RAM frame that holds a lock reference; nil when the model cannot
    /// name them all.
    public var frameLocks: [FrameName: Int]?
    /// System PTEs reserved.
    public var systemPtesInUse: UInt64?
    /// Bytes in live nonpaged-pool blocks, and the blocks' starts in address order.
    public var nonpagedPoolBytes: UInt64?
    public var nonpagedPoolBlocks: [UInt64]?
    /// Bytes in live paged-pool blocks.
    public var pagedPoolBytes: UInt64?
    /// Each live IRP's MDL chain: Irp->MdlAddress, then each Next.
    public var irpChains: [UInt64: ObservedChain] = [:]
    /// For each MmAllocatePagesForMdl batch (`FrameName.allocated`), the physical pages it may take
    /// (its [LowAddress, HighAddress] range); a batch's pages are handed out in ascending order.
    public var allocatedPageRanges: [Int: ClosedRange<UInt64>] = [:]

    public init() {}
}

/// One process's locked-page charge; nil when the model cannot know it.
public struct ObservedCharge: Sendable, Equatable {
    public var process: UInt32
    public var lockedPages: Int64?
    public init(process: UInt32, lockedPages: Int64?) {
        self.process = process
        self.lockedPages = lockedPages
    }
}

/// An IRP's MDL chain as far as it is known: the links from Irp->MdlAddress on, and whether the last
/// one's Next is NULL (false: the chain goes on through memory the observer cannot vouch for, such as
/// a freed MDL, and only this prefix is compared).
public struct ObservedChain: Sendable, Equatable {
    public var links: [UInt64]
    public var endsInNull: Bool
    public init(links: [UInt64], endsInNull: Bool) { self.links = links; self.endsInNull = endsInNull }
}

/// Where an MDL lives: its address, and the process whose space holds it (nil: system space).
public struct ObservedMdlKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let address: UInt64
    public let process: UInt32?
    public init(address: UInt64, process: UInt32?) { self.address = address; self.process = process }
    public static func < (a: Self, b: Self) -> Bool { (a.process ?? 0, a.address) < (b.process ?? 0, b.address) }
    public var description: String {
        "MDL 0x\(String(address, radix: 16, uppercase: true))" + (process.map { " (process \($0))" } ?? "")
    }
}

/// An MDL's header as a driver reads it, and the pages its PFN array names.
public struct ObservedMdl: Sendable, Equatable {
    public var next: UInt64?
    /// `Size` as its 16 bits.
    public var size: UInt16?
    public var flags: UInt16?
    public var process: ObservedProcessField?
    public var mappedSystemVa: UInt64?
    public var startVa: UInt64?
    public var byteCount: UInt64?
    public var byteOffset: UInt64?
    /// The PFN slots of the MDL's span (nil entries: a slot the model cannot name).
    public var pfns: [FrameName?] = []

    public init() {}
}

/// The `Process` field: NULL, or a process's EPROCESS (named by process id).
public enum ObservedProcessField: Hashable, Sendable, CustomStringConvertible {
    case null
    case process(UInt32)
    /// A pointer that is no process's EPROCESS (the engine's side only).
    case other(UInt64)

    public var description: String {
        switch self {
        case .null: "NULL"
        case .process(let id): "process \(id)"
        case .other(let value): "0x" + String(value, radix: 16, uppercase: true)
        }
    }
}

/// A mapping's identity: its page-aligned base, and the process for a user-space mapping.
public struct ObservedMappingKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public let base: UInt64
    public let process: UInt32?
    public init(base: UInt64, process: UInt32?) { self.base = base; self.process = process }
    public static func < (a: Self, b: Self) -> Bool { (a.process ?? 0, a.base) < (b.process ?? 0, b.base) }
    public var description: String {
        "mapping 0x\(String(base, radix: 16, uppercase: true))" + (process.map { " (process \($0))" } ?? "")
    }
}

/// A live mapping and the attributes of each of its PTEs.
public struct ObservedMapping: Sendable, Equatable {
    public enum Kind: String, Sendable { case mdlSystem = "MDL system mapping", mdlUser = "MDL user mapping", ioSpace = "I/O-space mapping" }
    public var kind: Kind
    public var pages: UInt64?
    /// Per page: the frame it maps, whether the PTE is valid, writable, and its caching.
    public var frames: [FrameName?] = []
    public var valid: [Bool?] = []
    public var writable: [Bool?] = []
    public var caching: [ObservedCaching?] = []
    /// Whether the working-set manager may page the PTE's page out: never, for the mappings these
    /// routines make (the pages behind them are locked or nonpaged), so a trim cannot take them.
    public var pageable: [Bool?] = []

    public init(kind: Kind) { self.kind = kind }
}

/// The caching a PTE carries (spec §2.9 step 3: the platform's attribute for a MEMORY_CACHING_TYPE).
public enum ObservedCaching: String, Sendable, Hashable {
    case writeBack = "WB", uncached = "UC", writeCombined = "WC"

    /// The x86/x64 attribute for a MEMORY_CACHING_TYPE value (spec §2.9 step 3): MmNonCached and
    /// MmNonCachedUnordered are UC, MmWriteCombined and MmUSWCCached WC, the rest WB.
    public init(cachingType: UInt64) {
        switch cachingType & 0xFF {
        case 0, 4: self = .uncached
        case 2, 5: self = .writeCombined
        default: self = .writeBack
        }
    }
}

/// A page frame as both sides can name it. Physical frame numbers are the engine's business; the
/// model names a page by where it lives, and the comparison resolves that name through the engine's
/// page tables (or, for pages no address names any more, by consistency across the whole state).
public enum FrameName: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The page mapped at this page-aligned VA in a process's space (nil: system space).
    case virtual(process: UInt32?, va: UInt64)
    /// A page no live address names any more (a freed buffer's locked page): the model's own token.
    case detached(token: UInt64)
    /// A physical page by number (device memory, a raw physical address; the engine's side always).
    case physical(page: UInt64)
    /// Page `index` that the `batch`-th successful MmAllocatePagesForMdl handed out.
    case allocated(batch: Int, index: Int)
    /// A PFN slot holding (PFN_NUMBER)-1.
    case empty

    /// Kind, then owner, then page: an order that does not depend on hashing.
    private var sortKey: (Int, UInt64, UInt64) {
        switch self {
        case .virtual(let process, let va): (0, UInt64(process ?? 0), va)
        case .detached(let token): (1, 0, token)
        case .physical(let page): (2, 0, page)
        case .allocated(let batch, let index): (3, UInt64(batch), UInt64(index))
        case .empty: (4, 0, 0)
        }
    }

    public static func < (a: FrameName, b: FrameName) -> Bool { a.sortKey < b.sortKey }

    public var description: String {
        func hex(_ v: UInt64) -> String { "0x" + String(v, radix: 16, uppercase: true) }
        switch self {
        case .virtual(let process, let va): return "page at \(hex(va))" + (process.map { " in process \($0)" } ?? "")
        case .detached(let token): return "detached page #\(token)"
        case .physical(let page): return "PFN \(hex(page))"
        case .allocated(let batch, let index): return "page \(index) of MmAllocatePagesForMdl batch \(batch)"
        case .empty: return "(PFN_NUMBER)-1"
        }
    }
}

/// Which objects an observation covers.
public enum ObservationScope: Sendable {
    /// Everything live.
    case full
    /// The MDLs at these addresses (and their mappings), the mappings based at these pages, and the
    /// accounting, which is always whole.
    case objects([UInt64])
}
