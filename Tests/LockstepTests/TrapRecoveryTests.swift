@_spi(Mutations) import MemoryManager
import Foundation
@testable import Lockstep
import LockstepPrograms
import Testing

/// What a campaign finds in its findings directory when it starts, what it leaves there, and how it
/// reports paths it cannot use (issue 14: false traps, lost findings, litter, bad paths).
@Suite struct TrapRecoveryTests {
    static let trapping = "# lockstep 1\nmachine x86\nb0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)\nx1 = MmSizeOfMdl(va=b0, length=0x0)\n"
    static let innocent = "# lockstep 1\nmachine x86\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\n"

    /// Stands in for a child process: `trap` for programs with a zero length, as the seeded bug does.
    static var confirmer: (String) -> TrapConfirmer {
        { directory in
            TrapConfirmer(oracle: ClosureFailureOracle { program in
                ProgramText.encode(program).contains("length=0x0)") ? (.trap, 0) : nil
            }, findingsDirectory: directory)
        }
    }

    static func temporaryDirectory() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-trap-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    static func write(_ text: String, _ path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// A dead campaign's records are re-run before anything is saved: only the one that traps again
    /// is a `trap`; the one that passes alone (the campaign was killed) is dropped; a live campaign's
    /// records and lock are left alone; the dead campaign's scratch files go.
    @Test func recoveryReRunsEachRecordAndLeavesLiveCampaignsAlone() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let dead: Int32 = 999_999_1, liveID: Int32 = 999_999_2
        try Self.write("# run 7 \(Self.trapping.utf8.count)\n" + Self.trapping, InFlightRecord.path(directory, campaign: dead, worker: 0))
        try Self.write("# run 8 \(Self.innocent.utf8.count)\n" + Self.innocent, InFlightRecord.path(directory, campaign: dead, worker: 1))
        try Self.write("{}", "\(directory)/.session-\(dead).json")
        try Self.write("", "\(directory)/.trap-candidate-\(dead).txt")
        try Self.write("", "\(directory)/.tmp-0123456789abcdef-\(Int32.max - 1)")   // no such process
        let live = try CampaignLock(directory: directory, campaign: liveID)
        defer { live.release() }
        try Self.write("# run 3 \(Self.trapping.utf8.count)\n" + Self.trapping, InFlightRecord.path(directory, campaign: liveID, worker: 0))

        let recovered = TrapRecovery.recoverDeadCampaigns(in: directory, confirmer: Self.confirmer(directory))
        #expect(recovered.map(\.index) == [7, 8])
        let trap = try #require(recovered[0].path)
        #expect(try Corpus.read(trap).recordedSignature == .trap)
        #expect(ProgramText.encode(try Corpus.read(trap).program).contains("length=0x0)"))
        #expect(recovered[1].path == nil && recovered[1].problem == nil)
        let left = Set(try FileManager.default.contentsOfDirectory(atPath: directory))
        #expect(left == [(trap as NSString).lastPathComponent, ".campaign-\(liveID).lock", ".in-flight-\(liveID)-0.txt"])
        // A second campaign's recovery now finds nothing of its own to take.
        #expect(TrapRecovery.recoverDeadCampaigns(in: directory, confirmer: Self.confirmer(directory)).isEmpty)
    }

    /// Records written before campaign ids (`.in-flight-<worker>.txt`) are re-run too, never saved on sight.
    @Test func aLegacyRecordThatPassesIsNoTrap() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Self.write(Self.innocent, directory + "/.in-flight-0.txt")
        let recovered = TrapRecovery.recoverDeadCampaigns(in: directory, confirmer: Self.confirmer(directory))
        #expect(recovered.count == 1 && recovered[0].path == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    /// One campaign per lock: the same id cannot be taken twice while it is held.
    @Test func aCampaignLockIsHeldByOneOwner() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lock = try CampaignLock(directory: directory, campaign: 77)
        #expect(throws: PathError.self) { try CampaignLock(directory: directory, campaign: 77) }
        var dead: [Int32] = []
        CampaignLock.forEachDeadCampaign(in: directory) { dead.append($0) }
        #expect(dead.isEmpty)
        lock.release()
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).isEmpty)
    }

    /// A finding is on disk as soon as it is confirmed: a campaign told to stop once an entry exists
    /// stops long before its budget, its entry unshrunk, and a normal end leaves no scratch file.
    @Test func aFindingIsWrittenWhenItIsConfirmed() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = CampaignOptions()
        options.findingsDirectory = directory
        options.runs = 5_000
        options.seed = 1
        options.generation = GenerationOptions(misusePercent: 0)
        options.prepareKernel = { $0.mutations = .unlockKeepsLockCounts }
        options.shouldStop = { !Corpus.files(directory).isEmpty }
        let (stats, findings) = Campaign(options).run { _, _ in }
        #expect(stats.programs < 5_000)
        let finding = try #require(findings.first)
        let path = try #require(finding.path)
        #expect(try ProgramFiles.readText(path).contains("not shrunk"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory).allSatisfy { !$0.hasPrefix(".") })
    }

    /// Shrinking replaces the entry written at confirmation: one signature, one entry.
    @Test func theShrunkProgramReplacesTheUnshrunkEntry() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = CampaignOptions()
        options.findingsDirectory = directory
        options.runs = 40
        options.generation = GenerationOptions(misusePercent: 0)
        options.prepareKernel = { $0.mutations = .unlockKeepsLockCounts }
        let (_, findings) = Campaign(options).run { _, _ in }
        #expect(!findings.isEmpty)
        let entries = try Corpus.files(directory).map { try Corpus.read($0) }
        #expect(entries.count == findings.count)
        #expect(Set(entries.map(\.path)) == Set(findings.compactMap(\.path)))
        for entry in entries { #expect(try !ProgramFiles.readText(entry.path).contains("not shrunk")) }
    }

    /// Paths a campaign cannot use are one line with the path and the operating system's reason.
    @Test func badPathsNameThePathAndTheReason() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/a-file"
        try Self.write("x", file)
        #expect(throws: PathError.self) { try WritableDirectory.prepare(file, role: "findings directory") }
        do { try WritableDirectory.prepare(file + "/findings", role: "findings directory") } catch {
            #expect(error.description == "\(file): cannot use it as the findings directory (Not a directory)")
        }
        let program = try ProgramText.parse(Self.innocent)
        do { _ = try Corpus.write(program, header: CorpusHeader(), to: file) } catch {
            #expect(error.description.contains(file) && error.description.contains("Not a directory"))
        }
        #expect(try Corpus.listing(file) == [file])
        try WritableDirectory.prepare(directory + "/new/findings", role: "findings directory")
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/new/findings").isEmpty)
    }
}
