import LockstepPrograms

/// The generator's actions, one row each: what it is called, how often a program picks it, what it
/// needs from the program so far, and the method that writes its calls. Adding an action is one
/// method and one row here (docs/ADDING_AN_ACTION.md).
///
/// The rules every row keeps, so that a seed keeps meaning the same program:
/// - The table's order is part of generation: each program's swarm draws run down it (a program
///   enables each row with its weight's percent, then draws the row's weight), and the pick of an
///   action walks it. A new row changes what every seed generates; the pin test
///   (GenerationPinTests) says so, and its hashes are updated with the reason in the same commit.
/// - A row's target is checked before the action draws anything: when nothing in the program fits,
///   the action is skipped (nothing drawn, nothing written) and the builder picks again. When
///   something fits, one is drawn (one decision) and handed to the method by its index.
/// - A method draws every decision from `random` (never the global generator, never a dictionary's
///   order), writes its calls with `call`/`bind`, and records what the program now holds.
struct GeneratorAction: Sendable {
    /// The action's name (for reading the table and for tests; generation does not read it).
    let name: String
    let weight: ActionWeight
    /// What the action needs from the program: nothing, or a live buffer, MDL, mapping or IRP that fits.
    let target: ActionTarget
    /// Writes the action's calls; its second argument is the index of the drawn target in the
    /// builder's `buffers`, `mdls`, `views` or `irps` (0 for an action without a target).
    let emit: @Sendable (inout ProgramBuilder, Int) -> Void

    /// An action on something the program holds.
    init(_ name: String, _ weight: ActionWeight, on target: ActionTarget, _ emit: @escaping @Sendable (inout ProgramBuilder, Int) -> Void) {
        self.name = name
        self.weight = weight
        self.target = target
        self.emit = emit
    }

    /// An action that is always possible, or that draws before it checks what it needs (its method
    /// then checks, and may write nothing).
    init(_ name: String, _ weight: ActionWeight, _ emit: @escaping @Sendable (inout ProgramBuilder) -> Void) {
        self.init(name, weight, on: .none) { builder, _ in emit(&builder) }
    }
}

/// How often an action is picked. Swarm testing: each program enables a row with `enabledPercent`
/// chance and gives it a weight drawn from `weights`; the builder picks among the enabled rows in
/// proportion to their weights.
struct ActionWeight: Sendable {
    /// Percent of programs the action is enabled in; 100: every program, and nothing is drawn for it.
    let enabledPercent: Int
    /// The weights an enabled action draws from, uniformly.
    let weights: ClosedRange<Int>

    /// The core lifecycle (allocate, lock, map, unmap, unlock, free): on in every program.
    static let core = ActionWeight(enabledPercent: 100, weights: 1...10)
    /// Everything else: on in 60 % of programs.
    static let swarm = ActionWeight(enabledPercent: 60, weights: 1...10)
}

/// What an action acts on: the precondition on the builder's tracked state. The closures see the
/// builder (for conditions across resources) and one live candidate.
enum ActionTarget: Sendable {
    /// Nothing the program holds (or the action checks for itself).
    case none
    /// A live user buffer that fits.
    case buffer(@Sendable (ProgramBuilder, ProgramBuilder.Buffer) -> Bool)
    /// A live MDL that fits.
    case mdl(@Sendable (ProgramBuilder, ProgramBuilder.Mdl) -> Bool)
    /// A mapping (system, user or I/O space) that fits.
    case view(@Sendable (ProgramBuilder, ProgramBuilder.View) -> Bool)
    /// An IRP that fits.
    case irp(@Sendable (ProgramBuilder, String) -> Bool)
}

extension ProgramBuilder {
    /// Every action the generator knows, in generation order (see `GeneratorAction` for the rules).
    static let actions: [GeneratorAction] = [
        // Buffers and the core MDL lifecycle (GenerationActions+Buffers.swift, GenerationActions+Mdl.swift,
        // GenerationActions+Mapping.swift).
        GeneratorAction("allocateBuffer", .core) { $0.allocateBuffer() },
        GeneratorAction("writeBuffer", .swarm, on: .buffer { _, buffer in !buffer.readOnly }) { $0.writeBuffer($1) },
        GeneratorAction("readBuffer", .swarm, on: .buffer { _, _ in true }) { $0.readBuffer($1) },
        GeneratorAction("allocateMdl", .core, on: .buffer { _, _ in true }) { $0.allocateMdl(over: $1) },
        GeneratorAction("createMdl", .swarm, on: .buffer { _, _ in true }) { $0.createMdl(over: $1) },
        GeneratorAction("poolMdl", .swarm) { $0.poolMdl() },
        GeneratorAction("lock", .core, on: .mdl { _, mdl in mdl.isLockable }) { $0.lock($1) },
        GeneratorAction("unlock", .core, on: .mdl { _, mdl in mdl.locked && !mdl.allocatedPages }) { $0.unlock($1) },
        GeneratorAction("mapSafe", .core) { $0.mapSafe() },
        GeneratorAction("mapLegacy", .swarm, on: .mdl { _, mdl in mdl.isMappable }) { $0.mapLegacy($1) },
        GeneratorAction("mapUser", .swarm, on: .mdl { _, mdl in mdl.locked && !mdl.partial }) { $0.mapUser($1) },
        GeneratorAction("unmap", .core, on: .view { _, view in !view.io && view.mdl != nil }) { $0.unmap($1) },
        GeneratorAction("buildNonPaged", .swarm, on: .mdl { _, mdl in mdl.overPool && !mdl.nonpaged && !mdl.locked && !mdl.partial }) {
            $0.buildNonPaged($1)
        },
        GeneratorAction("partial", .swarm, on: .mdl { _, mdl in (mdl.locked || mdl.nonpaged) && !mdl.partial && !mdl.allocatedPages }) {
            $0.partial(from: $1)
        },
        GeneratorAction("prepareReuse", .swarm, on: .mdl { _, mdl in mdl.partial }) { $0.prepareReuse($1) },
        GeneratorAction("freeMdl", .core, on: .mdl { _, mdl in mdl.isFreeable }) { $0.freeMdl($1) },
        GeneratorAction("queryMdl", .swarm, on: .mdl { _, _ in true }) { $0.queryMdl($1) },
        GeneratorAction("sizeOf", .swarm, on: .buffer { _, _ in true }) { $0.sizeOf($1) },
        GeneratorAction("physicalAddress", .swarm, on: .buffer { _, _ in true }) { $0.physicalAddress($1) },
        GeneratorAction("isValid", .swarm, on: .buffer { _, _ in true }) { $0.isValid($1) },
        // Device memory, bus addresses and pages without a buffer behind them.
        GeneratorAction("ioSpace", .swarm) { $0.ioSpace() },
        // Not while an MDL still describes the mapping (the program ends those first, at clean-up).
        GeneratorAction("unmapIoSpace", .swarm, on: .view { builder, view in view.io && !builder.describes(view.name, where: \.overIoSpace) }) {
            $0.unmapIoSpace($1)
        },
        GeneratorAction("translate", .swarm) { $0.translate() },
        GeneratorAction("allocatePages", .swarm) { $0.allocatePages() },
        GeneratorAction("freePages", .swarm, on: .mdl { _, mdl in mdl.allocatedPages }) { $0.freePages($1) },
        // The environment: working sets, protections, IRPs, IRQLs, pool, processes.
        GeneratorAction("trim", .swarm) { $0.trim() },
        GeneratorAction("pageOut", .swarm, on: .buffer { _, _ in true }) { $0.pageOut($1) },
        // Only while no live MDL describes a user buffer.
        GeneratorAction("protect", .swarm, on: .buffer { builder, buffer in !buffer.readOnly && !builder.mdls.contains { $0.alive && !$0.overPool } }) {
            $0.protect($1)
        },
        GeneratorAction("irp", .swarm) { $0.irp() },
        GeneratorAction("dispatchInterlude", .swarm) { $0.dispatchInterlude() },
        GeneratorAction("initializeMdl", .swarm, on: .buffer { _, _ in true }) { $0.initializeMdl(over: $1) },
        // Only a buffer no live MDL describes (b0 stays: fault plans name it).
        GeneratorAction("freeBuffer", .swarm, on: .buffer { builder, buffer in buffer.name != builder.buffers[0].name && !builder.describes(buffer.name) }) {
            $0.freeBuffer($1)
        },
        // An IRP whose MDLs are all freed.
        GeneratorAction("freeIrp", .swarm, on: .irp { builder, irp in !builder.freedIrps.contains(irp) && !builder.mdls.contains { $0.alive && $0.irp == irp } }) {
            $0.freeIrp($1)
        },
        GeneratorAction("processInterlude", .swarm) { $0.processInterlude() },
        // Arguments at the edges of their domains (GenerationEdges.swift).
        GeneratorAction("edgeMdl", .swarm) { $0.edgeMdl() },
        GeneratorAction("edgeAccess", .swarm) { $0.edgeAccess() },
        GeneratorAction("edgePhysical", .swarm) { $0.edgePhysical() },
        GeneratorAction("edgeEnums", .swarm) { $0.edgeEnums() },
        GeneratorAction("edgeQuery", .swarm) { $0.edgeQuery() },
    ]

    /// Swarm testing: this program's subset of the table, each row with its own weight.
    mutating func enableActions() {
        for (index, action) in Self.actions.enumerated() {
            let weight = action.weight
            guard weight.enabledPercent >= 100 || random.chance(weight.enabledPercent) else { continue }
            enabled.append((index, weight.weights.lowerBound + random.below(weight.weights.count)))
            totalWeight += enabled[enabled.count - 1].weight
        }
    }

    /// One enabled action, in proportion to the weights (its index in the table).
    mutating func pickAction() -> Int {
        var roll = random.below(totalWeight)
        for (action, weight) in enabled {
            if roll < weight { return action }
            roll -= weight
        }
        return 0
    }

    /// Runs one action: draws its target when it has one (or skips it when nothing fits), then its method.
    mutating func step(_ action: GeneratorAction) {
        let index: Int?
        switch action.target {
        case .none: index = 0
        case .buffer(let fits): index = buffers.indices.filter { buffers[$0].alive && fits(self, buffers[$0]) }.randomElement(using: &random)
        case .mdl(let fits): index = mdls.indices.filter { mdls[$0].alive && fits(self, mdls[$0]) }.randomElement(using: &random)
        case .view(let fits): index = views.indices.filter { fits(self, views[$0]) }.randomElement(using: &random)
        case .irp(let fits): index = irps.indices.filter { fits(self, irps[$0]) }.randomElement(using: &random)
        }
        guard let index else { return }
        action.emit(&self, index)
    }
}

extension ProgramBuilder.Mdl {
    /// MmProbeAndLockPages may lock it: built over a buffer or pool, not locked, mapped or partial yet,
    /// and not over I/O space.
    var isLockable: Bool { !locked && !nonpaged && !partial && !allocatedPages && mapping == nil && !overIoSpace }
    /// It may get its system mapping: locked (or a partial MDL of locked pages) and not mapped yet.
    var isMappable: Bool { (locked || partial) && mapping == nil && !nonpaged }
    /// It has a system mapping a driver may ask for again.
    var isMapped: Bool { mapping != nil && !nonpaged }
    /// IoFreeMdl (or ExFreePool) may free it: unlocked and unmapped, or a partial MDL.
    var isFreeable: Bool { (!locked || partial) && (mapping == nil || partial) && !allocatedPages }
}
