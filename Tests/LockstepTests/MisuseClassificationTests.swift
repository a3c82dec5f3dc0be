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
        let report = Execution().run(program)
        #expect(report.verdict.signature.description == "invariant:resource-accounting:MmUnmapLockedPages")
        let stop = try #require(Execution().misuseStop(program, failingAt: report.verdict))
        #expect(stop.contains("step 3 (MmUnmapLockedPages) with bug check 0xC4/0xB6"))
    }

    @Test func aVerifierBuildFailureIsNeverMisuse() throws {
        var program = try ProgramText.parse(Self.program)
        program.machine.settings = []
        let report = Execution().run(program)
        #expect(Execution().misuseStop(program, failingAt: report.verdict) == nil)
    }
}


/// Misuse findings stay misuse when shrunk, and are reported without failing the campaign.
@Suite struct MisuseShrinkingTests {
    /// On the free build: RAM mapped through MmMapIoSpace without a lock on it (Verifier stops that with
    /// 0xC4/0x83), then a locked MDL freed and unlocked after (the frame-locks invariant). (Pages freed
    /// while a mapping still shows them, the vehicle before, are now labelled corruption on every build.)
    static let program = """
        # lockstep 1
        machine x86 mode=free
        v0 = MmMapIoSpace(pa=0x0, length=0x1, MmNonCached)
        b0 = AllocateUserBuffer(size=0x1, protect=ReadWrite)
        m1 = IoAllocateMdl(va=b0, length=0x1, secondary=false, quota=false, irp=none)
        MmProbeAndLockPages(m1, KernelMode, IoWriteAccess)
        IoFreeMdl(m1)
        MmUnlockPages(m1)
        """

    @Test func shrinkingAMisuseFindingKeepsItMisuse() throws {
        let program = try ProgramText.parse(Self.program)
        let shrunk = try #require(Shrinker(maxRuns: 300, oracle: LockstepFailureOracle(labelsMisuse: true)).shrink(program))
        #expect(shrunk.signature.description == "misuse:invariant:frame-locks:MmUnlockPages")
        #expect(shrunk.program.machine["mode"] == "free")
        // Still a program Verifier stops.
        let report = Execution().run(shrunk.program)
        #expect(Execution().misuseStop(shrunk.program, failingAt: report.verdict) != nil)
        // The contrast: an unlabelled shrink drops the call Verifier stops first.
        let unlabelled = try #require(Shrinker(maxRuns: 300).shrink(program))
        #expect(!unlabelled.program.calls.contains { $0.routine == .mmMapIoSpace })
    }

    @Test func aMisuseFindingIsASkippedCaseNotAFailure() {
        let report = JUnitReport(suite: "s", cases: [.init(name: "misuse:x", className: "c", status: .skipped(message: "driver misuse"))])
        #expect(report.xml.contains("failures=\"0\" errors=\"0\" skipped=\"1\""))
        #expect(report.xml.contains("<skipped message=\"driver misuse\"/>"))
        var result = SessionResult(stats: CampaignStats(), findings: [.init(signature: try! FailureSignature(parsing: "misuse:invariant:a:B"), count: 3, path: nil)])
        #expect(result.engineFindings.isEmpty)
        result.findings.append(.init(signature: try! FailureSignature(parsing: "divergence:MmSizeOfMdl:value/value"), count: 1, path: nil))
        #expect(result.engineFindings.map(\.signature.description) == ["divergence:MmSizeOfMdl:value/value"])
    }
}

/// Verifier's policy stops (0x6F: probe-locking device memory) refuse what a free build defines; the
/// misuse classifier's Verifier re-run turns them off, so only corruption makes a failure misuse.
@Suite struct VerifierPolicyStopTests {
    static let deviceProbe = """
        # lockstep 1
        machine x86 MODE
        v0 = MmMapIoSpace(pa=0xF0000000, length=0x1000, MmNonCached)
        m1 = IoAllocateMdl(va=v0, length=0x1000, secondary=false, quota=false, irp=none)
        MmProbeAndLockPages(m1, KernelMode, IoReadAccess)
        x2 = MmGetMdlByteCount(m1)
        MmUnlockPages(m1)
        IoFreeMdl(m1)
        MmUnmapIoSpace(v0, length=0x1000)
        """

    private func run(_ mode: String) throws -> RunReport {
        let program = try ProgramText.parse(Self.deviceProbe.replacingOccurrences(of: "MODE", with: mode))
        return Execution().run(program)
    }

    @Test func verifierStopsAProbeOfDeviceMemoryWith0x6F() throws {
        let report = try run("mode=verifier")
        #expect(report.verdict.isPass)
        guard case .bugCheck(0xC4, let parameters) = report.steps.last?.outcome else {
            Issue.record("expected 0xC4, got \(String(describing: report.steps.last?.outcome))"); return
        }
        #expect(parameters.first == 0x6F)
        #expect(report.steps.count == 3)
    }

    @Test func withoutPolicyStopsVerifierLetsTheProbeLockDeviceMemoryAsAFreeBuildDoes() throws {
        let report = try run("mode=verifier policystops=0")
        #expect(report.verdict.isPass)
        #expect(report.steps.count == 7)
        #expect(report.steps.allSatisfy { if case .bugCheck = $0.outcome { false } else { true } })
    }

    @Test func anEngineSlipAfterADeviceProbeOnAFreeBuildIsNotMisuse() throws {
        // MmUnlockPages leaving MDL_IO_SPACE set (mutant 57's slip) shows at the unlock; Verifier with its
        // policy stops off does not stop the program, so the failure is the engine's.
        let program = try ProgramText.parse(Self.deviceProbe.replacingOccurrences(of: "MODE", with: "mode=free"))
        let failing = Verdict.invariant(step: 5, call: program.calls[4], violation: InvariantViolation(invariant: .mdlConsistency, detail: "slip"))
        #expect(Execution().misuseStop(program, failingAt: failing) == nil)
    }
}
