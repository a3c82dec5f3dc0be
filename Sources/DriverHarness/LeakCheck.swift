import MemoryManager

/// What the machine holds at one moment, for Driver Verifier's checks at unload (Pool Tracking): pool
/// blocks, pages locked by MmProbeAndLockPages, MDL system mappings and MmMapIoSpace mappings.
struct ResourceSnapshot {
    let poolBlocks: Set<VirtualAddress>
    let lockedPages: UInt64
    let systemMappings: Set<VirtualAddress>
    let ioSpaceMappings: Set<VirtualAddress>

    init(_ inspect: KernelInspector) {
        poolBlocks = Set(Self.liveBlocks(inspect).map(\.start))
        lockedPages = inspect.systemLockedPages
        systemMappings = Set(inspect.mdlSystemMappings.map(\.base))
        ioSpaceMappings = Set(inspect.ioSpaceMappings.map(\.base))
    }

    /// Live blocks of both pools, nonpaged first, each in address order.
    static func liveBlocks(_ inspect: KernelInspector) -> [(start: VirtualAddress, size: UInt64)] {
        inspect.pool(.nonPagedPool).blocks + inspect.pool(.pagedPool).blocks
    }
}

/// What a driver left behind: everything live now that was not live at the baseline and that neither
/// the program's environment calls nor the I/O manager own. Lists are in address order.
struct LeakReport {
    var lockedPages: UInt64 = 0
    /// A known MDL that still has MDL_PAGES_LOCKED (0 if the driver freed it).
    var lockingMdl: VirtualAddress = 0
    var systemMappings: [(base: VirtualAddress, mdl: VirtualAddress, pages: Int)] = []
    var ioSpaceMappings: [(base: VirtualAddress, pages: Int)] = []
    var mdls: [VirtualAddress] = []
    var poolBlocks: [(start: VirtualAddress, size: UInt64)] = []

    var isEmpty: Bool {
        lockedPages == 0 && systemMappings.isEmpty && ioSpaceMappings.isEmpty && mdls.isEmpty && poolBlocks.isEmpty
    }

    /// Compares the machine now with `baseline`, leaving out blocks in `owned` (not the driver's) and
    /// freed MDL blocks parked on the lookaside list.
    init(_ inspect: KernelInspector, baseline: ResourceSnapshot, owned: Set<VirtualAddress>) {
        lockedPages = inspect.systemLockedPages > baseline.lockedPages ? inspect.systemLockedPages - baseline.lockedPages : 0
        if lockedPages > 0 {
            lockingMdl = inspect.knownMdls.first { inspect.mdl($0.location.address, processId: $0.location.processId)?.flags.contains(.pagesLocked) == true }?.location.address ?? 0
        }
        systemMappings = inspect.mdlSystemMappings.filter { !baseline.systemMappings.contains($0.base) }
        ioSpaceMappings = inspect.ioSpaceMappings.filter { !baseline.ioSpaceMappings.contains($0.base) }
        let parked = Set(inspect.lookasideMdls)
        let mdlStarts = Set(inspect.knownMdls.filter { $0.location.processId == nil }.map(\.location.address))
        for block in ResourceSnapshot.liveBlocks(inspect)
        where !baseline.poolBlocks.contains(block.start) && !owned.contains(block.start) && !parked.contains(block.start) {
            if mdlStarts.contains(block.start) { mdls.append(block.start) } else { poolBlocks.append(block) }
        }
    }

    /// The finding, most specific rule first: locked pages (0xCB), then Pool Tracking's 0xC4/0x62 for
    /// mappings, MDLs and pool (P4: the number of allocations not freed). Nil when nothing leaked.
    func finding(at moment: String) -> (rule: DriverRule, check: BugCheck, detail: String)? {
        guard !isEmpty else { return nil }
        var parts: [String] = []
        if lockedPages > 0 { parts.append("\(lockedPages) locked page(s)" + (lockingMdl != 0 ? " (MDL \(hexString(lockingMdl)))" : "")) }
        if !systemMappings.isEmpty { parts.append("system mapping(s) " + systemMappings.map { "\(hexString($0.base)) of MDL \(hexString($0.mdl))" }.joined(separator: ", ")) }
        if !ioSpaceMappings.isEmpty { parts.append("I/O space mapping(s) " + ioSpaceMappings.map { "\(hexString($0.base)) (\($0.pages) page(s))" }.joined(separator: ", ")) }
        if !mdls.isEmpty { parts.append("MDL(s) " + mdls.map(hexString).joined(separator: ", ")) }
        if !poolBlocks.isEmpty { parts.append("pool block(s) " + poolBlocks.map { "\(hexString($0.start)) (\(hexString($0.size)) bytes)" }.joined(separator: ", ")) }
        let detail = "\(moment), the driver still holds " + parts.joined(separator: "; ")
        if lockedPages > 0 {
            return (.leakedLockedPages, BugCheck(BugCheck.driverLeftLockedPagesInProcess, 0, 0, lockingMdl, lockedPages), detail)
        }
        let allocations = UInt64(systemMappings.count + ioSpaceMappings.count + mdls.count + poolBlocks.count)
        let check = BugCheck(BugCheck.driverVerifierDetectedViolation, 0x62, 0, 0, allocations)
        let rule: DriverRule = !systemMappings.isEmpty ? .leakedSystemMapping : !ioSpaceMappings.isEmpty ? .leakedIoSpaceMapping
            : !mdls.isEmpty ? .leakedMdl : .leakedPool
        return (rule, check, detail)
    }
}
