/// A read-only view of the machine for invariant checks, tests and traces. Reading through it never
/// faults, pages anything in, counts a fault decision or changes any state.
public struct KernelInspector {
    let kernel: Kernel

    /// One process as the inspector shows it.
    public struct ProcessInfo: Hashable, Sendable {
        public let id: UInt32
        public let eprocess: VirtualAddress
        /// `NumberOfLockedPages`.
        public let lockedPages: Int64
        public let terminated: Bool
        public let vads: [VirtualAddressDescriptor]
    }

    /// Processes in id order.
    public var processes: [ProcessInfo] {
        kernel.processes.keys.sorted().compactMap { id in
            kernel.processes[id].map { ProcessInfo(id: $0.id, eprocess: $0.eprocess, lockedPages: $0.lockedPages, terminated: $0.terminated, vads: $0.vads) }
        }
    }

    /// A live or ended process's locked-page charge (`NumberOfLockedPages`), without copying its VADs.
    public func lockedPages(ofProcess id: UInt32) -> Int64? { kernel.processes[id]?.lockedPages }

    /// The process id an EPROCESS address belongs to.
    public func processId(eprocess: VirtualAddress) -> UInt32? { kernel.processByEprocess[eprocess] }

    /// Number of RAM page frames (PFN 0 … count-1, the legacy hole excluded from the database).
    public var ramFrameCount: UInt64 { kernel.physical.ramFrameCount }

    /// The PFN database entry of a RAM frame; nil for I/O space.
    public func frame(_ pfn: PageFrameNumber) -> FrameRecord? { kernel.physical.record(pfn) }

    /// True when a device window (or the legacy hole) decodes frame `pfn` outside RAM: only there do
    /// written bytes stick; elsewhere nothing answers (a floating bus reads 0xFF).
    public func isDeviceMemory(_ pfn: PageFrameNumber) -> Bool { kernel.physical.deviceBacked(pfn) }

    /// Frames whose lock count is above zero, in PFN order.
    public var lockedFrames: [PageFrameNumber] { kernel.physical.lockedFrames.sorted() }

    /// How many frames hold a lock reference.
    public var lockedFrameCount: Int { kernel.physical.lockedFrames.count }

    /// Free frames on the free list.
    public var freeFrameCount: Int { kernel.physical.freeFrameCount }

    /// The PTE for `va` in a process's context (system addresses ignore the process).
    public func pte(_ va: VirtualAddress, processId: UInt32? = nil) -> PageTableEntry? {
        let c = kernel.constants
        if !c.isUserAddress(va) { return kernel.systemPageTable[c.pageNumber(va)] }
        return kernel.processes[processId ?? kernel.currentProcessId]?.pageTable[c.pageNumber(va)]
    }

    /// A value that changes whenever the bytes a PTE in state `state` reads may have changed: the frame's
    /// content stamp when resident, the pagefile's store count when paged out. Lets an observer skip
    /// re-reading memory that cannot have changed since it last looked.
    public func contentStamp(_ state: PageTableEntry.State) -> UInt64 {
        switch state {
        case .valid(let pfn): return kernel.physical.contentStamp(pfn)
        case .pagedOut: return kernel.pagefile.stores
        case .demandZero: return 0
        }
    }

    /// The content stamp of a physical frame (RAM or device memory); see `contentStamp(_:)`.
    public func contentStamp(frame pfn: PageFrameNumber) -> UInt64 { kernel.physical.contentStamp(pfn) }

    /// A value that changes whenever any page table or the PFN database may have changed (a PTE written,
    /// a process created or ended, a frame allocated, freed, locked or unlocked): an observer that saw
    /// the same value before may reuse what it derived from them then.
    public var mappingGeneration: UInt64 {
        var generation = kernel.systemPageTableWrites &+ kernel.physical.recordChanges &* 0x9E37_79B9
        for (id, process) in kernel.processes {
            generation &+= (process.pageTableWrites &+ UInt64(id) &+ (process.terminated ? 1 << 40 : 0)) &* 0x1000_0000_01B3
        }
        return generation
    }

    /// Valid system PTEs in address order (va, entry).
    public var systemPtes: [(va: VirtualAddress, entry: PageTableEntry)] {
        kernel.systemPageTable.keys.sorted().map { ($0 << kernel.constants.pageShift, kernel.systemPageTable[$0]!) }
    }

    /// All PTEs of one process in address order.
    public func userPtes(processId: UInt32) -> [(va: VirtualAddress, entry: PageTableEntry)] {
        guard let process = kernel.processes[processId] else { return [] }
        return process.pageTable.keys.sorted().map { ($0 << kernel.constants.pageShift, process.pageTable[$0]!) }
    }

    /// MDLs the engine made or initialised and that are not freed: system-space ones in address order,
    /// then those in user memory by process.
    public var knownMdls: [(location: MdlLocation, origin: MdlOrigin)] {
        kernel.knownMdls.keys.sorted().map { ($0, kernel.knownMdls[$0]!) }
    }

    /// Decodes the MDL header at `mdl` (in `processId`'s space for a user address; default: current),
    /// or nil if its memory is not readable without a fault.
    public func mdl(_ mdl: VirtualAddress, processId: UInt32? = nil) -> MdlHeader? {
        try? kernel.inspectHeader(mdl, processId: processId)
    }

    /// PFN slot `index` of the MDL at `mdl`.
    public func pfn(_ mdl: VirtualAddress, _ index: UInt64, processId: UInt32? = nil) -> PageFrameNumber? {
        let c = kernel.constants
        return kernel.peekInteger(c.add(mdl, c.mdlHeaderSize + index * c.pfnSize), width: Int(c.pfnSize), processId: processId)
    }

    /// Bytes at a virtual address in a process's context, without faulting (paged-out pages are read
    /// from the pagefile, demand-zero pages read as zeros); nil if any byte is unmapped.
    public func peek(_ va: VirtualAddress, count: Int, processId: UInt32? = nil) -> [UInt8]? {
        kernel.peekBytes(va, count: count, processId: processId)
    }

    /// Bytes at a physical address (RAM or device memory).
    public func physicalBytes(_ pa: PhysicalAddress, count: Int) -> [UInt8] {
        let c = kernel.constants
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        var address = pa
        while done < count {
            let offset = Int(address & (c.pageSize - 1))
            let chunk = min(count - done, Int(c.pageSize) - offset)
            kernel.physical.read(address >> c.pageShift, offset: offset, into: &out, at: done, count: chunk)
            done += chunk
            address += UInt64(chunk)
        }
        return out
    }

    /// Pool usage: bytes in live blocks, and the live blocks in address order.
    public func pool(_ type: PoolType) -> (bytesInUse: UInt64, blocks: [(start: VirtualAddress, size: UInt64)]) {
        let pool = kernel.pool(type)
        return (pool.bytesInUse, pool.liveBlocks)
    }

    /// Fixed-size MDL blocks parked on the lookaside list.
    public var lookasideMdls: [VirtualAddress] { kernel.mdlLookaside }

    /// A value that changes whenever a pool block is allocated or freed (either pool).
    public var poolGeneration: UInt64 { kernel.pool(.nonPagedPool).changes &+ kernel.pool(.pagedPool).changes &* 0x9E37_79B9 }

    /// Whether `va` lies in the nonpaged or paged pool's range (allocated or not).
    public func isPoolAddress(_ va: VirtualAddress) -> Bool { kernel.isPoolAddress(va) }

    /// The live pool block (either pool) that contains `va`, if any.
    public func poolBlock(containing va: VirtualAddress) -> (start: VirtualAddress, size: UInt64)? { kernel.poolBlock(containing: va) }

    /// System PTE usage.
    public var systemPteUsage: (total: Int, inUse: Int, largestFreeRun: Int, reservations: [(index: Int, count: Int)], corruptReleases: Int) {
        let a = kernel.systemPtes
        return (a.count, a.inUseCount, a.largestFreeRun, a.reservations.keys.sorted().map { ($0, a.reservations[$0]!) }, a.corruptReleases)
    }

    /// System PTEs reserved right now.
    public var systemPtesInUse: Int { kernel.systemPtes.inUseCount }

    /// Releases of system PTEs that were not reserved (free-build corruption).
    public var systemPteCorruptReleases: Int { kernel.systemPtes.corruptReleases }

    /// Live kernel-mode MDL mappings (page-aligned base, MDL, pages) in address order.
    public var mdlSystemMappings: [(base: VirtualAddress, mdl: VirtualAddress, pages: Int)] {
        kernel.mdlSystemMappings.keys.sorted().map { ($0, kernel.mdlSystemMappings[$0]!.mdl, kernel.mdlSystemMappings[$0]!.pages) }
    }

    /// Whether a live kernel MDL mapping or MmMapIoSpace mapping has a page in [start, end).
    public func systemMappingOverlaps(_ start: VirtualAddress, _ end: VirtualAddress) -> Bool {
        let page = kernel.constants.pageSize
        if kernel.mdlSystemMappings.contains(where: { $0.key < end && start < $0.key &+ UInt64($0.value.pages) &* page }) { return true }
        return kernel.ioSpaceMappings.contains { $0.key < end && start < $0.key &+ UInt64($0.value) &* page }
    }

    /// Pages of the kernel MDL mapping based at `base`, if one is live (no sorted copy made).
    public func mdlSystemMappingPages(base: VirtualAddress) -> Int? { kernel.mdlSystemMappings[base]?.pages }

    /// Pages of the MmMapIoSpace mapping based at `base`, if one is live.
    public func ioSpaceMappingPages(base: VirtualAddress) -> Int? { kernel.ioSpaceMappings[base] }

    /// Pages of the user-space MmMapLockedPages mapping (a locked-pages VAD) based at `base` in a process.
    public func userMappingPages(base: VirtualAddress, processId: UInt32) -> UInt64? {
        guard let vad = kernel.processes[processId]?.vads.first(where: { vad in
            if case .lockedPagesMapping = vad.kind { return vad.start == base }
            return false
        }) else { return nil }
        return (vad.end - vad.start) >> kernel.constants.pageShift
    }

    /// Live MmMapIoSpace mappings (page-aligned base, pages) in address order.
    public var ioSpaceMappings: [(base: VirtualAddress, pages: Int)] {
        kernel.ioSpaceMappings.keys.sorted().map { ($0, kernel.ioSpaceMappings[$0]!) }
    }

    /// Pages of all live kernel MDL mappings plus all MmMapIoSpace mappings (what system PTE use should equal).
    public var mappedSystemPtePages: Int {
        kernel.mdlSystemMappings.values.reduce(0) { $0 + $1.pages } + kernel.ioSpaceMappings.values.reduce(0, +)
    }

    /// A pool's bytes-in-use counter.
    public func poolBytesInUse(_ type: PoolType) -> UInt64 { kernel.pool(type).bytesInUse }

    /// The sum of a pool's live block sizes (what its bytes-in-use counter should equal).
    public func poolBlockBytes(_ type: PoolType) -> UInt64 { kernel.pool(type).blocks.values.reduce(0, +) }

    /// The lowest-addressed valid PTE (system space first, then processes in id order) that maps a frame
    /// on the free list, if any. No copies of the page tables are made.
    public var firstPteMappingAFreeFrame: (processId: UInt32?, va: VirtualAddress, pfn: PageFrameNumber)? {
        func scan(_ table: [UInt64: PageTableEntry]) -> (UInt64, PageFrameNumber)? {
            var found: (UInt64, PageFrameNumber)?
            for (vpn, entry) in table {
                guard let pfn = entry.frame, kernel.physical.record(pfn)?.use == .free else { continue }
                if found == nil || vpn < found!.0 { found = (vpn, pfn) }
            }
            return found
        }
        let shift = kernel.constants.pageShift
        if let (vpn, pfn) = scan(kernel.systemPageTable) { return (nil, vpn << shift, pfn) }
        for id in kernel.processes.keys.sorted() {
            guard let process = kernel.processes[id], !process.terminated, let (vpn, pfn) = scan(process.pageTable) else { continue }
            return (id, vpn << shift, pfn)
        }
        return nil
    }

    /// Pages locked by MmProbeAndLockPages system-wide.
    public var systemLockedPages: UInt64 { kernel.systemLockedPages }

    /// Live IRPs in address order.
    public var irps: [VirtualAddress] { kernel.irps.sorted() }

    /// Pagefile slots holding paged-out pages.
    public var pagefileSlotsInUse: Int { kernel.pagefile.slotsInUse }
}

extension Kernel {
    /// Reads bytes without faulting or changing anything; nil if some page has no PTE.
    func peekBytes(_ va: VirtualAddress, count: Int, processId: UInt32? = nil) -> [UInt8]? {
        let c = constants
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        var address = va
        while done < count {
            let offset = Int(c.byteOffset(address))
            let chunk = min(count - done, Int(c.pageSize) - offset)
            let table = c.isUserAddress(address) ? processes[processId ?? currentProcessId]?.pageTable : systemPageTable
            guard let entry = table?[c.pageNumber(address)] else { return nil }
            switch entry.state {
            case .valid(let pfn): physical.read(pfn, offset: offset, into: &out, at: done, count: chunk)
            case .pagedOut(let slot):
                if let page = pagefile.load(slot) { for i in 0..<chunk { out[done + i] = page[offset + i] } }
            case .demandZero: break
            }
            done += chunk
            address = c.add(address, UInt64(chunk))
        }
        return out
    }

    func peekInteger(_ va: VirtualAddress, width: Int, processId: UInt32? = nil) -> UInt64? {
        let c = constants
        // Within one resident page (the usual case): one translation, no buffer.
        if Int(c.byteOffset(va)) + width <= Int(c.pageSize) {
            let table = c.isUserAddress(va) ? processes[processId ?? currentProcessId]?.pageTable : systemPageTable
            if case .valid(let pfn)? = table?[c.pageNumber(va)]?.state {
                return physical.readInteger(pfn, offset: Int(c.byteOffset(va)), width: width)
            }
        }
        return peekBytes(va, count: width, processId: processId).map { bytes in
            var value: UInt64 = 0
            for byte in bytes.reversed() { value = value << 8 | UInt64(byte) }
            return value
        }
    }

    /// The MDL header at `mdl`, read without faulting.
    func inspectHeader(_ mdl: VirtualAddress, processId: UInt32? = nil) throws -> MdlHeader {
        let c = constants
        let l = c.mdlLayout
        guard let bytes = peekBytes(mdl, count: Int(c.mdlHeaderSize), processId: processId) else { throw KernelError.raised(.accessViolation) }
        func field(_ offset: UInt64, _ width: UInt64) -> UInt64 {
            var value: UInt64 = 0
            for index in stride(from: Int(offset) + Int(width) - 1, through: Int(offset), by: -1) { value = value << 8 | UInt64(bytes[index]) }
            return value
        }
        return MdlHeader(next: field(l.next, l.pointerBytes), size: Int16(truncatingIfNeeded: field(l.size, 2)),
                         flags: MdlFlags(rawValue: UInt16(field(l.mdlFlags, 2))), process: field(l.process, l.pointerBytes),
                         mappedSystemVa: field(l.mappedSystemVa, l.pointerBytes), startVa: field(l.startVa, l.pointerBytes),
                         byteCount: UInt32(field(l.byteCount, 4)), byteOffset: UInt32(field(l.byteOffset, 4)))
    }
}
