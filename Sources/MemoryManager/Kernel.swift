/// The simulated machine and its kernel: physical memory, processes, pools, system PTEs, buses, IRQL,
/// and the NT routines of "Address Mappings and MDLs", grouped the way NT names them:
/// ``mm`` (Mm*), ``io`` (Io*), ``hal`` (Hal*), plus ``env`` for the environment actions call sequences
/// need (pool, user buffers, processes, IRQL, paging) and ``inspect`` for read-only views of the state.
///
/// Everything is deterministic: the same configuration and the same calls (with the same fault
/// decisions) give the same results on any host. Misuse never traps the host process: it becomes an
/// NT outcome, a raised status or a bug check (``KernelError``).
public final class Kernel {
    /// The machine this kernel runs on.
    public let configuration: MachineConfiguration
    /// Page size, pointer width, MDL layout and address-space split of the configured architecture.
    public let constants: PlatformConstants

    let physical: PhysicalMemory
    let pagefile: Pagefile
    var systemPageTable: [UInt64: PageTableEntry] = [:] { didSet { systemPageTableWrites &+= 1 } }
    /// Writes to the system page table so far.
    private(set) var systemPageTableWrites: UInt64 = 0
    var processes: [UInt32: Process] = [:]
    var processByEprocess: [VirtualAddress: UInt32] = [:]
    /// The process whose user space is current (KeGetCurrentProcess / attached process).
    public internal(set) var currentProcessId: UInt32
    /// The System process's id.
    public let systemProcessId: UInt32 = 4
    var nextProcessId: UInt32 = 8
    let nonpagedPool: PoolAllocator
    let pagedPool: PoolAllocator
    let systemPtes: SystemPteAllocator
    let buses: BusTranslator
    /// Live MmMapIoSpace mappings: base VA (page aligned) → page count.
    var ioSpaceMappings: [VirtualAddress: Int] = [:]
    /// Live kernel-mode MDL mappings: base VA (page aligned) → (MDL, page count).
    var mdlSystemMappings: [VirtualAddress: (mdl: VirtualAddress, pages: Int)] = [:]
    /// Free fixed-size MDL blocks (IoAllocateMdl's lookaside list), most recently freed last.
    var mdlLookaside: [VirtualAddress] = []
    let mdlLookasideDepth = 128
    /// MDLs the engine created or initialised and that have not been freed: where → how it was made.
    var knownMdls: [MdlLocation: MdlOrigin] = [:]

    /// Where the MDL at `mdl` lives: system space, or the current process's user space.
    func location(_ mdl: VirtualAddress) -> MdlLocation {
        MdlLocation(address: mdl, processId: constants.isUserAddress(mdl) ? currentProcessId : nil)
    }

    /// Records an MDL the engine made or initialised.
    func track(_ mdl: VirtualAddress, _ origin: MdlOrigin, replacing: Bool = true) {
        let key = location(mdl)
        if replacing || knownMdls[key] == nil { knownMdls[key] = origin }
    }
    /// Live IRPs (EnvAllocateIrp).
    var irps: Set<VirtualAddress> = []
    /// Pages locked by MmProbeAndLockPages system-wide (for IoPageLockLimit).
    var systemLockedPages: UInt64 = 0

    /// The current IRQL.
    public internal(set) var irql: Irql = .passiveLevel
    /// The bug check that halted the machine, if any. Every later call fails with ``KernelError/machineHalted(_:)``.
    public internal(set) var haltedBy: BugCheck?

    /// Deliberate bugs for oracle tests (see `EngineMutation`); empty otherwise.
    var activeMutations: EngineMutation = []

    /// The single decision point for resource failures (see ``ResourceKind``). Nil: never inject.
    public var faultDecider: ((FaultSite) -> FaultDecision)?
    var faultOrdinals = [UInt64](repeating: 0, count: ResourceKind.allCases.count)
    var currentRoutine = "boot"

    /// Boots a machine. Throws if the configuration cannot boot (see ``MachineConfiguration/validate()``).
    public init(_ configuration: MachineConfiguration = .standard) throws(ConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        let constants = configuration.constants
        self.constants = constants
        guard constants.pointerBytes == 8 || configuration.systemPtes <= 65536 else {
            throw ConfigurationError("ptes must be at most 65536 on a 32-bit machine")
        }
        physical = PhysicalMemory(constants: constants, ramBytes: configuration.ramBytes, devices: configuration.devices)
        pagefile = Pagefile()
        let layout = SystemSpaceLayout(constants)
        nonpagedPool = PoolAllocator(type: .nonPagedPool, base: layout.nonpagedPool, size: configuration.nonpagedPoolBytes, constants: constants)
        pagedPool = PoolAllocator(type: .pagedPool, base: layout.pagedPool, size: configuration.pagedPoolBytes, constants: constants)
        systemPtes = SystemPteAllocator(base: layout.systemPtes, count: Int(configuration.systemPtes), pageSize: constants.pageSize)
        buses = BusTranslator(configuration: configuration)
        currentProcessId = systemProcessId
        bootSystemSpace()
        _ = createProcess(id: systemProcessId)
        let first = createProcess(id: nextProcessId)
        currentProcessId = first ?? systemProcessId
        currentRoutine = ""
        // Boot's own allocations are not decisions a fault plan can target: the first call's are nth=1.
        faultOrdinals = [UInt64](repeating: 0, count: ResourceKind.allCases.count)
    }

    /// A machine in exactly this one's state that shares nothing mutable with it: booting a
    /// configuration once and copying the booted machine for each program is cheaper than booting
    /// again (arrays and tables are copied in bulk, not built entry by entry), with the same result.
    /// The fault decider is not copied (a copy has none); deliberate slips (`mutations`) are.
    public func copy() -> Kernel { Kernel(copying: self) }

    private init(copying other: Kernel) {
        configuration = other.configuration
        constants = other.constants
        physical = PhysicalMemory(copying: other.physical)
        pagefile = Pagefile(copying: other.pagefile)
        systemPageTable = other.systemPageTable
        systemPageTableWrites = other.systemPageTableWrites
        processes = other.processes.mapValues { Process(copying: $0) }
        processByEprocess = other.processByEprocess
        currentProcessId = other.currentProcessId
        nextProcessId = other.nextProcessId
        nonpagedPool = PoolAllocator(copying: other.nonpagedPool)
        pagedPool = PoolAllocator(copying: other.pagedPool)
        systemPtes = SystemPteAllocator(copying: other.systemPtes)
        buses = other.buses
        ioSpaceMappings = other.ioSpaceMappings
        mdlSystemMappings = other.mdlSystemMappings
        mdlLookaside = other.mdlLookaside
        knownMdls = other.knownMdls
        irps = other.irps
        systemLockedPages = other.systemLockedPages
        irql = other.irql
        haltedBy = other.haltedBy
        activeMutations = other.activeMutations
        faultOrdinals = other.faultOrdinals
        currentRoutine = other.currentRoutine
    }

    private func bootSystemSpace() {
        // Nonpaged pool is resident from boot; paged pool is committed demand-zero and pageable.
        var va = nonpagedPool.base
        while va < nonpagedPool.base + nonpagedPool.size {
            guard let pfn = physical.allocate(for: .nonpagedPool) else { break }
            systemPageTable[constants.pageNumber(va)] = PageTableEntry(state: .valid(pfn), protection: .readWrite, pageable: false, cache: .writeBack)
            va += constants.pageSize
        }
        va = pagedPool.base
        while va < pagedPool.base + pagedPool.size {
            systemPageTable[constants.pageNumber(va)] = PageTableEntry(state: .demandZero, protection: .readWrite, pageable: true, cache: .writeBack)
            va += constants.pageSize
        }
    }

    /// Creates a process with an EPROCESS block in nonpaged pool. Nil if pool is exhausted.
    func createProcess(id: UInt32) -> UInt32? {
        guard let eprocess = allocatePool(.nonPagedPool, bytes: constants.pointerBytes == 8 ? 0x4D0 : 0x280) else { return nil }
        processes[id] = Process(id: id, eprocess: eprocess)
        processByEprocess[eprocess] = id
        nextProcessId = max(nextProcessId, id + 4)
        return id
    }

    var currentProcess: Process { processes[currentProcessId] ?? processes[systemProcessId]! }

    // MARK: Namespaces

    /// The Mm* routines.
    public var mm: MemoryManagerRoutines { MemoryManagerRoutines(kernel: self) }
    /// The Io* routines.
    public var io: IoManagerRoutines { IoManagerRoutines(kernel: self) }
    /// The Hal* routines.
    public var hal: HalRoutines { HalRoutines(kernel: self) }
    /// Environment actions: pool, user buffers, processes, IRQL, working sets, memory reads and writes.
    public var env: EnvironmentActions { EnvironmentActions(kernel: self) }
    /// Read-only views of the machine's state, for invariant checks and tests.
    public var inspect: KernelInspector { KernelInspector(kernel: self) }

    // MARK: Outcome helpers shared by every routine

    /// Marks the start of a routine: refuses the call if the machine is halted.
    @inline(__always) func enter(_ routine: String) throws(KernelError) {
        if let check = haltedBy { throw .machineHalted(check) }
        currentRoutine = routine
    }

    /// Halts the machine with a bug check and returns the error to throw.
    func bugCheck(_ check: BugCheck) -> KernelError {
        haltedBy = check
        return .bugCheck(check)
    }

    var isVerifier: Bool { configuration.checking == .verifier }
    var isChecked: Bool { configuration.checking == .checked }

    /// A checked build's ASSERT: in `checked` mode a false condition bug-checks (see ``AssertionSite``).
    @inline(__always) func checkedAssert(_ condition: Bool, _ site: AssertionSite, _ p3: UInt64 = 0, _ p4: UInt64 = 0) throws(KernelError) {
        if !condition && configuration.checking == .checked {
            throw bugCheck(BugCheck(BugCheck.kmodeExceptionNotHandled, UInt64(NTStatus.breakpoint.rawValue), site.rawValue, p3, p4))
        }
    }

    /// Driver Verifier's 0xC4 check: in `verifier` mode a true violation bug-checks.
    @inline(__always) func verifierCheck(_ violated: Bool, _ subcode: UInt64, _ p2: UInt64, _ p3: UInt64, _ p4: UInt64) throws(KernelError) {
        if violated && configuration.checking == .verifier {
            throw bugCheck(.verifier(subcode, p2, p3, p4))
        }
    }

    /// Driver Verifier's PTE tracking: SYSTEM_PTE_MISUSE 0x03 (0, expected, requested address) when no
    /// tracked mapping starts at the address, 0x02 (0, expected, requested count) when its size differs.
    func verifierPteCheck(expectedPages: Int?, requestedPages: UInt64, requested: VirtualAddress) throws(KernelError) {
        guard isVerifier else { return }
        guard let expectedPages else { throw bugCheck(BugCheck(BugCheck.systemPteMisuse, 3, 0, 0, requested)) }
        if UInt64(expectedPages) != requestedPages {
            throw bugCheck(BugCheck(BugCheck.systemPteMisuse, 2, 0, UInt64(expectedPages), requestedPages))
        }
    }

    /// Asks the fault decider about one resource decision. Ordinals count every decision, injected or not.
    func decide(_ kind: ResourceKind, address: VirtualAddress = 0, amount: UInt64 = 0) -> FaultDecision {
        let index = kind.ordinalIndex
        faultOrdinals[index] += 1
        guard let decider = faultDecider else { return .proceed }
        return decider(FaultSite(kind: kind, ordinal: faultOrdinals[index], routine: currentRoutine, address: address, amount: amount))
    }

    /// Number of decisions of one kind made so far.
    public func faultDecisions(_ kind: ResourceKind) -> UInt64 {
        faultOrdinals[kind.ordinalIndex]
    }

    // MARK: Pool (ExAllocatePool / ExFreePool, through the fault hook)

    func pool(_ type: PoolType) -> PoolAllocator { type == .nonPagedPool ? nonpagedPool : pagedPool }

    /// ExAllocatePoolWithTag: nil when the pool is exhausted or the fault plan fails it.
    func allocatePool(_ type: PoolType, bytes: UInt64) -> VirtualAddress? {
        if case .fail = decide(type == .nonPagedPool ? .nonpagedPool : .pagedPool, amount: bytes) { return nil }
        return pool(type).allocate(bytes)
    }

    /// Which pool (if any) holds a live block containing `va`.
    func poolBlock(containing va: VirtualAddress) -> (start: VirtualAddress, size: UInt64)? {
        if nonpagedPool.contains(va) { return nonpagedPool.block(containing: va) }
        if pagedPool.contains(va) { return pagedPool.block(containing: va) }
        return nil
    }

    func isPoolAddress(_ va: VirtualAddress) -> Bool { nonpagedPool.contains(va) || pagedPool.contains(va) }
}

/// Where an MDL lives: its address, and for an MDL built in user memory (legal, if unwise) the process
/// whose address space holds it.
public struct MdlLocation: Hashable, Comparable, Sendable {
    public let address: VirtualAddress
    /// Nil for system space.
    public let processId: UInt32?

    public static func < (a: MdlLocation, b: MdlLocation) -> Bool {
        (a.processId ?? 0, a.address) < (b.processId ?? 0, b.address)
    }
}

/// How an MDL the engine knows about came to exist.
public enum MdlOrigin: String, Sendable {
    case ioAllocateMdl = "IoAllocateMdl"
    case mmCreateMdl = "MmCreateMdl"
    case mmInitializeMdl = "MmInitializeMdl"
    case mmAllocatePagesForMdl = "MmAllocatePagesForMdl"
    /// Memory the program handed to a routine as an MDL without making it one (stale bytes of a freed
    /// MDL, garbage): tracked so that the locks and mappings it takes are accounted for.
    case usedAsMdl = "used as an MDL"
}

/// Where system space regions sit, per architecture.
struct SystemSpaceLayout {
    let nonpagedPool: VirtualAddress
    let pagedPool: VirtualAddress
    let systemPtes: VirtualAddress

    init(_ constants: PlatformConstants) {
        if constants.pointerBytes == 8 {
            nonpagedPool = 0xFFFF_FA80_0000_0000
            pagedPool = 0xFFFF_F8A0_0000_0000
            systemPtes = 0xFFFF_F880_0000_0000
        } else {
            nonpagedPool = 0x8100_0000
            pagedPool = 0xE100_0000
            systemPtes = 0xC100_0000
        }
    }
}
