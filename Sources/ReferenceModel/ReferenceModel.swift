import LockstepPrograms

/// An independent, deliberately simple model of the NT MDL and address-mapping API. It predicts each
/// call's outcome from the spec (`shared/spec/NT_MDL_SEMANTICS.md`) and the engine conventions page
/// (`docs/ENGINE_CONVENTIONS.md`), never from the engine's code.
///
/// It knows addresses (the runner tells it what each call returned) but not physical frames: pages are
/// named by their owner (``Frame``), and where a frame number matters it predicts a relation.
/// When a program does something the model does not follow (it says why), every later call is
/// `.unpredictable`: the model never guesses.
public final class ReferenceModel {
    let machine: ModelMachine
    var values: [String: UInt64] = [:]
    var halted = false
    var lostTrack: String?
    var irql: UInt64 = 0

    var currentProcess: UInt32 = 8
    var processes: [UInt32: (lockedPages: Int64, terminated: Bool)] = [4: (0, false), 8: (0, false)]
    var nextProcess: UInt32 = 12
    var buffers: [Int: UserBuffer] = [:]
    var nextBuffer = 0
    var pool: [UInt64: PoolBlock] = [:]
    var poolBytes: (nonpaged: UInt64, paged: UInt64) = (0, 0)
    var irps: Set<UInt64> = []
    /// Pool block addresses freed and not handed out again.
    var freedBlocks: Set<UInt64> = []
    /// Freed block addresses that a hidden allocation (an EPROCESS, whose address no call returns) may
    /// have taken since: first fit may place it there, and the model cannot see where it went.
    var maybeReusedBlocks: Set<UInt64> = []
    /// A pool block exists whose address the model never saw (a created process's EPROCESS).
    var hiddenBlocks = false
    /// Irp->MdlAddress per IRP, and each MDL's Next link (for IoAllocateMdl's chaining).
    var irpHead: [UInt64: UInt64] = [:]
    var nextLink: [UInt64: UInt64] = [:]
    /// Freed fixed-size MDL blocks on a free or checked build, most recent last (depth 128).
    var lookaside: [UInt64] = []
    var mdls: [MdlKey: MdlRecord] = [:]
    var mappings: [UInt64: Mapping] = [:]
    var userMappings: [UInt32: [UInt64: Mapping]] = [:]
    var ptesInUse: UInt64 = 0
    var contents: [Frame: [UInt8]] = [:]
    var resident: Set<Frame> = []
    var locks: [Frame: Int] = [:]
    var systemLocks: UInt64 = 0
    var allocatedBatches = 0
    /// Each batch's physical page range, from its LowAddress and HighAddress.
    var allocatedRanges: [Int: ClosedRange<UInt64>] = [:]
    var physicalOf: [String: (frame: Frame?, offset: UInt64)] = [:]

    /// Settles a `.oneOf` or `.unpredictable` prediction once the engine's outcome is known.
    var pending: ((Outcome) -> Void)?
    /// What a driver would read at a virtual address right after the call being applied (nil outside
    /// `apply(_:observed:memory:)`, or when whoever runs the model cannot read memory).
    var driverMemory: ((UInt64, Int) -> [UInt8]?)?

    /// The fault plan and the decisions of each kind taken so far.
    let faultPlan: FaultPlan
    var decisions: [FaultKind: UInt64] = [:]
    /// Pages that were resident and were trimmed or paged out (a touch needs a page-in).
    var pagedOut: Set<Frame> = []
    /// Pages that have left memory at least once: an unlocked MDL's stale PFN may name a frame such a
    /// page no longer occupies.
    var everPagedOut: Set<Frame> = []

    /// Builds the model for a program's machine line and fault plan.
    public init(program: Program) throws(ModelError) {
        machine = try ModelMachine(program.machine)
        do { faultPlan = try FaultPlan(program.faults) } catch { throw ModelError(message: "fault plan: \(error)") }
        // Boot's two EPROCESS blocks (System, then process 8) open the nonpaged pool (conventions).
        let eprocess: UInt64 = machine.pointer64 ? 0x4D0 : 0x280
        for index: UInt64 in 0..<2 {
            pool[machine.nonpagedBase + index * eprocess] = PoolBlock(base: machine.nonpagedBase + index * eprocess, size: eprocess, paged: false)
        }
        poolBytes.nonpaged = 2 * eprocess
    }

    /// Predicts the next call's outcome and advances the model as if it happened.
    public func expect(_ call: Call) -> Prediction {
        pending = nil
        if halted { return .refused }
        if let reason = lostTrack { return .unpredictable(reason: reason) }
        let expectation = predict(call)
        if case .bugChecks = expectation { halted = true }
        return expectation
    }

    /// Records what the engine did: the values results are bound to, and which branch of an open choice happened.
    public func apply(_ call: Call, observed: Outcome) {
        if let name = call.result { values[name] = observed.boundValue }
        if case .bugCheck = observed { halted = true }
        pending?(observed)
        pending = nil
    }

    /// As `apply(_:observed:)`, where `memory` reads what a driver would read right after the call
    /// (`count` bytes at a virtual address, nil if unreadable). The model reads only what the spec leaves
    /// to the machine and a driver must read to go on: the ByteCount of an MDL MmAllocatePagesForMdl
    /// returned, which says how many of the frames it asked for were free (spec §2.20).
    public func apply(_ call: Call, observed: Outcome, memory: @escaping (UInt64, Int) -> [UInt8]?) {
        driverMemory = memory
        defer { driverMemory = nil }
        apply(call, observed: observed)
    }

    /// What the model believes a result name refers to (for divergence reports).
    public func describe(_ name: String) -> String? {
        guard let value = values[name] else { return nil }
        if let record = mdls[mdlKey(value)] {
            let process = record.processKnown ? (record.process.map { "process \($0)" } ?? "NULL") : "unknown"
            let flags = String(record.flags, radix: 16, uppercase: true)
            return "MDL StartVa=0x\(String(record.startVa, radix: 16, uppercase: true)) ByteOffset=0x\(String(record.byteOffset, radix: 16, uppercase: true)) "
                + "ByteCount=0x\(String(record.byteCount, radix: 16, uppercase: true)) Size=\(Int16(truncatingIfNeeded: record.size)) "
                + "MdlFlags=0x\(flags) Process=\(process) PFNs=\(record.pfns.count)"
        }
        switch place(value) {
        case .unmapped: return "unmapped"
        case .page(let frame, let protection, let residentNow): return "\(frame) \(protection) \(residentNow ? "resident" : "not resident")"
        }
    }

    /// Takes one resource decision of `kind` (conventions: where the engine takes them) and returns the
    /// failure status if the fault plan fails it. `page` is the faulting address for frame/pagein.
    func decide(_ kind: FaultKind, page: UInt64 = 0) -> UInt32? {
        let ordinal = decisions[kind, default: 0] + 1
        decisions[kind] = ordinal
        return failure(kind, ordinal: ordinal, page: page)
    }

    /// The status the fault plan fails decision number `ordinal` of `kind` with, or nil; takes nothing.
    func failure(_ kind: FaultKind, ordinal: UInt64, page: UInt64 = 0) -> UInt32? {
        faultPlan.failure(kind, ordinal: ordinal, address: page, pageMask: ~(machine.pageSize - 1) & machine.mask, evaluate: evaluate)
    }

    func evaluate(_ expression: Expression) -> UInt64 { expression.value(in: values, mask: machine.mask) }

    /// A fault on a page that is not resident: the frame decision, then (for a paged-out page) the
    /// page-in. Returns the failure as an expectation, or nil when the page comes in.
    func faultIn(_ frame: Frame, at va: UInt64, probe: Bool) -> Prediction? {
        let user = machine.isUser(va)
        if decide(.frame, page: va) != nil {
            if user || probe { return .raises(status: 0xC000_009A) }
            return bugCheck(0x7A, .exactly(0), .exactly(0xC000_009A), .any, .exactly(va))
        }
        if pagedOut.contains(frame), let status = decide(.pageIn, page: va) {
            if user || probe { return .raises(status: Status.inPageError) }
            return bugCheck(0x7A, .exactly(0), .exactly(UInt64(status)), .any, .exactly(va))
        }
        pagedOut.remove(frame)
        resident.insert(frame)
        return nil
    }

    // MARK: Helpers shared by the routine files

    /// Stops predicting: the program did something the model does not follow.
    func lose(_ reason: String) -> Prediction {
        lostTrack = reason
        return .unpredictable(reason: reason)
    }

    func settle(_ body: @escaping (Outcome) -> Void) { pending = body }

    /// The settle step registered so far for this call (to chain another after it).
    var pendingSettle: ((Outcome) -> Void)? { pending }

    /// A call's arguments by parameter name, valued under the names the model has bound (the program
    /// vocabulary's reading, shared with the engine adapter; what the routine does with them is the model's).
    func arguments(_ call: Call) -> CallArguments { CallArguments(call, bindings: values, mask: machine.mask) }

    func number(_ call: Call, _ name: String) -> UInt64 { arguments(call).number(name) }

    /// A KPROCESSOR_MODE argument: NT tests `AccessMode != KernelMode`, so any nonzero number is UserMode.
    func isUserMode(_ call: Call, _ name: String) -> Bool { arguments(call).processorMode(name) == .userMode }

    func expression(_ call: Call, _ name: String) -> Expression { arguments(call).expression(name) }

    func bugCheck(_ code: UInt32, _ p: ParameterPrediction...) -> Prediction {
        .bugChecks(code: code, parameters: p + Array(repeating: .exactly(0), count: max(0, 4 - p.count)))
    }

    func verifier(_ subcode: UInt64, _ p2: ParameterPrediction, _ p3: ParameterPrediction, _ p4: ParameterPrediction) -> Prediction {
        bugCheck(0xC4, .exactly(subcode), p2, p3, p4)
    }

    /// The argument written as a name (for bug-check parameters that must equal it), or its value.
    func parameter(_ call: Call, _ name: String) -> ParameterPrediction {
        if case .reference(let result, let offset) = expression(call, name) { return .valueOf(name: result, offset: offset) }
        return .exactly(number(call, name))
    }

    /// The checked build's failed ASSERT (conventions: 0x1E, STATUS_BREAKPOINT, site, MDL or address,
    /// flags or length). The conventions page documents only site 71 (MmUnmapIoSpace outside the PTE
    /// range); every other site number is the engine's own numbering, which an independent model cannot
    /// know, so it predicts any site there.
    func assertion(site: UInt64? = nil, _ p3: ParameterPrediction, _ p4: ParameterPrediction) -> Prediction {
        bugCheck(0x1E, .exactly(0x8000_0003), site.map { .exactly($0) } ?? .any, p3, p4)
    }

    // MARK: Where an address lands

    enum Place {
        case page(Frame, protection: String, residentNow: Bool)
        case unmapped
    }

    /// What the page holding `va` is in the current context.
    func place(_ va: UInt64) -> Place {
        let page = machine.pageAlign(va)
        if machine.isUser(va) {
            for buffer in buffers.values where buffer.alive && buffer.process == currentProcess
                && va >= buffer.base && va - buffer.base < buffer.pages * machine.pageSize {
                let index = (page - buffer.base) / machine.pageSize
                let frame = Frame.user(buffer: buffer.id, index: index)
                return .page(frame, protection: buffer.protection[Int(index)], residentNow: resident.contains(frame))
            }
            if let views = userMappings[currentProcess] {
                for mapping in views.values where page >= mapping.base && (page - mapping.base) / machine.pageSize < UInt64(mapping.frames.count) {
                    guard let frame = mapping.frames[Int((page - mapping.base) / machine.pageSize)] else { return .unmapped }
                    return .page(frame, protection: "ReadWrite", residentNow: true)
                }
            }
            return .unmapped
        }
        if page >= machine.nonpagedBase && page - machine.nonpagedBase < machine.nonpagedBytes {
            return .page(.system(vpn: page / machine.pageSize), protection: "ReadWrite", residentNow: true)
        }
        if page >= machine.pagedBase && page - machine.pagedBase < machine.pagedBytes {
            let frame = Frame.system(vpn: page / machine.pageSize)
            return .page(frame, protection: "ReadWrite", residentNow: resident.contains(frame))
        }
        for mapping in mappings.values where page >= mapping.base && (page - mapping.base) / machine.pageSize < UInt64(mapping.frames.count) {
            guard let frame = mapping.frames[Int((page - mapping.base) / machine.pageSize)] else { return .unmapped }
            return .page(frame, protection: "ReadWrite", residentNow: true)
        }
        return .unmapped
    }

    func isPagedPool(_ frame: Frame) -> Bool {
        if case .system(let vpn) = frame { return vpn * machine.pageSize >= machine.pagedBase && vpn * machine.pageSize - machine.pagedBase < machine.pagedBytes }
        return false
    }

    /// Pages that can be paged out: user buffer pages and paged pool.
    func pageable(_ frame: Frame) -> Bool { frame.isPageable || isPagedPool(frame) }

    func read(_ frame: Frame, _ offset: Int, _ count: Int) -> [UInt8] {
        if case .device(let pfn) = frame, !machine.decodes(pfn: pfn) { return [UInt8](repeating: 0xFF, count: count) }
        // Unwritten pages read as zeros: demand-zero RAM, and device memory until written.
        guard let page = contents[frame] else { return [UInt8](repeating: 0, count: count) }
        return Array(page[offset..<offset + count])
    }

    func write(_ frame: Frame, _ offset: Int, _ bytes: ArraySlice<UInt8>) {
        if case .device(let pfn) = frame, !machine.decodes(pfn: pfn) { return }
        var page = contents[frame] ?? [UInt8](repeating: 0, count: Int(machine.pageSize))
        page.replaceSubrange(offset..<offset + bytes.count, with: bytes)
        contents[frame] = page
    }

    /// The MDL record an argument names (user-memory MDLs belong to the current process).
    func mdlKey(_ address: UInt64) -> MdlKey {
        MdlKey(address: address, process: machine.isUser(address) ? currentProcess : nil)
    }

    /// Records a live pool block (an address handed out again is no longer "freed").
    func addBlock(_ block: PoolBlock) {
        pool[block.base] = block
        freedBlocks.remove(block.base)
        maybeReusedBlocks.remove(block.base)
    }

    /// A pool allocation the model cannot observe: every freed block may now be (part of) it.
    func hiddenPoolAllocation() {
        maybeReusedBlocks.formUnion(freedBlocks)
        hiddenBlocks = true
    }

    /// The caching a MEMORY_CACHING_TYPE argument asks for (a name or a raw value).
    func caching(_ call: Call, _ name: String) -> ObservedCaching {
        ObservedCaching(cachingType: UInt64(arguments(call).cachingType(name)))
    }

    /// Gives up on a call that touches freed pool a hidden allocation may have reused: the engine may
    /// find a live block there (and use it) or the freed memory; both are NT-correct for its layout.
    func maybeReused(_ address: UInt64) -> Prediction? {
        maybeReusedBlocks.contains(address) ? lose("freed pool at \(String(address, radix: 16)) may now hold an EPROCESS (a hidden allocation)") : nil
    }

    /// Removes a pool block and remembers its address as freed.
    @discardableResult func removeBlock(_ address: UInt64) -> PoolBlock? {
        guard let block = pool.removeValue(forKey: address) else { return nil }
        freedBlocks.insert(address)
        return block
    }

    /// The live pool block containing `va`.
    func poolBlock(containing va: UInt64) -> PoolBlock? {
        pool.values.first { va >= $0.base && va - $0.base < $0.size }
    }

    func inPoolRegion(_ va: UInt64) -> Bool {
        (va >= machine.nonpagedBase && va - machine.nonpagedBase < machine.nonpagedBytes)
            || (va >= machine.pagedBase && va - machine.pagedBase < machine.pagedBytes)
    }

    /// Verifier special pool: an MDL argument in pool that no live block holds was freed (0xD5). An
    /// address the model never saw allocated may sit in a block it does not know (a created process's
    /// EPROCESS), whose end the MDL header would run past (0xD6).
    func freedSpecialPool(_ call: Call, _ name: String) -> Prediction? {
        let va = number(call, name)
        guard machine.verifier, inPoolRegion(va), poolBlock(containing: va) == nil else { return nil }
        if let unsure = maybeReused(va) { return unsure }
        let freed = bugCheck(0xD5, parameter(call, name), .exactly(0), .exactly(0), .exactly(0))
        return freedBlocks.contains(va) ? freed : .oneOf([freed, bugCheck(0xD6, .any, .any, .exactly(0), .exactly(0))])
    }

    var eprocessUnknown: ParameterPrediction { .any }
}
