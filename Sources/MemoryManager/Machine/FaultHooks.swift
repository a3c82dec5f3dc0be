/// Every place where NT can fail for lack of a resource. Each goes through one decision point,
/// ``Kernel/faultDecider``, so a fault plan can drive them deterministically.
public enum ResourceKind: String, Sendable, CaseIterable, Comparable {
    /// An ExAllocatePool(NonPagedPool) (MDLs, IRPs, VAD quota, …).
    case nonpagedPool = "pool.nonpaged"
    /// An ExAllocatePool(PagedPool).
    case pagedPool = "pool.paged"
    /// A reservation of system PTEs (MDL mappings, MmMapIoSpace).
    case systemPtes = "ptes"
    /// Taking a physical frame off the free list (demand-zero fault, page-in, MmAllocatePagesForMdl).
    case frame = "frame"
    /// The read of a paged-out page from the pagefile.
    case pageIn = "pagein"

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    /// Position in `allCases`, the index of this kind's decision counter.
    var ordinalIndex: Int {
        switch self {
        case .nonpagedPool: 0
        case .pagedPool: 1
        case .systemPtes: 2
        case .frame: 3
        case .pageIn: 4
        }
    }
}

/// One resource decision, as the fault decider sees it.
public struct FaultSite: Sendable, Equatable {
    /// What is being allocated or read.
    public let kind: ResourceKind
    /// 1-based count of decisions of this kind so far on this machine (the `nth` of a fault plan).
    public let ordinal: UInt64
    /// The NT routine (or environment action) being executed.
    public let routine: String
    /// The virtual address of the page, for page-ins and demand-zero faults; 0 otherwise.
    public let address: VirtualAddress
    /// Bytes or pages requested, where that applies.
    public let amount: UInt64
}

/// What the fault decider says at a decision point.
public enum FaultDecision: Sendable, Equatable {
    /// Let the real allocator decide (it may still fail if the resource is genuinely exhausted).
    case proceed
    /// Fail this decision. For page-ins, the I/O status the pagefile read completed with.
    case fail(NTStatus)
}
