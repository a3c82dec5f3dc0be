@testable import MemoryManager
@testable import Lockstep
import LockstepPrograms
import Testing

/// Runs like the permissive oracle, and after one step damages the engine's state the way a buggy
/// routine would have: the invariants must see it at that step.
final class SabotagingOracle: Oracle {
    let kernel: Kernel
    let afterStep: Int
    let damage: (Kernel) throws -> Void
    private var step = 0

    init(kernel: Kernel, afterStep: Int, damage: @escaping (Kernel) throws -> Void) {
        self.kernel = kernel
        self.afterStep = afterStep
        self.damage = damage
    }

    func expect(_ call: Call) -> Prediction { .unpredictable(reason: "invariants only") }
    func apply(_ call: Call, observed: Outcome) {
        step += 1
        if step == afterStep { try? damage(kernel) }
    }
}

/// The checks added for the mutation benchmark (pool ownership, an MDL's Next, I/O-space caching): each
/// catches its damage at the step it happens, and passes the same program on an undamaged engine.
@Suite struct InvariantCheckTests {
    private func run(_ text: String, damageAfter step: Int, _ damage: @escaping (Kernel) throws -> Void) throws -> (clean: Verdict, damaged: Verdict) {
        let program = try ProgramText.parse(text)
        let clean = Execution().run(program, oracle: PermissiveOracle()).verdict
        let kernel = try Execution.boot(program)
        let damaged = Execution().run(program, oracle: SabotagingOracle(kernel: kernel, afterStep: step, damage: damage), kernel: kernel).verdict
        return (clean, damaged)
    }

    private func violation(_ verdict: Verdict) -> (step: Int, InvariantViolation)? {
        guard case .invariant(let step, _, let violation) = verdict else { return nil }
        return (step, violation)
    }

    static let poolMdl = """
        # lockstep 1
        machine x86
        b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
        p1 = ExAllocatePoolWithTag(NonPagedPool, size=0x24)
        MmInitializeMdl(p1, va=b0+0x10, length=0x1000)
        x2 = MmGetMdlByteCount(p1)
        ExFreePool(p1)
        """

    @Test func aPoolBlockNothingHoldsIsALeak() throws {
        // What IoAllocateMdl's failure path does when it forgets its block.
        let (clean, damaged) = try run(Self.poolMdl, damageAfter: 2) { _ = $0.allocatePool(.nonPagedPool, bytes: 0x40) }
        #expect(clean == .pass)
        let (step, found) = try #require(violation(damaged), "\(damaged)")
        #expect(step == 2 && found.invariant == .resourceAccounting)
        #expect(found.detail.contains("held by nothing"), "\(found.detail)")
    }

    @Test func aStaleNextLinkIsCaught() throws {
        // What MmInitializeMdl leaves when it does not clear Next over reused memory.
        let (clean, damaged) = try run(Self.poolMdl, damageAfter: 3) { kernel in
            let mdl = try #require(kernel.inspect.knownMdls.first?.location.address)
            try kernel.env.writeMemory(mdl, [0x78, 0x56, 0x34, 0x12])
        }
        #expect(clean == .pass)
        let (step, found) = try #require(violation(damaged), "\(damaged)")
        #expect(step == 3 && found.invariant == .mdlConsistency)
        #expect(found.detail.contains("Next 0x12345678"), "\(found.detail)")
    }

    @Test func anIoMappingWithTheWrongCachingIsCaught() throws {
        let program = """
            # lockstep 1
            machine x86
            v0 = MmMapIoSpace(pa=0xF0000010, length=0x1800, MmNonCached)
            d1 = ReadMemory(v0, length=0x4)
            MmUnmapIoSpace(v0, length=0x1800)
            """
        // What MmMapIoSpace does when it ignores CacheType: its second page mapped write-back.
        let (clean, damaged) = try run(program, damageAfter: 1) { kernel in
            let page = kernel.constants.pageNumber(0xC100_0000) + 1
            try #require(kernel.systemPageTable[page] != nil)
            kernel.systemPageTable[page]!.cache = .writeBack
        }
        #expect(clean == .pass)
        let (step, found) = try #require(violation(damaged), "\(damaged)")
        #expect(step == 1 && found.invariant == .mdlConsistency)
        #expect(found.detail.contains("writeBack") && found.detail.contains("uncached"), "\(found.detail)")
    }

    /// A program that writes past its pool block corrupts memory itself: the invariants stop judging
    /// rather than blame the engine (the MDL's PFN array it overwrites would fail mdl-consistency).
    @Test func aWritePastAPoolBlockStopsTheJudging() throws {
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x64
            m0 = MmAllocatePagesForMdl(low=0x0, high=0xFFFFFF, skip=0x0, total=0x1001)
            p1 = ExAllocatePoolWithTag(NonPagedPool, size=0x1)
            WriteMemory(p1-0x1, data=4149C19F97335121)
            x2 = MmGetMdlByteCount(m0)
            """)
        let report = Execution().run(program)
        #expect(report.verdict == .pass)
        guard case .unpredictable(let reason) = report.steps[3].expectation else { Issue.record("\(report.steps[3].expectation)"); return }
        #expect(reason.contains("pool corruption"))
    }
}
