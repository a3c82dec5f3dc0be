import LockstepPrograms
import MemoryManager

/// One field where the engine's observable state and the oracle's differ.
public struct StateDifference: Hashable, Sendable, CustomStringConvertible {
    /// The object: "MDL 0x81000040", "mapping 0xC1000000", "process 8", "system", "IRP 0x81000100".
    public let object: String
    /// The kind of object and the field, stable across runs (for signatures): "mdl.MdlFlags".
    public let field: String
    /// The engine's value, as text.
    public let engine: String
    /// The oracle's value, as text.
    public let oracle: String

    /// A difference from its parts.
    public init(object: String, field: String, engine: String, oracle: String) {
        self.object = object
        self.field = field
        self.engine = engine
        self.oracle = oracle
    }

    /// `<object> <field>: engine <value>, model <value>`.
    public var description: String { "\(object) \(field.split(separator: ".").last ?? ""): engine \(engine), model \(oracle)" }
}

/// Compares the oracle's projection of the observable state with the engine's, field by field.
///
/// The engine's half is read here, through its inspector, for exactly the objects the oracle's
/// projection lists (and, in a full observation, the engine's own lists are checked to hold no
/// object the oracle does not know). Frames are compared by name: a page the oracle names by an
/// address is looked up in the engine's page tables; a page no address names (handed out by
/// MmAllocatePagesForMdl, or a freed buffer's locked page) must be the same frame every time it is
/// seen, and a frame no other name holds.
final class StateComparison {
    private let inspect: KernelInspector
    private let c: PlatformConstants
    /// Frames bound to names that no address resolves, kept for the whole run.
    private var pinned: [FrameName: UInt64] = [:]
    /// The oracle's ranges for MmAllocatePagesForMdl's pages, from the observation being compared.
    private var allocatedPageRanges: [Int: ClosedRange<UInt64>] = [:]
    /// Headers the invariant checker already decoded this step (nil inside: not an MDL it tracks).
    var decodedHeader: ((UInt64, UInt32?) -> MdlHeader??)?
    /// Fields the oracle said it cannot know, over the run.
    private(set) var unknownFields = 0

    init(kernel: Kernel) {
        inspect = kernel.inspect
        c = kernel.constants
    }

    /// The first difference between `oracle`'s state and the engine's, or nil.
    func firstDifference(_ oracle: ObservableState) -> StateDifference? {
        var owners: [UInt64: FrameName] = [:]
        allocatedPageRanges = oracle.allocatedPageRanges
        if let difference = inKeyOrder(oracle.mdls, { compare($0, $1, &owners) }) { return difference }
        if oracle.isFull, let difference = extraMdl(oracle) { return difference }
        if let difference = inKeyOrder(oracle.mappings, { compare($0, $1, &owners) }) { return difference }
        if oracle.isFull, let difference = extraMapping(oracle) { return difference }
        return compareAccounting(oracle, &owners)
    }

    /// The first difference `body` finds, visiting `objects` in key order (so the same one is reported
    /// on every run); one object, the usual case after a step, is visited without sorting.
    private func inKeyOrder<Key: Comparable, Value>(_ objects: [Key: Value], _ body: (Key, Value) -> StateDifference?) -> StateDifference? {
        if objects.count <= 1 { return objects.first.flatMap { body($0.key, $0.value) } }
        for key in objects.keys.sorted() {
            if let difference = body(key, objects[key]!) { return difference }
        }
        return nil
    }

    // MARK: MDLs

    private func compare(_ key: ObservedMdlKey, _ expected: ObservedMdl, _ owners: inout [UInt64: FrameName]) -> StateDifference? {
        // Names are built only for a difference: this runs after every step.
        var object: String { key.description }
        let decoded = decodedHeader?(key.address, key.process) ?? nil
        guard let header = decoded ?? inspect.mdl(key.address, processId: key.process) else {
            return StateDifference(object: object, field: "mdl.header", engine: "not readable", oracle: "a live MDL")
        }
        func check<T: Equatable>(_ field: String, _ engine: T, _ model: T?, _ show: (T) -> String) -> StateDifference? {
            guard let model else { unknownFields += 1; return nil }
            return engine == model ? nil : StateDifference(object: object, field: "mdl." + field, engine: show(engine), oracle: show(model))
        }
        if let d = check("MdlFlags", header.flags.rawValue, expected.flags, { hex(UInt64($0)) }) { return d }
        if let d = check("Size", UInt16(bitPattern: header.size), expected.size, { "\(Int16(bitPattern: $0))" }) { return d }
        if let d = check("Next", header.next, expected.next, hex) { return d }
        if let d = check("Process", processField(header.process), expected.process, \.description) { return d }
        if let d = check("StartVa", header.startVa, expected.startVa, hex) { return d }
        if let d = check("ByteCount", UInt64(header.byteCount), expected.byteCount, hex) { return d }
        if let d = check("ByteOffset", UInt64(header.byteOffset), expected.byteOffset, hex) { return d }
        if let d = check("MappedSystemVa", header.mappedSystemVa, expected.mappedSystemVa, hex) { return d }
        for (index, name) in expected.pfns.enumerated() {
            guard let name else { unknownFields += 1; continue }
            let pfn = inspect.pfn(key.address, UInt64(index), processId: key.process) ?? c.emptyPfn
            if let reason = frameMismatch(name, pfn, &owners) {
                return StateDifference(object: object, field: "mdl.PFN", engine: "slot \(index) \(hex(pfn))", oracle: reason)
            }
        }
        return nil
    }

    private func processField(_ value: UInt64) -> ObservedProcessField {
        if value == 0 { return .null }
        return inspect.processId(eprocess: value).map { .process($0) } ?? .other(value)
    }

    /// A live MDL the engine tracks that the oracle's full list lacks.
    private func extraMdl(_ oracle: ObservableState) -> StateDifference? {
        let processes = Set(inspect.processes.filter { !$0.terminated }.map(\.id))
        for (location, origin) in inspect.knownMdls where origin != .usedAsMdl {
            if let process = location.processId, !processes.contains(process) { continue }
            let key = ObservedMdlKey(address: location.address, process: location.processId)
            if oracle.mdls[key] == nil {
                return StateDifference(object: key.description, field: "mdl.live", engine: "a live MDL (\(origin.rawValue))", oracle: "no MDL")
            }
        }
        return nil
    }

    // MARK: Mappings

    private func enginePages(_ key: ObservedMappingKey, _ kind: ObservedMapping.Kind) -> UInt64? {
        switch kind {
        case .mdlSystem: return inspect.mdlSystemMappingPages(base: key.base).map(UInt64.init)
        case .ioSpace: return inspect.ioSpaceMappingPages(base: key.base).map(UInt64.init)
        case .mdlUser: return key.process.flatMap { inspect.userMappingPages(base: key.base, processId: $0) }
        }
    }

    private func compare(_ key: ObservedMappingKey, _ expected: ObservedMapping, _ owners: inout [UInt64: FrameName]) -> StateDifference? {
        var object: String { key.description }
        guard let pages = enginePages(key, expected.kind) else {
            return StateDifference(object: object, field: "mapping.live", engine: "no \(expected.kind.rawValue)", oracle: "a live \(expected.kind.rawValue)")
        }
        if let model = expected.pages, model != pages {
            return StateDifference(object: object, field: "mapping.pages", engine: "\(pages)", oracle: "\(model)")
        }
        for index in 0..<expected.frames.count {
            let va = key.base &+ UInt64(index) << c.pageShift
            let pte = inspect.pte(va, processId: key.process)
            var page: String { "page \(index)" }
            if let valid = expected.valid[index] {
                let actual = pte.map { if case .valid = $0.state { true } else { false } } ?? false
                if actual != valid { return StateDifference(object: object, field: "mapping.valid", engine: "\(page) valid \(actual)", oracle: "\(valid)") }
            } else { unknownFields += 1 }
            guard let pte, case .valid(let pfn) = pte.state else { continue }
            if let writable = expected.writable[index] {
                let actual = pte.protection == .readWrite
                if actual != writable { return StateDifference(object: object, field: "mapping.writable", engine: "\(page) writable \(actual)", oracle: "\(writable)") }
            } else { unknownFields += 1 }
            if index < expected.pageable.count, let pageable = expected.pageable[index] {
                if pte.pageable != pageable { return StateDifference(object: object, field: "mapping.pageable", engine: "\(page) pageable \(pte.pageable)", oracle: "\(pageable)") }
            } else { unknownFields += 1 }
            if let caching = expected.caching[index] {
                let actual = Self.caching(pte.cache)
                if actual != caching {
                    return StateDifference(object: object, field: "mapping.caching", engine: "\(page) \(actual.rawValue)", oracle: caching.rawValue)
                }
            } else { unknownFields += 1 }
            if let name = expected.frames[index] {
                if let reason = frameMismatch(name, pfn, &owners) {
                    return StateDifference(object: object, field: "mapping.frame", engine: "\(page) \(hex(pfn))", oracle: reason)
                }
            } else { unknownFields += 1 }
        }
        return nil
    }

    static func caching(_ attribute: CacheAttribute) -> ObservedCaching {
        switch attribute {
        case .writeBack: .writeBack
        case .uncached: .uncached
        case .writeCombined: .writeCombined
        }
    }

    /// A live mapping the engine holds that the oracle's full list lacks.
    private func extraMapping(_ oracle: ObservableState) -> StateDifference? {
        for mapping in inspect.mdlSystemMappings where oracle.mappings[ObservedMappingKey(base: mapping.base, process: nil)] == nil {
            return StateDifference(object: "mapping \(hex(mapping.base))", field: "mapping.live", engine: "an MDL system mapping of \(mapping.pages) pages", oracle: "none")
        }
        for mapping in inspect.ioSpaceMappings where oracle.mappings[ObservedMappingKey(base: mapping.base, process: nil)] == nil {
            return StateDifference(object: "mapping \(hex(mapping.base))", field: "mapping.live", engine: "an I/O-space mapping of \(mapping.pages) pages", oracle: "none")
        }
        for process in inspect.processes where !process.terminated {
            for vad in process.vads {
                guard case .lockedPagesMapping = vad.kind, oracle.mappings[ObservedMappingKey(base: vad.start, process: process.id)] == nil else { continue }
                return StateDifference(object: "mapping \(hex(vad.start)) (process \(process.id))", field: "mapping.live",
                                       engine: "an MDL user mapping", oracle: "none")
            }
        }
        return nil
    }

    // MARK: Accounting

    private func compareAccounting(_ oracle: ObservableState, _ owners: inout [UInt64: FrameName]) -> StateDifference? {
        for expected in oracle.lockedPageCharges {
            guard let charge = expected.lockedPages else { unknownFields += 1; continue }
            let actual = inspect.lockedPages(ofProcess: expected.process)
            if actual == charge { continue }
            return StateDifference(object: "process \(expected.process)", field: "process.NumberOfLockedPages", engine: actual.map { "\($0)" } ?? "no process", oracle: "\(charge)")
        }
        func scalar(_ field: String, _ engine: UInt64, _ model: UInt64?) -> StateDifference? {
            guard let model else { unknownFields += 1; return nil }
            return engine == model ? nil : StateDifference(object: "system", field: "system." + field, engine: "\(engine)", oracle: "\(model)")
        }
        if let d = scalar("lockedPages", inspect.systemLockedPages, oracle.systemLockedPages) { return d }
        if let d = scalar("ptesInUse", UInt64(inspect.systemPtesInUse), oracle.systemPtesInUse) { return d }
        if let d = scalar("nonpagedPoolBytes", inspect.poolBytesInUse(.nonPagedPool), oracle.nonpagedPoolBytes) { return d }
        if let d = scalar("pagedPoolBytes", inspect.poolBytesInUse(.pagedPool), oracle.pagedPoolBytes) { return d }
        if let d = inKeyOrder(oracle.irpChains, { compareChain($0, $1) }) { return d }
        guard oracle.isFull else { return nil }
        if let blocks = oracle.nonpagedPoolBlocks {
            let actual = inspect.pool(.nonPagedPool).blocks.map(\.start)
            if actual != blocks {
                let extra = actual.first { !blocks.contains($0) }.map { "a block at \(hex($0))" }
                let missing = blocks.first { !actual.contains($0) }.map { "a block at \(hex($0))" }
                return StateDifference(object: "system", field: "system.nonpagedPoolBlocks", engine: extra ?? "\(actual.count) blocks",
                                       oracle: missing ?? "\(blocks.count) blocks")
            }
        } else { unknownFields += 1 }
        if let locks = oracle.frameLocks {
            for name in locks.keys.sorted() {
                guard let pfn = resolve(name) else { unknownFields += 1; continue }
                let count = Int(inspect.frame(pfn)?.lockCount ?? 0)
                if count != locks[name]! {
                    return StateDifference(object: "\(name)", field: "frame.lockCount", engine: "\(count) (PFN \(hex(pfn)))", oracle: "\(locks[name]!)")
                }
            }
            let engineLocked = inspect.lockedFrameCount
            if engineLocked != locks.count {
                return StateDifference(object: "system", field: "system.lockedFrames", engine: "\(engineLocked) frames hold locks", oracle: "\(locks.count)")
            }
        } else { unknownFields += 1 }
        return nil
    }

    private func compareChain(_ irp: UInt64, _ expected: ObservedChain) -> StateDifference? {
        var links: [UInt64] = []
        var current = readPointer(c.add(irp, c.pointerBytes))
        while let link = current, link != 0, links.count <= expected.links.count, !links.contains(link) {
            links.append(link)
            current = inspect.mdl(link)?.next
        }
        let prefix = Array(links.prefix(expected.links.count))
        let endsRight = !expected.endsInNull || links.count == expected.links.count
        if prefix != expected.links || !endsRight {
            func show(_ chain: [UInt64], _ open: Bool) -> String { (chain.map(hex) + [open ? "…" : "NULL"]).joined(separator: " → ") }
            return StateDifference(object: "IRP \(hex(irp))", field: "irp.MdlChain", engine: show(links, false), oracle: show(expected.links, !expected.endsInNull))
        }
        return nil
    }

    private func readPointer(_ va: UInt64) -> UInt64? {
        inspect.peek(va, count: Int(c.pointerBytes)).map { bytes in bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) } }
    }

    // MARK: Frames

    /// The engine frame a name stands for, when an address (or a physical page number) says.
    private func resolve(_ name: FrameName) -> UInt64? {
        switch name {
        case .physical(let page): return page
        case .empty: return c.emptyPfn
        case .virtual(let process, let va):
            if case .valid(let pfn)? = inspect.pte(va, processId: process)?.state { return pfn }
            return pinned[name]
        case .allocated, .detached: return pinned[name]
        }
    }

    /// Nil when the engine's `pfn` is the frame `name` stands for; otherwise what the oracle expected.
    private func frameMismatch(_ name: FrameName, _ pfn: UInt64, _ owners: inout [UInt64: FrameName]) -> String? {
        if let expected = resolve(name) {
            if expected != pfn { return "\(name) = \(hex(expected))" }
        } else {
            // First sight of a page no address names: a RAM frame, not one another name already holds.
            guard pfn != c.emptyPfn, inspect.frame(pfn) != nil else { return "\(name), a RAM frame" }
            if case .allocated(let batch, let index) = name {
                // MmAllocatePagesForMdl's pages: inside the caller's range, in ascending order.
                if let range = allocatedPageRanges[batch], !range.contains(pfn) {
                    return "\(name), a frame in \(hex(range.lowerBound))...\(hex(range.upperBound))"
                }
                if index > 0, let previous = pinned[.allocated(batch: batch, index: index - 1)], pfn <= previous {
                    return "\(name), a frame above page \(index - 1)'s \(hex(previous))"
                }
            }
            pinned[name] = pfn
        }
        if case .physical = name { return nil }
        if let other = owners[pfn], other != name { return "\(name), not the frame of \(other)" }
        owners[pfn] = name
        return nil
    }
}
