import Foundation
import Lockstep
import LockstepPrograms
import Testing

/// The hand-written program library in Tests/LockstepTests/Programs: every routine's success and
/// failure cases. Each program parses, round-trips through the canonical text, runs on the engine
/// with every invariant holding after every step, and ends the way its comment says.
@Suite struct ProgramLibraryTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Programs")

    static var files: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".txt") }.sorted()
    }

    private func load(_ name: String) throws -> Program {
        try ProgramFiles.load(Self.directory.appendingPathComponent(name).path)
    }

    @Test func libraryCoversEveryNtRoutine() throws {
        var used = Set<Routine>()
        for file in Self.files { used.formUnion(try load(file).calls.map(\.routine)) }
        let missing = Routine.allCases.filter { $0.isNtRoutine && !used.contains($0) }.map(\.name)
        #expect(missing.isEmpty, "routines no library program calls: \(missing)")
        #expect(Self.files.count >= 15)
    }

    @Test(arguments: files)
    func programRoundTripsAndKeepsTheInvariants(_ file: String) throws {
        let program = try load(file)
        #expect(try ProgramText.parse(ProgramText.encode(program)) == program)
        let report = Execution().run(program, oracle: PermissiveOracle())
        #expect(report.verdict == .pass, "\(file): \(report.verdict)")
        // A run ends at a bug check; otherwise every call runs.
        if case .bugCheck = report.steps.last?.outcome {} else { #expect(report.steps.count == program.calls.count) }
    }

    /// The outcomes the comments promise, on the engine alone.
    @Test func libraryProgramsEndAsDocumented() throws {
        func outcomes(_ file: String) throws -> [Outcome] {
            Execution().run(try load(file), oracle: PermissiveOracle()).steps.map(\.outcome)
        }
        #expect(try outcomes("probe-read-only-for-write.txt")[2] == .raised(status: 0xC000_0005))
        #expect(try outcomes("probe-read-only-for-write.txt")[3] == .returned(.none))
        let userMode = try outcomes("probe-user-mode-kernel-address.txt")
        #expect(userMode[2] == .raised(status: 0xC000_0005) && userMode[4] == .raised(status: 0xC000_0005))
        let trim = try outcomes("page-in-after-trim.txt")
        #expect(trim[2] == .returned(.boolean(true)) && trim[4] == .returned(.boolean(false)))
        #expect(trim[5] == .returned(.number(0)) && trim[6] == .returned(.bytes([0xC0, 0xFF, 0xEE])))
        let verifier = try outcomes("verifier-unlock-unlocked.txt")
        guard case .bugCheck(0xC4, let parameters) = verifier[2] else { Issue.record("\(verifier)"); return }
        #expect(parameters[0] == 0x7C)
        #expect(verifier.count == 3)   // the bug check ends the run
        guard case .bugCheck(0x0A, _) = try outcomes("irql-violations.txt").last! else { Issue.record("irql"); return }
        guard case .bugCheck(0x76, let exit) = try outcomes("process-exit-with-locked-pages.txt").last! else { Issue.record("0x76"); return }
        #expect(exit[0] == 0 && exit[2] == 2)
        let ptes = try outcomes("pte-exhaustion.txt")
        #expect(ptes[3] == .returned(.number(0)))
        guard case .bugCheck(0x3F, _) = ptes[4] else { Issue.record("\(ptes)"); return }
        let canFail = try outcomes("mapping-can-fail.txt")
        #expect(canFail[4] == .returned(.number(0)) && canFail.count == 9, "MDL_MAPPING_CAN_FAIL: NULL, not bug check 0x3F: \(canFail)")
        let user = try outcomes("user-mode-mapping.txt")
        #expect(user[5] == .returned(.bytes([7, 7])))
        #expect(user[6] == .raised(status: 0xC000_0141) && user[7] == .raised(status: 0xC000_0018))
        let io = try outcomes("io-space.txt")
        #expect(io[0] == .returned(.translated(address: 0xF010_0010, space: 0)))
        #expect(io[3] == .returned(.bytes([0xD0, 0x0D])) && io[5] == .returned(.boolean(false)))
        #expect(io[12] == .returned(.bytes([0xA1, 0x1A, 0x05])))
    }
}

/// The program library against the reference model: every program passes, and the model predicts
/// every step (it never had to give up).
@Suite struct ProgramLibraryAgainstModelTests {
    @Test(arguments: ProgramLibraryTests.files)
    func passesInLockstepWithTheModel(_ file: String) throws {
        let program = try ProgramFiles.load(ProgramLibraryTests.directory.appendingPathComponent(file).path)
        let report = Execution().run(program)
        #expect(report.verdict == .pass, "\(file): \(report.verdict)")
        let unpredicted = report.steps.filter { if case .unpredictable = $0.expectation { return true } else { return false } }
        #expect(unpredicted.isEmpty, "\(file): the model did not predict steps \(unpredicted.map(\.index))")
    }
}
