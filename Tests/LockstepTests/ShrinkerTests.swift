@_spi(Mutations) import MemoryManager
import Foundation
@testable import Lockstep
import LockstepPrograms
import Testing

@Suite struct ShrinkerTests {
    /// A campaign against a seeded bug saves its finding shrunk: same signature, 1-minimal, and small.
    @Test func findingsAreShrunkToOneMinimalRepros() throws {
        var options = CampaignOptions()
        options.runs = 200
        options.prepareKernel = { $0.mutations = .byteOffsetOffByOne }
        let result = Campaign(options).run { _, _ in }
        let finding = try #require(result.findings.first { $0.signature.description == "state:IoAllocateMdl:mdl.ByteOffset" || $0.signature.description == "state:MmInitializeMdl:mdl.ByteOffset" })
        let shrunk = try #require(finding.shrunk)
        #expect(shrunk.signature == finding.signature)
        #expect(shrunk.oneMinimal)
        #expect(shrunk.program.calls.count < finding.program.calls.count)
        // The state comparison sees a wrong ByteOffset in the MDL's header: a buffer and an MDL over it
        // (a pool block and MmInitializeMdl, at most), no read: three calls.
        #expect(shrunk.program.calls.count <= 3, "\(ProgramText.encode(shrunk.program))")
        #expect(try ProgramText.parse(ProgramText.encode(shrunk.program)) == shrunk.program)
    }

    /// Shrinking keeps the failure's signature and removes the fault lines it does not need.
    @Test func shrinkingDropsUnneededFaultsAndKeepsNeededOnes() throws {
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x86
            fault ptes nth=5
            fault pool.nonpaged nth=1
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            x0 = MmIsAddressValid(b0)
            m1 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
            x2 = MmGetMdlByteCount(m1)
            """)
        // The NULL MDL is dereferenced (0x1E), which the model predicts: that passes. Use the runner's
        // verdict on a mutated engine instead: ByteCount is right, so the failing call is the offset read.
        let mutated = Shrinker(maxRuns: 300, execution: Execution(prepareKernel: { $0.mutations = .byteOffsetOffByOne }))
        #expect(mutated.shrink(program) == nil)   // this program never reads the offset: it passes
        let withRead = Program(machine: program.machine, faults: program.faults.filter { $0.kind == "ptes" },
                               calls: Array(program.calls.prefix(3)) + [Call("x3", .mmGetMdlByteOffset, [.expression(.reference("m1", offset: 0))])])
        let result = try #require(mutated.shrink(withRead))
        #expect(result.program.faults.isEmpty)                 // the PTE fault was never needed
        // The buffer the MDL describes and the MDL, whose header the state comparison reads: no call
        // needs to read the offset back.
        #expect(result.program.calls.map(\.routine) == [.allocateUserBuffer, .ioAllocateMdl])
        #expect(result.oneMinimal)
    }

    static let offsetRead = """
        # lockstep 1
        machine x64 ram=32M mode=checked
        b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
        x1 = MmIsAddressValid(b0)
        m2 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
        x3 = MmGetMdlByteCount(m2)
        x4 = MmGetMdlByteOffset(m2)
        IoFreeMdl(m2)
        """

    /// The machine shrinks too: x86 instead of x64, each setting back to its default, when the failure
    /// does not need them (a ByteOffset slip shows on any machine).
    @Test func shrinkingSimplifiesTheMachine() throws {
        let shrinker = Shrinker(maxRuns: 500, execution: Execution(prepareKernel: { $0.mutations = .byteOffsetOffByOne }))
        let result = try #require(shrinker.shrink(try ProgramText.parse(Self.offsetRead)))
        #expect(result.program.machine.description == "machine x86")
        #expect(result.program.calls.count == 2)
        #expect(result.oneMinimal && !result.budgetExhausted)
    }

    /// A run budget stops the shrink early with the best program so far, reported as improvements went
    /// by (each smaller than the last and still failing the same way), and not called 1-minimal.
    @Test func aBudgetStopsWithTheBestSoFarAndEveryImprovementIsReported() throws {
        var shrinker = Shrinker(maxRuns: 4, execution: Execution(prepareKernel: { $0.mutations = .byteOffsetOffByOne }))
        let program = try ProgramText.parse(Self.offsetRead)
        final class Seen: @unchecked Sendable { var programs: [Program] = [] }
        let seen = Seen()
        shrinker.onImprovement = { best, signature, _ in
            #expect(signature.description == "state:IoAllocateMdl:mdl.ByteOffset")
            seen.programs.append(best)
        }
        let result = try #require(shrinker.shrink(program))
        #expect(result.budgetExhausted && !result.oneMinimal)
        #expect(!seen.programs.isEmpty && seen.programs.last == result.program)
        #expect(result.program.calls.count < program.calls.count)
        // Resuming from the saved best finishes the job.
        let resumed = try #require(Shrinker(maxRuns: 500, execution: Execution(prepareKernel: { $0.mutations = .byteOffsetOffByOne })).shrink(result.program))
        #expect(resumed.oneMinimal && resumed.signature == result.signature)
    }
}
