@_spi(Mutations) import MemoryManager
import Foundation
@testable import Lockstep
import LockstepPrograms
import Testing

/// A failure on a free build that Driver Verifier would have stopped earlier is the program's
/// corruption, not an engine inconsistency: campaigns label it `misuse:`.
@Suite struct MisuseClassificationTests {
    static let program = """
        # lockstep 1
        machine x86 mode=free
        b0 = AllocateUserBuffer(size=0x0, protect=ReadWrite)
        m1 = IoAllocateMdl(va=b0, length=0x0, secondary=false, quota=false, irp=none)
        MmUnmapLockedPages(0xC1000000, m1)
        """

    @Test func aFreeBuildCorruptionThatVerifierStopsIsClassifiedAsMisuse() throws {
        let program = try ProgramText.parse(Self.program)
        let report = try LockstepRunner().run(program, oracle: try ReferenceOracle.make(for: program))
        #expect(report.verdict.signature == "invariant:resource-accounting:MmUnmapLockedPages")
        let stop = try #require(Campaign.verifierStop(program, before: report.verdict, runner: LockstepRunner()))
        #expect(stop.contains("step 3 (MmUnmapLockedPages) with bug check 0xC4/0xB6"))
    }

    @Test func aVerifierBuildFailureIsNeverMisuse() throws {
        var program = try ProgramText.parse(Self.program)
        program.machine.settings = []
        let report = try LockstepRunner().run(program, oracle: try ReferenceOracle.make(for: program))
        #expect(Campaign.verifierStop(program, before: report.verdict, runner: LockstepRunner()) == nil)
    }
}

