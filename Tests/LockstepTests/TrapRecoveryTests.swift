@_spi(Mutations) import MemoryManager
import Foundation
@testable import Lockstep
import LockstepPrograms
import Testing

@Suite struct TrapRecoveryTests {
    /// A program left in flight by a campaign that died is saved as a `trap` finding when the next starts.
    @Test func aProgramLeftInFlightBecomesATrapFinding() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-trap-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let program = "# lockstep 1\nmachine x86\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\n"
        try Data(program.utf8).write(to: URL(fileURLWithPath: directory + "/.in-flight-0.txt"))
        var options = CampaignOptions()
        options.findingsDirectory = directory
        options.runs = 3
        let campaign = Campaign(options)
        let traps = campaign.recoverTraps()
        #expect(traps.count == 1)
        let saved = try ProgramFiles.load(traps[0])
        #expect(saved == (try ProgramText.parse(program)))
        #expect(try Corpus.read(traps[0]).recordedSignature == "trap")
        // A campaign that ends normally leaves nothing in flight.
        _ = campaign.run { _, _ in }
        #expect(campaign.recoverTraps().isEmpty)
    }
}
