/// Deliberate engine bugs, switched on only by tests that prove the lockstep oracle can fail.
/// Each is a one-line slip of the kind a kernel developer makes. Off in every shipped configuration.
@_spi(Mutations)
public struct EngineMutation: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// MmUnlockPages forgets to drop the frames' lock references.
    public static let unlockKeepsLockCounts = EngineMutation(rawValue: 1 << 0)
    /// MmInitializeMdl/IoAllocateMdl take ByteOffset from the address one byte further on.
    public static let byteOffsetOffByOne = EngineMutation(rawValue: 1 << 1)
    /// IoBuildPartialMdl copies PFNs starting one slot too far into the source.
    public static let partialMdlSkipsFirstPfn = EngineMutation(rawValue: 1 << 2)
    /// MmUnmapLockedPages clears the flag but leaves the PTEs mapped and reserved.
    public static let unmapKeepsPtes = EngineMutation(rawValue: 1 << 3)
    /// Working-set trims page out locked pages too.
    public static let trimIgnoresLocks = EngineMutation(rawValue: 1 << 4)
    /// MmProbeAndLockPages sets MDL_WRITE_OPERATION only for IoWriteAccess, not IoModifyAccess.
    public static let modifyAccessNotWrite = EngineMutation(rawValue: 1 << 5)
    /// MmIsAddressValid answers TRUE for a paged-out page.
    public static let pagedOutCountsAsValid = EngineMutation(rawValue: 1 << 6)
    /// MmGetSystemAddressForMdl maps again even when MDL_MAPPED_TO_SYSTEM_VA is set.
    public static let remapsMappedMdl = EngineMutation(rawValue: 1 << 7)
    /// MmSizeOfMdl computes its last page as `Length - 1` in checked arithmetic: Length 0 overflows and
    /// the process dies with a Swift runtime trap (how a campaign's crash isolation is tested).
    public static let sizeOfMdlTrapsOnZeroLength = EngineMutation(rawValue: 1 << 8)
    /// Mapping a partial MDL forgets MDL_PARTIAL_HAS_BEEN_MAPPED: one flag bit, no returned value.
    public static let mapOmitsPartialHasBeenMapped = EngineMutation(rawValue: 1 << 9)
    /// MmMapLockedPagesSpecifyCache builds a system mapping's PTEs cached whatever CacheType asked
    /// for: one PTE attribute.
    public static let systemMappingIgnoresCacheType = EngineMutation(rawValue: 1 << 10)
    /// MmProbeAndLockPages charges the current process for a system-space buffer too (the MDL's
    /// Process stays NULL, so nothing ever uncharges it): one process charge.
    public static let probeChargesSystemBuffers = EngineMutation(rawValue: 1 << 11)
    /// MmAllocatePagesForMdl hands out the right frames but records them in the PFN array in
    /// descending order: only PFN entries change.
    public static let allocatedPfnsReversed = EngineMutation(rawValue: 1 << 12)
    /// MmAllocatePagesForMdl rounds HighAddress's page up (Benchmarks/mutants/70): a frame just past
    /// HighAddress may be handed out.
    public static let allocatedPagesHighRoundedUp = EngineMutation(rawValue: 1 << 13)
    /// MmAllocatePagesForMdl ignores LowAddress (Benchmarks/mutants/71): frames below it may be handed out.
    public static let allocatedPagesIgnoreLow = EngineMutation(rawValue: 1 << 14)

    /// The slips by name, for `lockstep fuzz --seeded-bug NAME` (framework self-tests).
    public static let byName: [(name: String, mutation: EngineMutation)] = [
        ("unlock-keeps-lock-counts", .unlockKeepsLockCounts), ("byte-offset-off-by-one", .byteOffsetOffByOne),
        ("partial-mdl-skips-first-pfn", .partialMdlSkipsFirstPfn), ("unmap-keeps-ptes", .unmapKeepsPtes),
        ("trim-ignores-locks", .trimIgnoresLocks), ("modify-access-not-write", .modifyAccessNotWrite),
        ("paged-out-counts-as-valid", .pagedOutCountsAsValid), ("remaps-mapped-mdl", .remapsMappedMdl),
        ("size-of-mdl-traps-on-zero-length", .sizeOfMdlTrapsOnZeroLength),
        ("map-omits-partial-has-been-mapped", .mapOmitsPartialHasBeenMapped), ("system-mapping-ignores-cache-type", .systemMappingIgnoresCacheType),
        ("probe-charges-system-buffers", .probeChargesSystemBuffers), ("allocated-pfns-reversed", .allocatedPfnsReversed),
        ("allocated-pages-high-rounded-up", .allocatedPagesHighRoundedUp), ("allocated-pages-ignore-low", .allocatedPagesIgnoreLow),
    ]
}

extension Kernel {
    /// The mutations in force (tests only).
    @_spi(Mutations)
    public var mutations: EngineMutation {
        get { activeMutations }
        set { activeMutations = newValue }
    }
}
