import LockstepPrograms
import MemoryManager

/// The engine-wide invariants checked after every step.
public enum Invariant: String, Sendable, CaseIterable {
    /// Every frame's lock count equals what locked MDLs (and locks leaked by freed MDLs) account for;
    /// a locked frame is never free, and a locked user page stays resident.
    case frameLockAccounting = "frame-locks"
    /// Each process's locked-page count equals the spans of its locked MDLs (plus leaked ones).
    case processLockAccounting = "process-locks"
    /// MDL headers are well formed and system mappings translate to the MDL's PFNs.
    case mdlConsistency = "mdl-consistency"
    /// System PTEs in use equal the live MDL and I/O-space mappings; pool use equals its live blocks, and
    /// every live block is held by the program (or parked by the engine: lookaside MDLs, EPROCESS).
    case resourceAccounting = "resource-accounting"
    /// Bytes written stay readable where they were written, across aliases and page-out/page-in.
    case dataIntegrity = "data-integrity"
    /// No valid PTE and no locked MDL refers to a free frame.
    case noDanglingFrames = "no-dangling-frames"
}

/// One invariant violation: which invariant and what exactly is wrong.
public struct InvariantViolation: Hashable, Sendable, CustomStringConvertible {
    public let invariant: Invariant
    public let detail: String
    public var description: String { "\(invariant.rawValue): \(detail)" }
}

/// Checks the invariants after each step, keeping the few facts the engine does not record: locks
/// leaked by MDLs freed or re-initialised while locked, and the bytes the program wrote.
final class InvariantChecker {
    private struct LockedMdl: Equatable {
        var pfns: [PageFrameNumber]
        var process: VirtualAddress
        var span: Int64
    }

    private enum ShadowPage: Hashable, Comparable {
        case user(process: UInt32, vpn: UInt64)
        case device(pfn: UInt64)
    }

    /// The bytes written into one page: a byte per offset, and the written offsets' bounds.
    private struct WrittenBytes {
        var bytes: [UInt8]
        var written: [Bool]
        var low: Int
        var high: Int

        init(pageSize: Int) {
            bytes = [UInt8](repeating: 0, count: pageSize)
            written = [Bool](repeating: false, count: pageSize)
            low = pageSize
            high = -1
        }

        mutating func record(_ byte: UInt8, at offset: Int) {
            bytes[offset] = byte
            written[offset] = true
            low = min(low, offset)
            high = max(high, offset)
        }
    }

    private var lockedLastStep: [MdlLocation: LockedMdl] = [:]
    private var leakedFrameLocks: [PageFrameNumber: Int] = [:]
    private var leakedProcessPages: [VirtualAddress: Int64] = [:]
    private var shadow: [ShadowPage: WrittenBytes] = [:]
    /// What each shadow page's memory looked like when it last matched (its PTE state and content
    /// stamp): a page whose memory cannot have changed since is not read again.
    private var verified: [ShadowPage: (state: PageTableEntry.State?, stamp: UInt64)] = [:]
    /// The page tables and PFN database last found free of PTEs that map free frames.
    private var noDanglingAt: UInt64?
    /// Pool blocks the program holds: what its allocating calls returned, less what it freed. Kept from
    /// the calls and their outcomes, not from the engine's records, so a block the engine allocates on
    /// a failure path and forgets is seen as a leak.
    private var programPoolBlocks: Set<VirtualAddress> = []
    /// Live MmMapIoSpace mappings: where, how many bytes, and the caching their PTEs must carry,
    /// worked out here from the CacheType argument (spec §2.9 step 3), not taken from the engine.
    private var ioMappings: [VirtualAddress: (physical: UInt64, bytes: UInt64, cache: CacheAttribute)] = [:]

    /// Set once the program writes past the pool block a write starts in, or writes MdlFlags bits only
    /// the memory manager may set: what the engine holds after that (an MDL's header or PFN array
    /// overwritten) is the program's doing, not an inconsistency.
    private(set) var programCorruptedKernelMemory = false
    /// What the last clean pool-ownership and I/O-caching checks saw (pool and mapping generations,
    /// and the program's own records): unchanged since, they are not repeated.
    private var poolOwnershipCheckedAt: (pool: UInt64, held: Int)?
    private var ioCachingCheckedAt: (mappings: UInt64, records: Int)?

    /// Sets `programCorruptedKernelMemory` when a write of `count` bytes at `va` (whole, or faulted part
    /// way: the bytes before the fault are written) lands where only the memory manager writes.
    func noteCorruption(_ kernel: Kernel, writeAt va: UInt64, count: UInt64) {
        let c = kernel.constants
        if kernel.inspect.isPoolAddress(va),
           kernel.inspect.poolBlock(containing: va).map({ (va - $0.start) + count > $0.size }) ?? true {
            programCorruptedKernelMemory = true
        }
        // Rewriting an MDL's header (its flags, say PAGES_LOCKED) or the PFN array of a locked MDL makes
        // the MDL claim pages and locks no routine gave it: the program's doing.
        if let (mdls, headers) = observed, count > 0 {
            let end = va &+ count
            let current = kernel.currentProcessId
            for (mdl, header) in zip(mdls, headers) where mdl.location.processId == nil || mdl.location.processId == current {
                let first = mdl.location.address
                var last = first &+ c.mdlHeaderSize
                // (A header that could not be read, say paged out, is still the MDL's.)
                if let header, header.flags.contains(.pagesLocked) {
                    last = last &+ c.spanPages(c.add(header.startVa, UInt64(header.byteOffset)), UInt64(header.byteCount)) &* c.pfnSize
                }
                if va < last && first < end { programCorruptedKernelMemory = true }
            }
        }
    }

    /// Records a successful WriteMemory so data integrity can be checked later.
    func recordWrite(_ kernel: Kernel, at va: UInt64, _ bytes: [UInt8]) {
        let c = kernel.constants
        noteCorruption(kernel, writeAt: va, count: UInt64(bytes.count))
        for (index, byte) in bytes.enumerated() {
            let address = c.add(va, UInt64(index))
            guard let key = shadowKey(kernel, address) else { continue }
            shadow[key, default: WrittenBytes(pageSize: Int(c.pageSize))].record(byte, at: Int(c.byteOffset(address)))
            verified[key] = nil
        }
    }

    private func forgetUnmappedShadow(_ kernel: Kernel) {
        let c = kernel.constants
        for key in shadow.keys {
            guard case .user(let process, let vpn) = key, kernel.inspect.pte(vpn << c.pageShift, processId: process) == nil else { continue }
            shadow[key] = nil
            verified[key] = nil
        }
    }

    /// Forgets written bytes the engine itself may overwrite (an MDL built over them).
    func forgetShadow(_ kernel: Kernel, around va: UInt64, bytes: UInt64) {
        guard !shadow.isEmpty else { return }
        let c = kernel.constants
        // System space reaches a shadowed page only through an MDL system mapping or an I/O-space
        // mapping (of a device page, or an alias of RAM): with neither live, a system range has nothing
        // to forget, and its page-table walk is skipped.
        if !c.isUserAddress(va) && !kernel.inspect.systemMappingOverlaps(c.pageAlign(va), va &+ bytes) { return }
        // Walk the pages the range spans in the machine's pointer width (an argument past 2^32 on x86 is
        // masked as the engine masks it), wrapping at the top of the address space, at most once round it.
        let addressSpacePages = (c.pointerMask >> c.pageShift) + 1
        let pages = min((c.byteOffset(va) + min(bytes, c.pointerMask) + c.pageSize - 1) / c.pageSize, addressSpacePages)
        for index in 0..<pages {
            if let key = shadowKey(kernel, c.add(c.pageAlign(va), index &* c.pageSize)) {
                shadow[key] = nil
                verified[key] = nil
            }
        }
    }

    private func shadowKey(_ kernel: Kernel, _ va: UInt64) -> ShadowPage? {
        let c = kernel.constants
        guard let pfn = kernel.inspect.pte(va)?.frame else { return nil }
        if let record = kernel.inspect.frame(pfn) {
            if case .processPage(let process, let vpn) = record.use { return .user(process: process, vpn: vpn) }
            return nil
        }
        // Only decoded device memory keeps what is written; an address nothing decodes reads 0xFF.
        return pfn < (1 << (52 - c.pageShift)) && kernel.inspect.isDeviceMemory(pfn) ? .device(pfn: pfn) : nil
    }

    /// The MDLs the engine knows, their headers (decoded once per step) and which are locked, as last observed.
    private var observed: (mdls: [(location: MdlLocation, origin: MdlOrigin)], headers: [MdlHeader?])?

    /// Keeps the checker's own records after every step, checked or not (`--check-every N` skips only
    /// the checks): the locks each call released or leaked, the pool blocks and I/O mappings the
    /// program holds, and whether it has corrupted kernel memory itself.
    func observe(_ kernel: Kernel, after call: Call?, outcome: Outcome?, adapter: EngineAdapter) {
        if let call, call.routine == .setMdlFlags || call.routine == .clearMdlFlags, call.arguments.count > 1,
           case .expression(let mask) = call.arguments[1], adapter.evaluate(mask) & ~0x2000 != 0 {
            programCorruptedKernelMemory = true
        }
        // A partial MDL built from memory that was no MDL before the call (a freed block, scratch pool)
        // copies whatever PFNs and flags that memory holds: the program's doing, like a wild write.
        if let call, call.routine == .ioBuildPartialMdl, case .expression(let source)? = call.arguments.first, let (mdls, _) = observed {
            let address = adapter.evaluate(source)
            if !mdls.contains(where: { $0.location.address == address }) { programCorruptedKernelMemory = true }
        }
        // MmBuildMdlForNonPagedPool over an MDL that holds page locks rewrites the PFN array the locks are
        // counted by: the program has leaked them and left a locked MDL naming frames nobody locked.
        if let call, call.routine == .mmBuildMdlForNonPagedPool, case .expression(let target)? = call.arguments.first,
           lastObservedHeader(adapter.evaluate(target), processId: nil)??.flags.contains(.pagesLocked) == true {
            programCorruptedKernelMemory = true
        }
        // IoAllocateMdl links the new MDL into whatever its IRP argument points at: a block that is no
        // IRP (an MDL, say) is overwritten where an IRP keeps MdlAddress.
        if let call, call.routine == .ioAllocateMdl, call.arguments.count > 4, case .expression(let irp) = call.arguments[4],
           case .returned(.number(let mdl))? = outcome, mdl != 0, adapter.evaluate(irp) != 0,
           !adapter.kernel.inspect.irps.contains(adapter.evaluate(irp)) {
            programCorruptedKernelMemory = true
        }
        // MmUnlockPages releases only a system mapping: a user mapping left in place shows pages the pager
        // may now take (the caller must unmap first), so what it shows afterwards is the program's doing.
        if let call, call.routine == .mmUnlockPages, case .returned = outcome, case .expression(let target)? = call.arguments.first {
            let mdl = adapter.evaluate(target)
            if kernel.inspect.processes.contains(where: { !$0.terminated && $0.vads.contains { $0.kind == .lockedPagesMapping(mdl: mdl) } }) {
                programCorruptedKernelMemory = true
            }
        }
        trackProgramObjects(after: call, outcome: outcome, adapter: adapter)
        // Freeing pages a mapping still maps (NT releases only a system mapping, and only from Windows 7
        // on; spec §2.11): the PTEs left behind are the program's use after free, like a wild write.
        if let call, call.routine == .mmFreePagesFromMdl, case .returned = outcome, !programCorruptedKernelMemory,
           let dangling = kernel.inspect.firstPteMappingAFreeFrame, dangling.processId != nil || kernel.configuration.version < .nt61 {
            programCorruptedKernelMemory = true
        }
        if programCorruptedKernelMemory { return }
        // Bytes written to user pages that are gone (freed buffer, ended process) are no longer the
        // program's: forget them now, before a later allocation maps other memory at the same address.
        if let call, call.routine == .freeUserBuffer || call.routine == .terminateProcess { forgetUnmappedShadow(kernel) }
        let inspect = kernel.inspect
        let mdls = inspect.knownMdls
        let headers = mdls.map { inspect.mdl($0.location.address, processId: $0.location.processId) }
        let locked = currentLockedMdls(kernel, mdls, headers)
        settleLeaks(locked, after: call, succeeded: outcome == .returned(.none), adapter: adapter)
        lockedLastStep = locked
        observed = (mdls, headers)
    }

    /// The header `observe` decoded last for the MDL at `address` (nil: not one the engine tracks),
    /// so the state comparison does not decode it a second time.
    func lastObservedHeader(_ address: UInt64, processId: UInt32?) -> MdlHeader?? {
        // After corruption `observe` stops decoding: what it saw last is stale.
        guard !programCorruptedKernelMemory, let observed else { return nil }
        for (index, mdl) in observed.mdls.enumerated() where mdl.location.address == address && mdl.location.processId == processId {
            return .some(observed.headers[index])
        }
        return nil
    }

    /// Checks every invariant against the state `observe` saw last and returns the first violation.
    ///
    /// The order is part of the contract: a step that breaks several invariants is reported by the
    /// first of these, and that report names the finding's signature. The per-invariant methods are
    /// `@inline(__always)`: as separate calls they cost about 170 instructions more per check (callgrind,
    /// 0.13% of a campaign's instructions), for nothing but the split.
    func check(_ kernel: Kernel) -> InvariantViolation? {
        guard !programCorruptedKernelMemory, let (mdls, headers) = observed else { return nil }
        let inspect = kernel.inspect
        let c = kernel.constants
        let locked = lockedLastStep
        return frameLockViolation(inspect, c, locked)
            ?? processLockViolation(inspect, locked)
            ?? mdlHeaderViolation(kernel, mdls, headers)
            ?? resourceAccountingViolation(inspect)
            ?? ioCachingViolation(kernel)
            ?? dataIntegrityViolation(inspect, c)
            ?? danglingFrameViolation(inspect, locked)
    }

    /// `frame-locks`: every frame's lock count equals the locks the locked MDLs hold on it plus the locks
    /// leaked by MDLs freed, re-initialised or overwritten while locked; a locked frame is not on the free
    /// list; a locked user page is still resident at its address.
    ///
    /// Why: MmProbeAndLockPages and MmUnlockPages must lock and release each page exactly once, or a
    /// frame is freed under a DMA transfer (too few locks) or can never be reclaimed (too many), and the
    /// pager must never take a locked page.
    @inline(__always) private func frameLockViolation(_ inspect: KernelInspector, _ c: PlatformConstants,
                                    _ locked: [MdlLocation: LockedMdl]) -> InvariantViolation? {
        var expected: [PageFrameNumber: Int] = leakedFrameLocks
        for (_, mdl) in locked { for pfn in mdl.pfns { expected[pfn, default: 0] += 1 } }
        // Only frames someone locks, or that the MDLs say are locked, can disagree.
        var candidates = inspect.lockedFrames
        for pfn in expected.keys where inspect.frame(pfn)?.lockCount == 0 { candidates.append(pfn) }
        candidates.sort()
        for pfn in candidates {
            guard let record = inspect.frame(pfn) else { continue }
            let want = expected[pfn] ?? 0
            if Int(record.lockCount) != want {
                return InvariantViolation(invariant: .frameLockAccounting,
                                          detail: "frame \(hex(pfn)) has lock count \(record.lockCount), locked MDLs account for \(want)")
            }
            if record.lockCount > 0 {
                if record.use == .free {
                    return InvariantViolation(invariant: .frameLockAccounting, detail: "frame \(hex(pfn)) is locked but on the free list")
                }
                if case .processPage(let process, let vpn) = record.use, inspect.pte(vpn << c.pageShift, processId: process)?.frame != pfn {
                    return InvariantViolation(invariant: .frameLockAccounting,
                                              detail: "locked frame \(hex(pfn)) of process \(process) page \(hex(vpn << c.pageShift)) is no longer resident there")
                }
            }
        }
        return nil
    }

    /// `process-locks`: each live process's NumberOfLockedPages equals the page spans of the locked MDLs
    /// that charge it, plus the spans leaked by MDLs that stopped accounting for their charge.
    ///
    /// Why: the charge is what MmProbeAndLockPages adds and MmUnlockPages takes back from the process the
    /// MDL names; a charge left behind or taken from the wrong process shows only here.
    @inline(__always) private func processLockViolation(_ inspect: KernelInspector, _ locked: [MdlLocation: LockedMdl]) -> InvariantViolation? {
        var pagesByProcess = leakedProcessPages
        for (_, mdl) in locked where mdl.process != 0 { pagesByProcess[mdl.process, default: 0] += mdl.span }
        for process in inspect.processes where !process.terminated {
            let want = pagesByProcess[process.eprocess] ?? 0
            if process.lockedPages != want {
                return InvariantViolation(invariant: .processLockAccounting,
                                          detail: "process \(process.id) has \(process.lockedPages) locked pages, its locked MDLs account for \(want)")
            }
        }
        return nil
    }

    /// `mdl-consistency`, headers: every MDL the engine wrote has a well-formed header (see `checkMdl`),
    /// and every MDL's own system mapping translates, page by page, to its PFN array.
    ///
    /// Why: a driver reads an MDL's fields directly (MmGetMdlVirtualAddress, MmGetMdlPfnArray); a header
    /// a routine left inconsistent misleads every later routine and driver that reads it.
    @inline(__always) private func mdlHeaderViolation(_ kernel: Kernel, _ mdls: [(location: MdlLocation, origin: MdlOrigin)],
                                    _ headers: [MdlHeader?]) -> InvariantViolation? {
        for ((location, origin), header) in zip(mdls, headers) {
            guard let header else { continue }
            if let violation = checkMdl(kernel, location, header, wellFormed: origin != .usedAsMdl) { return violation }
        }
        return nil
    }

    /// `resource-accounting`: system PTEs in use equal the pages the live MDL and I/O-space mappings hold,
    /// and none was released without being reserved; each pool's bytes in use equal its live blocks; every
    /// live block is held by the program or parked by the engine (see `leakedPoolBlock`).
    ///
    /// Why: a system PTE or pool block that a routine forgets on some path (a failure path, typically) is
    /// a leak no return value shows, and one released twice corrupts whatever reuses it.
    @inline(__always) private func resourceAccountingViolation(_ inspect: KernelInspector) -> InvariantViolation? {
        let inUse = inspect.systemPtesInUse
        let mapped = inspect.mappedSystemPtePages
        if inUse != mapped {
            return InvariantViolation(invariant: .resourceAccounting, detail: "\(inUse) system PTEs in use, live mappings account for \(mapped)")
        }
        if inspect.systemPteCorruptReleases != 0 {
            return InvariantViolation(invariant: .resourceAccounting,
                                      detail: "system PTEs released that were not reserved (\(inspect.systemPteCorruptReleases) times)")
        }
        for type in PoolType.allCases {
            let sum = inspect.poolBlockBytes(type)
            let inUse = inspect.poolBytesInUse(type)
            if sum != inUse {
                return InvariantViolation(invariant: .resourceAccounting, detail: "\(type) reports \(inUse) bytes in use, its blocks add up to \(sum)")
            }
        }
        return leakedPoolBlock(inspect)
    }

    /// `data-integrity`: every byte the program wrote still reads back where it was written (user pages by
    /// process and page, device memory by frame), across aliases and page-out/page-in. Only the span of
    /// offsets written is read, and a page whose PTE state and content stamp are unchanged since it last
    /// matched is not read again. A page that can no longer be read is forgotten.
    ///
    /// Why: mapping, unmapping and paging move where bytes are reached from, never the bytes; a routine
    /// that maps the wrong frame or frees a frame still in use shows here as bytes that changed.
    @inline(__always) private func dataIntegrityViolation(_ inspect: KernelInspector, _ c: PlatformConstants) -> InvariantViolation? {
        for key in shadow.keys.sorted() {
            let page = shadow[key]!
            guard page.high >= page.low else { continue }
            let count = page.high - page.low + 1
            let memory: (state: PageTableEntry.State?, stamp: UInt64)
            switch key {
            case .user(let process, let vpn):
                let state = inspect.pte(vpn << c.pageShift, processId: process)?.state
                memory = (state, state.map(inspect.contentStamp) ?? 0)
            case .device(let pfn): memory = (nil, inspect.contentStamp(frame: pfn))
            }
            if let last = verified[key], last.state == memory.state, last.stamp == memory.stamp { continue }
            let current: [UInt8]?
            switch key {
            case .user(let process, let vpn): current = inspect.peek((vpn << c.pageShift) + UInt64(page.low), count: count, processId: process)
            case .device(let pfn): current = inspect.physicalBytes((pfn << c.pageShift) + UInt64(page.low), count: count)
            }
            guard let current else {
                shadow[key] = nil
                verified[key] = nil
                continue
            }
            for index in 0..<count where page.written[page.low + index] && current[index] != page.bytes[page.low + index] {
                let offset = UInt64(page.low + index)
                return InvariantViolation(invariant: .dataIntegrity,
                                          detail: "\(key) offset \(hex(offset)) reads \(hex(UInt64(current[index]))), \(hex(UInt64(page.bytes[page.low + index]))) was written")
            }
            verified[key] = memory
        }
        return nil
    }

    /// `no-dangling-frames`: no valid PTE (system or any process's) maps a free frame, and no locked MDL
    /// names one. The PTE scan is skipped while no page table and no frame changed since it last came
    /// out clean.
    ///
    /// Why: a free frame is handed to the next allocation; a mapping or a lock still naming it is a use
    /// after free that reads or overwrites someone else's memory.
    @inline(__always) private func danglingFrameViolation(_ inspect: KernelInspector, _ locked: [MdlLocation: LockedMdl]) -> InvariantViolation? {
        let generation = inspect.mappingGeneration
        if noDanglingAt != generation {
            if let dangling = inspect.firstPteMappingAFreeFrame {
                let owner = dangling.processId.map { "process \($0) " } ?? ""
                return InvariantViolation(invariant: .noDanglingFrames, detail: "valid PTE for \(owner)\(hex(dangling.va)) maps free frame \(hex(dangling.pfn))")
            }
            noDanglingAt = generation
        }
        for (location, mdl) in locked.sorted(by: { $0.key < $1.key }) {
            for pfn in mdl.pfns where inspect.frame(pfn)?.use == .free {
                return InvariantViolation(invariant: .noDanglingFrames, detail: "locked MDL \(hex(location.address)) refers to free frame \(hex(pfn))")
            }
        }
        return nil
    }

    private func currentLockedMdls(_ kernel: Kernel, _ mdls: [(location: MdlLocation, origin: MdlOrigin)], _ headers: [MdlHeader?]) -> [MdlLocation: LockedMdl] {
        let inspect = kernel.inspect
        let c = kernel.constants
        var result: [MdlLocation: LockedMdl] = [:]
        for ((location, _), header) in zip(mdls, headers) {
            let address = location.address
            guard let header, header.flags.contains(.pagesLocked) else { continue }
            let span = c.spanPages(c.add(header.startVa, UInt64(header.byteOffset)), UInt64(header.byteCount))
            var pfns: [PageFrameNumber] = []
            // A locked MDL names each RAM frame at most once per lock: a longer walk finds no more locks.
            for index in 0..<min(span, inspect.ramFrameCount) {
                guard let pfn = inspect.pfn(address, index, processId: location.processId), pfn != c.emptyPfn else { break }
                if inspect.frame(pfn) != nil { pfns.append(pfn) }
            }
            result[location] = LockedMdl(pfns: pfns, process: header.process, span: Int64(span))
        }
        return result
    }

    /// Locks an MDL stopped accounting for without MmUnlockPages/MmFreePagesFromMdl on it are leaked: a
    /// freed or re-initialised locked MDL leaks all its locks; a still-locked MDL whose PFN array or
    /// Process field was overwritten leaks the difference.
    private func settleLeaks(_ locked: [MdlLocation: LockedMdl], after call: Call?, succeeded: Bool, adapter: EngineAdapter) {
        let target: UInt64? = call.flatMap { call in
            guard [.mmUnlockPages, .mmFreePagesFromMdl, .mmProbeAndLockPages].contains(call.routine),
                  case .expression(let e) = call.arguments.first else { return nil }
            return adapter.evaluate(e)
        }
        let relock = call?.routine == .mmProbeAndLockPages && succeeded
        for (location, previous) in lockedLastStep.sorted(by: { $0.key < $1.key }) {
            // Probing an MDL that is already locked overwrites its PFN array: the old locks are leaked.
            let relocked = relock && location.address == target
            guard relocked || locked[location] != previous else { continue }
            let current = relocked ? nil : locked[location]
            if !relock && location.address == target && current == nil { continue }
            var remaining = current?.pfns ?? []
            for pfn in previous.pfns {
                if let index = remaining.firstIndex(of: pfn) { remaining.remove(at: index) } else { leakedFrameLocks[pfn, default: 0] += 1 }
            }
            if previous.process != 0 && (current?.process != previous.process || current?.span != previous.span) {
                leakedProcessPages[previous.process, default: 0] += previous.span
            }
        }
    }

    private func trackProgramObjects(after call: Call?, outcome: Outcome?, adapter: EngineAdapter) {
        guard let call, case .returned(let value) = outcome else { return }
        switch call.routine {
        case .ioAllocateMdl, .mmCreateMdl, .exAllocatePoolWithTag, .ioAllocateIrp, .mmAllocatePagesForMdl:
            if case .number(let address) = value, address != 0 { programPoolBlocks.insert(address) }
        case .exFreePool, .ioFreeMdl, .ioFreeIrp:
            if case .expression(let e) = call.arguments.first { programPoolBlocks.remove(adapter.evaluate(e)) }
        case .mmMapIoSpace:
            if case .number(let va) = value, va != 0, call.arguments.count > 2, case .expression(let physical) = call.arguments[0],
               case .expression(let length) = call.arguments[1], let cache = Self.expectedCache(call.arguments[2], adapter: adapter) {
                forgetIoMappings(overlapping: va, bytes: adapter.evaluate(length), adapter.kernel.constants)
                ioMappings[va] = (adapter.evaluate(physical), adapter.evaluate(length), cache)
            }
        case .mmUnmapIoSpace:
            // MmUnmapIoSpace works on whole pages: an unmap at another offset of the same pages counts.
            if call.arguments.count > 1, case .expression(let base) = call.arguments[0], case .expression(let length) = call.arguments[1] {
                forgetIoMappings(overlapping: adapter.evaluate(base), bytes: adapter.evaluate(length), adapter.kernel.constants)
            }
        default:
            break
        }
    }

    private func forgetIoMappings(overlapping va: VirtualAddress, bytes: UInt64, _ c: PlatformConstants) {
        // Wrapping sums: a program may name the last page of the address space (NULL-0x1 on x64).
        let first = c.pageAlign(va), end = first &+ max(1, c.spanPages(va, bytes)) &* c.pageSize
        for (start, mapping) in ioMappings {
            let mappedFirst = c.pageAlign(start), mappedEnd = mappedFirst &+ max(1, c.spanPages(start, mapping.bytes)) &* c.pageSize
            if mappedFirst < end && first < mappedEnd { ioMappings[start] = nil }
        }
    }

    /// The x86 table of spec §2.9 step 3 (the same for RAM and device memory): MmNonCached and
    /// MmNonCachedUnordered are UC, MmWriteCombined and MmUSWCCached WC, the rest WB.
    private static func expectedCache(_ argument: Argument, adapter: EngineAdapter) -> CacheAttribute? {
        let type: UInt64
        switch argument {
        case .symbol(let name):
            // The vocabulary lists the MEMORY_CACHING_TYPE names in value order.
            guard let index = ArgumentKind.cachingType.symbols?.firstIndex(of: name) else { return nil }
            type = UInt64(index)
        case .expression(let e): type = adapter.evaluate(e) & 0xFF
        default: return nil
        }
        switch type {
        case 0, 4: return .uncached
        case 2, 5: return .writeCombined
        case 1, 3: return .writeBack
        default: return nil
        }
    }

    /// `mdl-consistency`, I/O-space caching: every PTE still mapping a live MmMapIoSpace range carries the
    /// caching its CacheType asked for (`expectedCache`). Checked after `resource-accounting`, as it always
    /// was, so that a step breaking both reports the same violation as before. Skipped while neither the
    /// page tables nor the program's mappings changed since it last came out clean.
    ///
    /// Why: a device register mapped cached or write-combined is read from a stale line or written out of
    /// order; no return value shows the PTE's caching.
    private func ioCachingViolation(_ kernel: Kernel) -> InvariantViolation? {
        let now = (mappings: kernel.inspect.mappingGeneration, records: ioMappings.count)
        if ioMappings.isEmpty || ioCachingCheckedAt.map({ $0 == now }) == true { return nil }
        let c = kernel.constants
        for (va, mapping) in ioMappings.sorted(by: { $0.key < $1.key }) {
            let pages = c.spanPages(va, mapping.bytes)
            for page in 0..<pages {
                let address = c.add(c.pageAlign(va), page &* c.pageSize)
                // Only PTEs that still map this range's frames (a wrong unmap leaves a stale record).
                guard let pte = kernel.inspect.pte(address), case .valid(let pfn) = pte.state,
                      pfn == (mapping.physical >> c.pageShift) + page else { continue }
                if pte.cache != mapping.cache {
                    return InvariantViolation(invariant: .mdlConsistency,
                                              detail: "I/O space mapping \(hex(va)): PTE \(hex(address)) is \(pte.cache), its CacheType asked for \(mapping.cache)")
                }
            }
        }
        ioCachingCheckedAt = now
        return nil
    }

    /// A live pool block that neither the program nor the engine's own structures hold: a leak.
    private func leakedPoolBlock(_ inspect: KernelInspector) -> InvariantViolation? {
        let now = (pool: inspect.poolGeneration, held: programPoolBlocks.count)
        if let last = poolOwnershipCheckedAt, last == now { return nil }
        var parked: Set<VirtualAddress>?
        for type in PoolType.allCases {
            for block in inspect.pool(type).blocks where !programPoolBlocks.contains(block.start) {
                if parked == nil { parked = Set(inspect.lookasideMdls).union(inspect.processes.map(\.eprocess)) }
                if parked!.contains(block.start) { continue }
                return InvariantViolation(invariant: .resourceAccounting,
                                          detail: "\(type) block \(hex(block.start)) (\(block.size) bytes) is held by nothing: no live allocation of the program returned it (leaked)")
            }
        }
        poolOwnershipCheckedAt = now
        return nil
    }
}
