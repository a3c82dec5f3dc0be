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

    /// Defaults: `machine x86`, no mix, 8...40 calls, 30% misuse, 30% with a fault plan.
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
/// The actions are the rows of `ProgramBuilder.actions` (GenerationActions.swift); adding one is a
/// method and a row (docs/ADDING_AN_ACTION.md).
public struct ProgramGenerator: Sendable {
    /// The options it generates with.
    public let options: GenerationOptions

    /// One per machine of the mix (or just `options.machine`): the options with that machine, and the
    /// machine's numbers for the parameter edges, parsed once.
    let variants: [(options: GenerationOptions, edgeConstants: EdgeConstants)]

    /// A generator with these options (default: `GenerationOptions()`).
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
///
/// The builder's state is what the action table's preconditions read (GenerationActions.swift): the
/// user buffers, pool blocks, MDLs, mappings, IRPs and physical addresses the program holds. Every
/// decision is drawn from `random`, in program order, so a seed (or a byte string) fixes the program.
struct ProgramBuilder {
    struct Buffer { let name: String; let size: UInt64; var readOnly: Bool; var alive = true }
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

    /// The process a program starts in (and owns `b0`): AttachProcess back to it, TrimWorkingSet of it.
    static let bootProcess: UInt64 = 8
    /// The physical address of the machine's device memory (PCI bus 0's window): MmMapIoSpace's target.
    static let deviceMemory: UInt64 = 0xF000_0000
    /// MDL_MAPPING_CAN_FAIL, the one MdlFlags bit a driver sets itself.
    static let mappingCanFail: UInt64 = 0x2000

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
    /// The actions this program enabled (indices in `ProgramBuilder.actions`) with their weights.
    var enabled: [(action: Int, weight: Int)] = []
    var totalWeight = 0

    init(options: GenerationOptions, random: SeededRandom, edgeConstants: EdgeConstants? = nil) {
        self.options = options
        self.random = random
        self.pageSize = options.machine.pageSize
        self.edgeConstants = edgeConstants ?? EdgeConstants(options.machine)
    }

    mutating func build() -> Program {
        enableActions()
        let b0 = bind(.allocateUserBuffer, [.literal(4 * pageSize), .symbol("ReadWrite")])
        buffers.append(Buffer(name: b0, size: 4 * pageSize, readOnly: false))
        let count = options.calls.lowerBound + random.below(options.calls.count)
        var guardCount = 0
        while calls.count < count && guardCount < count * 20 {
            guardCount += 1
            step(Self.actions[pickAction()])
        }
        if random.chance(50) { cleanUp() }
        if random.chance(options.misusePercent) { misuse() }
        let faults = random.chance(options.faultPercent) ? faultPlan() : []
        return Program(machine: options.machine, faults: faults, calls: calls)
    }

    // MARK: The call writer

    mutating func fresh(_ prefix: String) -> String {
        defer { counter += 1 }
        return "\(prefix)\(counter)"
    }

    /// Appends one call. A routine that returns something binds it to a fresh name whose prefix is the
    /// signature's result kind (`m3`, `v4`); that name is returned (nil for a routine that returns nothing).
    @discardableResult
    mutating func call(_ routine: Routine, _ arguments: [Argument]) -> String? {
        let name = routine.signature.result.map { fresh($0.prefix) }
        calls.append(Call(name, routine, arguments))
        return name
    }

    /// `call` for a routine that returns something: the name its result is bound to.
    mutating func bind(_ routine: Routine, _ arguments: [Argument]) -> String {
        guard let name = call(routine, arguments) else { preconditionFailure("\(routine.name) returns nothing to bind") }
        return name
    }

    /// IoAllocateMdl(va, length, secondary, quota, irp): the MDL's name.
    mutating func ioAllocateMdl(_ va: Argument, _ length: UInt64, secondary: Bool = false, quota: Bool = false, irp: Argument = .null) -> String {
        bind(.ioAllocateMdl, [va, .literal(length), .boolean(secondary), .boolean(quota), irp])
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

    /// MmSizeOfMdl of an MDL for `pages` pages: the header and one PFN per page (the engine's layout for
    /// the machine, as the parameter edges measure it).
    func mdlSize(pages: UInt64) -> UInt64 { edgeConstants.headerSize + pages * edgeConstants.pfnSize }

    var liveBuffers: [Int] { buffers.indices.filter { buffers[$0].alive } }
    var liveMdls: [Int] { mdls.indices.filter { mdls[$0].alive } }

    /// A live MDL drawn from those that satisfy `fits` (nothing is drawn when none does).
    mutating func pickMdl(where fits: (Mdl) -> Bool) -> Int? {
        mdls.indices.filter { mdls[$0].alive && fits(mdls[$0]) }.randomElement(using: &random)
    }

    /// Whether a live MDL describes memory at `name` (a buffer, a pool block, a mapping).
    func describes(_ name: String, where fits: (Mdl) -> Bool = { _ in true }) -> Bool {
        mdls.contains { mdl in
            guard mdl.alive, fits(mdl), case .reference(let base, _) = mdl.base else { return false }
            return base == name
        }
    }

    // MARK: Releasing what the program holds

    /// Forgets the views an MDL operation released (system mappings, or all of them for IoFreeMdl).
    mutating func dropViews(of mdl: String, systemOnly: Bool) {
        views.removeAll { $0.mdl == mdl && (!systemOnly || !$0.user) }
    }

    /// Partial MDLs must be released before their source is unlocked or freed.
    mutating func releasePartials(of source: String) {
        for index in mdls.indices where mdls[index].alive && mdls[index].source == source {
            call(.ioFreeMdl, [ref(mdls[index].name)])
            mdls[index].alive = false
            views.removeAll { $0.mdl == mdls[index].name }
        }
    }

    /// A careful driver removes user mappings before it unlocks the pages behind them.
    mutating func unmapUserViews(of mdl: String) {
        for view in views where view.mdl == mdl && view.user { call(.mmUnmapLockedPages, [ref(view.name), ref(mdl)]) }
        views.removeAll { $0.mdl == mdl && $0.user }
    }

    /// Every mapping of an MDL, user and system, released with MmUnmapLockedPages.
    mutating func unmapAllViews(of mdl: String) {
        for view in views where view.mdl == mdl { call(.mmUnmapLockedPages, [ref(view.name), ref(mdl)]) }
        views.removeAll { $0.mdl == mdl }
    }

    /// Releases what is still held, in the order a careful driver would.
    mutating func cleanUp() {
        for view in views where view.io { call(.mmUnmapIoSpace, [ref(view.name), .literal(view.length)]) }
        for view in views where !view.io && (view.user || mdls.contains { $0.name == view.mdl && $0.allocatedPages }) {
            call(.mmUnmapLockedPages, [ref(view.name), ref(view.mdl ?? "")])
        }
        for index in mdls.indices.reversed() where mdls[index].alive {
            let mdl = mdls[index]
            if mdl.allocatedPages {
                call(.mmFreePagesFromMdl, [ref(mdl.name)])
                call(.exFreePool, [ref(mdl.name)])
                continue
            }
            if mdl.partial {
                call(.ioFreeMdl, [ref(mdl.name)])
                continue
            }
            if mdl.locked { call(.mmUnlockPages, [ref(mdl.name)]) }
            call(mdl.poolBlock ? .exFreePool : .ioFreeMdl, [ref(mdl.name)])
        }
        for irp in irps where !freedIrps.contains(irp) { call(.ioFreeIrp, [ref(irp)]) }
        freedIrps.formUnion(irps)
        views = []
        for index in mdls.indices { mdls[index].alive = false }
    }
}

extension Array {
    /// A random element drawn from the program's own generator.
    func randomElement(using random: inout SeededRandom) -> Element? { isEmpty ? nil : self[random.below(count)] }
}

extension Argument {
    /// A number (`.expression(.literal(value))`).
    static func literal(_ value: UInt64) -> Argument { .expression(.literal(value)) }
    /// NULL (`none`).
    static let null: Argument = .expression(.null)
}
