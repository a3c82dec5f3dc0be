import LockstepPrograms

/// How programs are generated.
public struct GenerationOptions: Sendable {
    /// The machine every program runs on, unless `mix` is set.
    public var machine: MachineLine
    /// The machines programs are drawn onto, one per program from its seed (the default campaign's
    /// `MachineMix.standard`); nil: every program on `machine`.
    public var mix: MachineMix?
    /// Calls per program (before a closing misuse).
    public var calls: ClosedRange<Int>
    /// Percent of programs that end in one deliberately wrong call (double unlock, free twice, wrong
    /// unmap, too high an IRQL, a read-only buffer locked for write, a limit length, …).
    public var misusePercent: Int
    /// Percent of programs that carry a fault plan (one or two `fault` lines).
    public var faultPercent: Int

    public init(machine: MachineLine = MachineLine(architecture: "x86"), mix: MachineMix? = nil, calls: ClosedRange<Int> = 8...40,
                misusePercent: Int = 30, faultPercent: Int = 30) {
        self.machine = machine
        self.mix = mix
        self.calls = calls
        self.misusePercent = misusePercent
        self.faultPercent = faultPercent
    }
}

/// Builds programs call by call from a seed, tracking live resources so that calls are meaningful
/// (lock an MDL that exists and is unlocked, unmap a mapping that exists), with swarm testing: every
/// program enables its own subset of actions with its own weights. Arguments favour boundaries.
public struct ProgramGenerator: Sendable {
    public let options: GenerationOptions

    /// One per machine of the mix (or just `options.machine`): the options with that machine, and the
    /// machine's numbers for the parameter edges, parsed once.
    let variants: [(options: GenerationOptions, edgeConstants: EdgeConstants)]

    public init(_ options: GenerationOptions = GenerationOptions()) {
        self.options = options
        let machines = options.mix?.entries.map(\.machine) ?? [options.machine]
        variants = machines.map { machine in
            var single = options
            single.machine = machine
            single.mix = nil
            return (single, EdgeConstants(machine))
        }
    }

    /// The program for one seed. Same seed, same program (and machine), byte for byte.
    public func generate(seed: UInt64) -> Program {
        let variant = variants[options.mix?.index(forProgramSeed: seed) ?? 0]
        var builder = ProgramBuilder(options: variant.options, random: SeededRandom(seed: seed), edgeConstants: variant.edgeConstants)
        let program = builder.build()
        assert((try? program.validate()) != nil, "the generator built a program the parser would refuse (seed \(seed))")
        return program
    }

    /// The program a byte string chooses (the libFuzzer entry point's decoder): the same generator with
    /// the bytes as its decisions, so every byte string is a well-formed program (on `options.machine`).
    public func generate(choices: [UInt8]) -> Program {
        // Without a mix the one variant is this machine's, its edge numbers parsed once already.
        var single = options
        single.mix = nil
        let variant = options.mix == nil ? variants[0] : (options: single, edgeConstants: EdgeConstants(options.machine))
        var builder = ProgramBuilder(options: variant.options, random: SeededRandom(choices: choices), edgeConstants: variant.edgeConstants)
        return builder.build()
    }
}

/// One program being built: the live resources and the calls so far.
struct ProgramBuilder {
    struct Buffer { let name: String; let size: UInt64; let readOnly: Bool; var alive = true }
    struct Block { let name: String; let size: UInt64; let paged: Bool; var alive = true }
    struct Mdl {
        let name: String
        let base: Expression
        let length: UInt64
        let span: UInt64
        /// The MDL was built over a buffer (lockable) or over nonpaged pool (buildable).
        let overPool: Bool
        let capacity: UInt64
        var locked = false
        var nonpaged = false
        var partial = false
        var allocatedPages = false
        var mapping: String?
        var alive = true
        var bufferReadOnly = false
        /// For a partial MDL, the MDL it was built from.
        var source: String?
        /// Caller-allocated (ExAllocatePoolWithTag + MmInitializeMdl): freed with ExFreePool.
        var poolBlock = false
        /// The IRP the MDL was allocated with (IoAllocateMdl's Irp argument).
        var irp: String?
        /// Describes an MmMapIoSpace mapping (device memory): built with MmBuildMdlForNonPagedPool,
        /// never probe-locked (Verifier stops that, and free builds take no lock on device pages).
        var overIoSpace = false
    }
    struct View { let name: String; let mdl: String?; let length: UInt64; let io: Bool; var user = false }

    let options: GenerationOptions
    var random: SeededRandom
    let pageSize: UInt64
    /// The machine's numbers the parameter edges are measured against (GenerationEdges.swift).
    let edgeConstants: EdgeConstants
    var calls: [Call] = []
    var counter = 0
    var buffers: [Buffer] = []
    var blocks: [Block] = []
    var mdls: [Mdl] = []
    var views: [View] = []
    var irps: [String] = []
    /// IRPs already freed with IoFreeIrp.
    var freedIrps: Set<String> = []
    var physical: [String] = []
    var enabled: [(Action, Int)] = []

    enum Action: CaseIterable {
        case allocateBuffer, writeBuffer, readBuffer, allocateMdl, createMdl, poolMdl, lock, unlock, mapSafe, mapLegacy, mapUser,
             unmap, buildNonPaged, partial, prepareReuse, freeMdl, queryMdl, sizeOf, physicalAddress, isValid, ioSpace, unmapIoSpace,
             translate, allocatePages, freePages, trim, pageOut, protect, irp, dispatchInterlude,
             initializeMdl, freeBuffer, freeIrp, processInterlude,
             // Arguments at the edges of their domains (GenerationEdges.swift).
             edgeMdl, edgeAccess, edgePhysical, edgeEnums, edgeQuery
    }

    init(options: GenerationOptions, random: SeededRandom, edgeConstants: EdgeConstants? = nil) {
        self.options = options
        self.random = random
        self.pageSize = options.machine.architecture == "alpha" ? 0x2000 : 0x1000
        self.edgeConstants = edgeConstants ?? EdgeConstants(options.machine)
    }

    mutating func build() -> Program {
        // Swarm: a random subset of actions with random weights; the core lifecycle is always on.
        let core: Set<String> = ["allocateBuffer", "allocateMdl", "lock", "unlock", "freeMdl", "mapSafe", "unmap"]
        for action in Action.allCases where core.contains("\(action)") || random.chance(60) {
            enabled.append((action, 1 + random.below(10)))
        }
        append(nil, .allocateUserBuffer, [.expression(.literal(4 * pageSize)), .symbol("ReadWrite")], result: "b")
        buffers.append(Buffer(name: lastName, size: 4 * pageSize, readOnly: false))
        let count = options.calls.lowerBound + random.below(options.calls.count)
        var guardCount = 0
        while calls.count < count && guardCount < count * 20 {
            guardCount += 1
            step(pickAction())
        }
        if random.chance(50) { cleanUp() }
        if random.chance(options.misusePercent) { misuse() }
        let faults = random.chance(options.faultPercent) ? faultPlan() : []
        return Program(machine: options.machine, faults: faults, calls: calls)
    }

    var lastName = ""

    mutating func fresh(_ prefix: String) -> String {
        defer { counter += 1 }
        return "\(prefix)\(counter)"
    }

    mutating func append(_ unused: String?, _ routine: Routine, _ arguments: [Argument], result prefix: String? = nil) {
        let name = prefix.map { fresh($0) }
        if let name { lastName = name }
        calls.append(Call(name, routine, arguments))
    }

    mutating func pickAction() -> Action {
        let total = enabled.reduce(0) { $0 + $1.1 }
        var roll = random.below(total)
        for (action, weight) in enabled {
            if roll < weight { return action }
            roll -= weight
        }
        return .allocateBuffer
    }

    // MARK: Argument choice, favouring boundaries

    mutating func offsetAndLength(within size: UInt64) -> (UInt64, UInt64) {
        let offsets: [UInt64] = [0, 0, 1, 0x10, pageSize - 1, pageSize, pageSize + 1, 0x123]
        let offset = min(random.pick(offsets), size - 1)
        let room = size - offset
        let lengths: [UInt64] = [1, 0x10, pageSize - 1, pageSize, pageSize + 1, 2 * pageSize, room, room - 1, 0x100]
        var length = random.pick(lengths)
        if length == 0 || length > room { length = room }
        return (offset, length)
    }

    func span(_ offset: UInt64, _ length: UInt64) -> UInt64 { ((offset & (pageSize - 1)) + length + pageSize - 1) / pageSize }

    func ref(_ name: String, _ offset: UInt64 = 0) -> Argument { .expression(.reference(name, offset: Int64(offset))) }

    var liveBuffers: [Int] { buffers.indices.filter { buffers[$0].alive } }
    var liveMdls: [Int] { mdls.indices.filter { mdls[$0].alive } }

    // MARK: Actions

    mutating func step(_ action: Action) {
        switch action {
        case .allocateBuffer:
            let sizes: [UInt64] = [pageSize, 2 * pageSize, 3 * pageSize, 4 * pageSize, pageSize + 1, 8 * pageSize]
            let size = random.pick(sizes)
            let readOnly = random.chance(15)
            append(nil, .allocateUserBuffer, [.expression(.literal(size)), .symbol(readOnly ? "ReadOnly" : "ReadWrite")], result: "b")
            buffers.append(Buffer(name: lastName, size: size, readOnly: readOnly))
        case .writeBuffer:
            guard let index = liveBuffers.filter({ !buffers[$0].readOnly }).randomElement(using: &random) else { return }
            let (offset, length) = offsetAndLength(within: buffers[index].size)
            let data = (0..<min(length, 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            append(nil, .writeMemory, [ref(buffers[index].name, offset), .bytes(data)])
        case .readBuffer:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            let (offset, length) = offsetAndLength(within: buffers[index].size)
            append(nil, .readMemory, [ref(buffers[index].name, offset), .expression(.literal(min(length, 16)))], result: "d")
        case .allocateMdl, .createMdl:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            let buffer = buffers[index]
            if random.chance(8) { return longMdl(over: buffer.name, create: action == .createMdl) }
            let (offset, length) = offsetAndLength(within: buffer.size)
            if action == .allocateMdl {
                append(nil, .ioAllocateMdl, [ref(buffer.name, offset), .expression(.literal(length)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
            } else {
                append(nil, .mmCreateMdl, [.expression(.null), ref(buffer.name, offset), .expression(.literal(length))], result: "m")
            }
            let pages = span(offset, length)
            mdls.append(Mdl(name: lastName, base: .reference(buffer.name, offset: Int64(offset)), length: length, span: pages,
                            overPool: false, capacity: max(pages, 23), bufferReadOnly: buffer.readOnly))
        case .poolMdl:
            // Now and then the nonpaged buffer is device memory: an MmMapIoSpace mapping, whose MDL
            // MmBuildMdlForNonPagedPool marks MDL_IO_SPACE (and IoBuildPartialMdl passes that on).
            if let view = views.filter({ $0.io && $0.length >= 0x10 }).randomElement(using: &random), random.below(4) == 0 {
                let (offset, length) = offsetAndLength(within: view.length)
                append(nil, .ioAllocateMdl, [ref(view.name, offset), .expression(.literal(length)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
                var mdl = Mdl(name: lastName, base: .reference(view.name, offset: Int64(offset)), length: length, span: span(offset, length),
                              overPool: true, capacity: 23)
                mdl.overIoSpace = true
                mdls.append(mdl)
                return
            }
            // A nonpaged pool buffer and an MDL over it (for MmBuildMdlForNonPagedPool and partial MDLs).
            let size = random.pick([0x100, pageSize, 2 * pageSize, 0x40] as [UInt64])
            append(nil, .exAllocatePoolWithTag, [.symbol("NonPagedPool"), .expression(.literal(size))], result: "p")
            let block = lastName
            blocks.append(Block(name: block, size: size, paged: false))
            let (offset, length) = offsetAndLength(within: size)
            append(nil, .ioAllocateMdl, [ref(block, offset), .expression(.literal(length)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
            mdls.append(Mdl(name: lastName, base: .reference(block, offset: Int64(offset)), length: length, span: span(offset, length),
                            overPool: true, capacity: 23))
        case .lock:
            guard let index = liveMdls.filter({ !mdls[$0].locked && !mdls[$0].nonpaged && !mdls[$0].partial && !mdls[$0].allocatedPages && mdls[$0].mapping == nil && !mdls[$0].overIoSpace })
                .randomElement(using: &random) else { return }
            let operation = mdls[index].bufferReadOnly ? "IoReadAccess" : random.pick(["IoReadAccess", "IoWriteAccess", "IoModifyAccess"])
            let mode = !mdls[index].overPool && random.chance(30) ? "UserMode" : "KernelMode"
            append(nil, .mmProbeAndLockPages, [ref(mdls[index].name), .symbol(mode), .symbol(operation)])
            mdls[index].locked = true
        case .unlock:
            guard let index = liveMdls.filter({ mdls[$0].locked && !mdls[$0].allocatedPages }).randomElement(using: &random) else { return }
            unmapUserViews(of: mdls[index].name)
            releasePartials(of: mdls[index].name)
            append(nil, .mmUnlockPages, [ref(mdls[index].name)])
            mdls[index].locked = false
            dropViews(of: mdls[index].name, systemOnly: true)
            mdls[index].mapping = nil
        case .mapSafe, .mapLegacy:
            // Legal and common in drivers: asking again for an MDL that is already mapped returns its
            // MappedSystemVa (no second mapping, no PTEs).
            if action == .mapSafe, random.chance(20),
               let index = liveMdls.filter({ mdls[$0].mapping != nil && !mdls[$0].nonpaged }).randomElement(using: &random) {
                if random.chance(50) {
                    append(nil, .mmGetSystemAddressForMdl, [ref(mdls[index].name)], result: "v")
                } else {
                    append(nil, .mmGetSystemAddressForMdlSafe, [ref(mdls[index].name), .symbol("NormalPagePriority")], result: "v")
                }
                return
            }
            guard let index = liveMdls.filter({ (mdls[$0].locked || mdls[$0].partial) && mdls[$0].mapping == nil && !mdls[$0].nonpaged })
                .randomElement(using: &random) else { return }
            let mdl = mdls[index].name
            if action == .mapSafe {
                append(nil, .mmGetSystemAddressForMdlSafe, [ref(mdl), .symbol(random.pick(["LowPagePriority", "NormalPagePriority", "HighPagePriority"]))], result: "v")
            } else if random.chance(40) {
                // The legacy macro: maps with MmMapLockedPages, which bug-checks (0x3F) when out of PTEs,
                // unless the driver sets MDL_MAPPING_CAN_FAIL around it (the NT 4.0 idiom): then NULL.
                let canFail = random.chance(40)
                if canFail { append(nil, .setMdlFlags, [ref(mdl), .expression(.literal(0x2000))]) }
                append(nil, .mmGetSystemAddressForMdl, [ref(mdl)], result: "v")
                if canFail { append(nil, .clearMdlFlags, [ref(mdl), .expression(.literal(0x2000))]) }
            } else {
                // Every caching type and priority (their edges too), and BugCheckOnFailure now and then.
                append(nil, .mmMapLockedPagesSpecifyCache, [ref(mdl), .symbol("KernelMode"), edgeSymbol(.cachingType, ordinary: ["MmCached", "MmNonCached", "MmWriteCombined"]),
                                                             .expression(.null), .boolean(random.chance(20)), edgeSymbol(.pagePriority, ordinary: ["NormalPagePriority"])], result: "v")
            }
            mdls[index].mapping = lastName
            views.append(View(name: lastName, mdl: mdl, length: mdls[index].length, io: false))
        case .mapUser:
            guard let index = liveMdls.filter({ mdls[$0].locked && !mdls[$0].partial }).randomElement(using: &random) else { return }
            if random.below(2) == 0 {
                append(nil, .mmMapLockedPages, [ref(mdls[index].name), .symbol("UserMode")], result: "v")
            } else {
                // SpecifyCache in user mode: the page's own caching wins over the request for RAM.
                append(nil, .mmMapLockedPagesSpecifyCache, [ref(mdls[index].name), .symbol("UserMode"), .symbol(random.pick(["MmCached", "MmNonCached", "MmWriteCombined"])),
                                                             .expression(.null), .boolean(false), .symbol("NormalPagePriority")], result: "v")
            }
            views.append(View(name: lastName, mdl: mdls[index].name, length: mdls[index].length, io: false, user: true))
        case .unmap:
            guard let view = views.filter({ !$0.io && $0.mdl != nil }).randomElement(using: &random),
                  let index = mdls.firstIndex(where: { $0.name == view.mdl && $0.alive }) else { return }
            if mdls[index].partial && mdls[index].mapping == view.name {
                append(nil, .mmPrepareMdlForReuse, [ref(mdls[index].name)])
            } else {
                append(nil, .mmUnmapLockedPages, [ref(view.name), ref(mdls[index].name)])
            }
            if mdls[index].mapping == view.name { mdls[index].mapping = nil }
            views.removeAll { $0.name == view.name }
        case .buildNonPaged:
            guard let index = liveMdls.filter({ mdls[$0].overPool && !mdls[$0].nonpaged && !mdls[$0].locked && !mdls[$0].partial }).randomElement(using: &random) else { return }
            append(nil, .mmBuildMdlForNonPagedPool, [ref(mdls[index].name)])
            mdls[index].nonpaged = true
        case .partial:
            guard let source = liveMdls.filter({ (mdls[$0].locked || mdls[$0].nonpaged) && !mdls[$0].partial && !mdls[$0].allocatedPages })
                .randomElement(using: &random) else { return }
            let src = mdls[source]
            let (offset, length) = offsetAndLength(within: src.length)
            let pages = span(0, length) + 1
            guard case .reference(let base, let baseOffset) = src.base else { return }
            // Now and then the target is an idle MDL already on an IRP's chain (drivers reuse MDLs for
            // partials): IoBuildPartialMdl must leave its Next, and so the chain, alone.
            let onChain = liveMdls.filter { index in
                let mdl = mdls[index]
                return mdl.irp != nil && !mdl.locked && !mdl.partial && !mdl.nonpaged && !mdl.allocatedPages && !mdl.poolBlock
                    && mdl.mapping == nil && mdl.capacity >= pages && !mdls.contains { $0.alive && $0.source == mdl.name }
            }
            let reused = onChain.isEmpty || random.below(4) != 0 ? nil : onChain.randomElement(using: &random)
            let target: String
            if let reused {
                target = mdls[reused].name
            } else {
                append(nil, .ioAllocateMdl, [.expression(.null), .expression(.literal(pages * pageSize)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
                target = lastName
            }
            let va = Expression.reference(base, offset: baseOffset + Int64(offset))
            append(nil, .ioBuildPartialMdl, [ref(src.name), ref(target), .expression(va), .expression(.literal(length))])
            var partialMdl = Mdl(name: target, base: va, length: length, span: pages, overPool: src.overPool,
                                 capacity: reused.map { mdls[$0].capacity } ?? pages, partial: true)
            partialMdl.source = src.name
            if let reused {
                partialMdl.irp = mdls[reused].irp
                mdls[reused] = partialMdl
            } else {
                mdls.append(partialMdl)
            }
        case .prepareReuse:
            guard let index = liveMdls.filter({ mdls[$0].partial }).randomElement(using: &random) else { return }
            append(nil, .mmPrepareMdlForReuse, [ref(mdls[index].name)])
            dropViews(of: mdls[index].name, systemOnly: true)
            mdls[index].mapping = nil
        case .freeMdl:
            guard let index = liveMdls.filter({ (!mdls[$0].locked || mdls[$0].partial) && (mdls[$0].mapping == nil || mdls[$0].partial) && !mdls[$0].allocatedPages })
                .randomElement(using: &random) else { return }
            releasePartials(of: mdls[index].name)
            append(nil, mdls[index].poolBlock ? .exFreePool : .ioFreeMdl, [ref(mdls[index].name)])
            mdls[index].alive = false
            dropViews(of: mdls[index].name, systemOnly: false)
        case .queryMdl:
            guard let index = liveMdls.randomElement(using: &random) else { return }
            let routine = random.pick([Routine.mmGetMdlByteCount, .mmGetMdlByteOffset, .mmGetMdlVirtualAddress])
            append(nil, routine, [ref(mdls[index].name)], result: routine == .mmGetMdlVirtualAddress ? "v" : "x")
        case .sizeOf:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            var (offset, length) = offsetAndLength(within: buffers[index].size)
            // MmSizeOfMdl reads no memory: lengths past the buffer, at the 16-bit Size limits and the wrap points.
            if random.chance(30) { length = random.pick(longLengths + [0x7FFF_FFFF, 0xFFFF_FFFF, 0xFFFF_F001, 0x1_0000_0000]) }
            append(nil, .mmSizeOfMdl, [ref(buffers[index].name, offset), .expression(.literal(length))], result: "x")
        case .physicalAddress:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            let (offset, _) = offsetAndLength(within: buffers[index].size)
            append(nil, .mmGetPhysicalAddress, [ref(buffers[index].name, offset)], result: "a")
            physical.append(lastName)
        case .isValid:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            let (offset, _) = offsetAndLength(within: buffers[index].size)
            append(nil, .mmIsAddressValid, [ref(buffers[index].name, offset)], result: "x")
        case .ioSpace:
            let offset = UInt64(random.below(4)) * pageSize + random.pick([0, 0x10, pageSize - 1])
            let length = random.pick([1, 0x10, pageSize, pageSize + 1, 2 * pageSize])
            append(nil, .mmMapIoSpace, [.expression(.literal(0xF000_0000 + offset)), .expression(.literal(length)), edgeSymbol(.cachingType, ordinary: ["MmNonCached", "MmCached", "MmWriteCombined"])], result: "v")
            views.append(View(name: lastName, mdl: nil, length: length, io: true))
        case .unmapIoSpace:
            // Not while an MDL still describes the mapping (the program ends those first, at clean-up).
            guard let view = views.filter({ view in view.io && !mdls.contains { mdl in
                guard mdl.alive, mdl.overIoSpace, case .reference(let name, _) = mdl.base else { return false }
                return name == view.name
            } }).randomElement(using: &random) else { return }
            append(nil, .mmUnmapIoSpace, [ref(view.name), .expression(.literal(view.length))])
            views.removeAll { $0.name == view.name }
        case .translate:
            let cases: [(String, UInt64, UInt64, UInt64)] = [("PCIBus", 0, 0xF000_0000, 0), ("PCIBus", 1, 0x4000_0010, 0), ("Isa", 0, 0x3F8, 1),
                                                            ("Isa", 0, 0x200_0000, 0), ("Eisa", 0, 0x1_0000, 1), ("MicroChannel", 0, 0x1000, 0), ("PCIBus", 7, 0, 0)]
            let (type, bus, address, space) = random.pick(cases)
            append(nil, .halTranslateBusAddress, [.symbol(type), .expression(.literal(bus)), .expression(.literal(address)), .expression(.literal(space))], result: "a")
        case .allocatePages:
            // 35 % of the time a bounded physical range (GenerationPageRanges.swift), else all of RAM.
            if random.chance(35) { allocatePagesInBoundedRange(); return }
            let total = random.pick([pageSize, 3 * pageSize, pageSize + 1] as [UInt64])
            append(nil, .mmAllocatePagesForMdl, [.expression(.literal(0)), .expression(.literal(0xFFFF_FFFF)), .expression(.literal(0)), .expression(.literal(total))], result: "m")
            var mdl = Mdl(name: lastName, base: .literal(0), length: total, span: (total + pageSize - 1) / pageSize, overPool: true, capacity: 0, locked: true)
            mdl.allocatedPages = true
            mdls.append(mdl)
        case .freePages:
            guard let index = liveMdls.filter({ mdls[$0].allocatedPages }).randomElement(using: &random) else { return }
            // From Windows 7 MmFreePagesFromMdl also releases a system mapping left in place: half the
            // time there, the driver relies on that (user mappings it still removes first).
            let releasesMapping = ["6.1", "6.2", "10.0"].contains(options.machine["version"] ?? "")
            if releasesMapping && mdls[index].mapping != nil && random.below(2) == 0 {
                unmapUserViews(of: mdls[index].name)
                dropViews(of: mdls[index].name, systemOnly: true)
            } else {
                unmapAllViews(of: mdls[index].name)
            }
            mdls[index].mapping = nil
            append(nil, .mmFreePagesFromMdl, [ref(mdls[index].name)])
            append(nil, .exFreePool, [ref(mdls[index].name)])
            mdls[index].alive = false
        case .trim:
            append(nil, .trimWorkingSet, [.expression(.literal(8))], result: "x")
        case .pageOut:
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            append(nil, .pageOut, [ref(buffers[index].name, UInt64(random.below(Int(buffers[index].size / pageSize))) * pageSize)], result: "x")
        case .protect:
            guard let index = liveBuffers.filter({ !buffers[$0].readOnly && !mdls.contains(where: { $0.alive && !$0.overPool }) }).randomElement(using: &random) else { return }
            append(nil, .protectUserBuffer, [ref(buffers[index].name), .expression(.literal(pageSize)), .symbol("ReadOnly")], result: "x")
            buffers[index] = Buffer(name: buffers[index].name, size: buffers[index].size, readOnly: true)
        case .irp:
            // Half the time another MDL for an IRP that has one: as the new head (SecondaryBuffer FALSE)
            // or appended to the chain (TRUE), which IoAllocateMdl walks, so only while every MDL on
            // the chain is still live. Otherwise a new IRP.
            let chained = irps.filter { irp in !freedIrps.contains(irp) && !mdls.contains { $0.irp == irp && !$0.alive } }
            let reuse = !chained.isEmpty && random.below(2) == 0
            let irp: String
            if reuse {
                irp = chained.randomElement(using: &random)!
            } else {
                append(nil, .ioAllocateIrp, [], result: "i")
                irp = lastName
                irps.append(irp)
            }
            let secondary = reuse && random.below(2) == 0
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            append(nil, .ioAllocateMdl, [ref(buffers[index].name), .expression(.literal(0x100)), .boolean(secondary), .boolean(false), ref(irp)], result: "m")
            var mdl = Mdl(name: lastName, base: .reference(buffers[index].name, offset: 0), length: 0x100, span: 1, overPool: false, capacity: 23,
                          bufferReadOnly: buffers[index].readOnly)
            mdl.irp = irp
            mdls.append(mdl)
        case .initializeMdl:
            // A caller-allocated MDL: MmSizeOfMdl bytes of nonpaged pool, then MmInitializeMdl.
            guard let index = liveBuffers.randomElement(using: &random) else { return }
            let buffer = buffers[index]
            let (offset, length) = offsetAndLength(within: buffer.size)
            let pages = span(offset, length)
            let wide = options.machine.architecture == "x64"
            append(nil, .exAllocatePoolWithTag, [.symbol("NonPagedPool"), .expression(.literal((wide ? 0x30 : 0x1C) + pages * (wide ? 8 : 4)))], result: "p")
            let block = lastName
            // Pool is not zeroed: a driver that reuses scratch memory leaves bytes MmInitializeMdl must overwrite.
            if random.chance(30) {
                append(nil, .writeMemory, [ref(block), .bytes((0..<8).map { _ in UInt8(truncatingIfNeeded: random.next() | 1) })])
            }
            append(nil, .mmInitializeMdl, [ref(block), ref(buffer.name, offset), .expression(.literal(length))])
            var mdl = Mdl(name: block, base: .reference(buffer.name, offset: Int64(offset)), length: length, span: pages,
                          overPool: false, capacity: pages, bufferReadOnly: buffer.readOnly)
            mdl.poolBlock = true
            mdls.append(mdl)
        case .freeBuffer:
            // Only a buffer no live MDL describes (b0 stays: fault plans name it).
            guard let index = liveBuffers.filter({ index in
                index > 0 && !mdls.contains { mdl in
                    guard mdl.alive, case .reference(let name, _) = mdl.base else { return false }
                    return name == buffers[index].name
                }
            }).randomElement(using: &random) else { return }
            append(nil, .freeUserBuffer, [ref(buffers[index].name)], result: "x")
            buffers[index].alive = false
        case .freeIrp:
            // An IRP whose MDLs are all freed.
            guard let irp = irps.filter({ irp in !freedIrps.contains(irp) && !mdls.contains { $0.alive && $0.irp == irp } })
                .randomElement(using: &random) else { return }
            append(nil, .ioFreeIrp, [ref(irp)])
            freedIrps.insert(irp)
        case .processInterlude:
            processInterlude()
        case .edgeMdl: edgeMdl()
        case .edgeAccess: edgeAccess()
        case .edgePhysical: edgePhysical()
        case .edgeEnums: edgeEnums()
        case .edgeQuery: edgeQuery()
        case .dispatchInterlude:
            // A short stretch at DISPATCH_LEVEL with calls that are legal there on resident memory.
            append(nil, .keRaiseIrql, [.symbol("DISPATCH_LEVEL")])
            if let index = liveMdls.randomElement(using: &random) {
                append(nil, .mmGetMdlByteCount, [ref(mdls[index].name)], result: "x")
            }
            append(nil, .keLowerIrql, [.symbol("PASSIVE_LEVEL")])
        }
    }

    /// Forgets the views an MDL operation released (system mappings, or all of them for IoFreeMdl).
    mutating func dropViews(of mdl: String, systemOnly: Bool) {
        views.removeAll { $0.mdl == mdl && (!systemOnly || !$0.user) }
    }

    /// Partial MDLs must be released before their source is unlocked or freed.
    mutating func releasePartials(of source: String) {
        for index in mdls.indices where mdls[index].alive && mdls[index].source == source {
            append(nil, .ioFreeMdl, [ref(mdls[index].name)])
            mdls[index].alive = false
            views.removeAll { $0.mdl == mdls[index].name }
        }
    }

    /// A careful driver removes user mappings before it unlocks the pages behind them.
    mutating func unmapUserViews(of mdl: String) {
        for view in views where view.mdl == mdl && view.user { append(nil, .mmUnmapLockedPages, [ref(view.name), ref(mdl)]) }
        views.removeAll { $0.mdl == mdl && $0.user }
    }

    /// Every mapping of an MDL, user and system, released with MmUnmapLockedPages.
    mutating func unmapAllViews(of mdl: String) {
        for view in views where view.mdl == mdl { append(nil, .mmUnmapLockedPages, [ref(view.name), ref(mdl)]) }
        views.removeAll { $0.mdl == mdl }
    }

    /// Releases what is still held, in the order a careful driver would.
    mutating func cleanUp() {
        for view in views where view.io { append(nil, .mmUnmapIoSpace, [ref(view.name), .expression(.literal(view.length))]) }
        for view in views where !view.io && (view.user || mdls.contains { $0.name == view.mdl && $0.allocatedPages }) {
            append(nil, .mmUnmapLockedPages, [ref(view.name), ref(view.mdl ?? "")])
        }
        for index in mdls.indices.reversed() where mdls[index].alive {
            let mdl = mdls[index]
            if mdl.allocatedPages {
                append(nil, .mmFreePagesFromMdl, [ref(mdl.name)])
                append(nil, .exFreePool, [ref(mdl.name)])
                continue
            }
            if mdl.partial {
                append(nil, .ioFreeMdl, [ref(mdl.name)])
                continue
            }
            if mdl.locked { append(nil, .mmUnlockPages, [ref(mdl.name)]) }
            append(nil, mdl.poolBlock ? .exFreePool : .ioFreeMdl, [ref(mdl.name)])
        }
        for irp in irps where !freedIrps.contains(irp) { append(nil, .ioFreeIrp, [ref(irp)]) }
        freedIrps.formUnion(irps)
        views = []
        for index in mdls.indices { mdls[index].alive = false }
    }
}

extension Array {
    /// A random element drawn from the program's own generator.
    func randomElement(using random: inout SeededRandom) -> Element? { isEmpty ? nil : self[random.below(count)] }
}

/// MDLs at the limits of the 16-bit Size field.
extension ProgramBuilder {
    /// Lengths whose MDL Size sits at the 16-bit limits: just past 0x7FFF (where a CSHORT turns
    /// negative), the largest that fits 0xFFFF, and one page more (NULL before NT 6.0).
    var longLengths: [UInt64] {
        let wide = options.machine.architecture == "x64"
        let header: UInt64 = wide ? 0x30 : 0x1C, pfn: UInt64 = wide ? 8 : 4
        let pastSigned = (0x7FFF - header) / pfn + 1, largest = (0xFFFF - header) / pfn
        return [pastSigned * pageSize, largest * pageSize, (largest + 1) * pageSize]
    }

    /// An MDL of tens of megabytes over a small buffer: built and queried, never probed (its range runs
    /// past the buffer), then freed. Its Size is what the mdl-consistency invariant checks.
    mutating func longMdl(over buffer: String, create: Bool) {
        let lengths = longLengths
        let length = random.pick(lengths) - random.pick([0, 1, 0x10] as [UInt64])
        let offset = random.pick([0, 0x10, pageSize - 1] as [UInt64])
        if create {
            append(nil, .mmCreateMdl, [.expression(.null), ref(buffer, offset), .expression(.literal(length))], result: "m")
        } else {
            append(nil, .ioAllocateMdl, [ref(buffer, offset), .expression(.literal(length)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
        }
        let mdl = lastName
        // The longest length fails before NT 6.0 (NULL): nothing to query or free then.
        guard length + offset <= lengths[1] else { return }
        append(nil, random.pick([Routine.mmGetMdlByteCount, .mmGetMdlByteOffset]), [ref(mdl)], result: "x")
        append(nil, create ? .exFreePool : .ioFreeMdl, [ref(mdl)])
    }
}
