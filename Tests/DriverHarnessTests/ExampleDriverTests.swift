import DriverHarness
import ExampleDrivers
import Foundation
import Lockstep
import LockstepPrograms
import Testing

/// The example drivers under bounded, fixed-seed campaigns: every buggy one is found with the rule its
/// bug breaks and the bug check Windows would raise; the correct one is not flagged by a longer run.
@Suite struct ExampleDriverTests {
    static let buggy = ExampleDrivers.registry.names.filter { $0 != "copy" }

    private func campaign(_ name: String, runs: Int, stopAtFirstFinding: Bool, shrinkRuns: Int = 0) -> (stats: DriverCampaignStats, findings: [DriverCampaignFinding]) {
        var options = DriverCampaignOptions()
        options.seed = 1
        options.runs = runs
        options.stopAtFirstFinding = stopAtFirstFinding
        options.shrinkRuns = shrinkRuns
        return DriverCampaign(driver: ExampleDrivers.registry.entry(named: name)!, options: options).run()
    }

    @Test func atLeastFiveBuggyExamplesEachWithItsRule() {
        #expect(Self.buggy.count >= 5)
        for name in Self.buggy { #expect(ExampleDrivers.expectedRules[name] != nil, "\(name) has no expected rule") }
    }

    @Test(arguments: buggy)
    func buggyDriverIsFoundWithItsRule(_ name: String) throws {
        let (_, findings) = campaign(name, runs: 40, stopAtFirstFinding: true)
        let finding = try #require(findings.first, "\(name): no finding in 40 programs").finding
        let expected = try #require(ExampleDrivers.expectedRules[name])
        #expect(finding.rule == expected, "\(name): \(finding)")
        #expect(finding.bugCheck?.code == expected.windowsCode, "\(name): \(finding)")
    }

    @Test func bugChecksNameTheWindowsParameters() throws {
        let leak = try #require(campaign("leak-mdl-on-partner-failure", runs: 40, stopAtFirstFinding: true).findings.first?.finding.bugCheck)
        #expect(leak.parameterList[0] == 0x62 && leak.parameterList[3] == 1)   // Pool Tracking: one allocation not freed
        let free = try #require(campaign("free-mdl-before-unmap", runs: 40, stopAtFirstFinding: true).findings.first?.finding.bugCheck)
        #expect(free.parameterList[0] == 0xB8)                                  // IoFreeMdl of a mapped MDL
        let unlock = try #require(campaign("double-unlock-direct", runs: 40, stopAtFirstFinding: true).findings.first?.finding.bugCheck)
        #expect(unlock.parameterList[0] == 0x7C)                                // MmUnlockPages of pages not locked
    }

    @Test func correctDriverIsNotFlaggedByALongerRun() {
        let (stats, findings) = campaign("copy", runs: 300, stopAtFirstFinding: false)
        #expect(findings.isEmpty, "\(findings.map(\.finding.description))")
        #expect(stats.runs > stats.programs)          // systematic variants ran too
        #expect(stats.requests > 1000)
    }

    @Test func campaignIsReproducibleBySeed() {
        let first = campaign("unchecked-null-mapping", runs: 30, stopAtFirstFinding: false).stats
        let second = campaign("unchecked-null-mapping", runs: 30, stopAtFirstFinding: false).stats
        #expect(first.runs == second.runs && first.requests == second.requests && first.signatures == second.signatures)
    }

    /// A finding is shrunk to a minimal request sequence and fault plan, keeps its signature, and is
    /// saved in the same gzip corpus format as engine findings, with the driver named in its header.
    @Test func findingsAreShrunkAndSavedAsCorpusEntries() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("driver-findings-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = DriverCampaignOptions()
        options.runs = 40
        options.stopAtFirstFinding = true
        options.shrinkRuns = 200
        options.findingsDirectory = directory
        let entry = ExampleDrivers.registry.entry(named: "leak-mdl-on-partner-failure")!
        let item = try #require(DriverCampaign(driver: entry, options: options).run().findings.first)
        let shrunk = try #require(item.shrunk)
        #expect(shrunk.oneMinimal)
        #expect(shrunk.program.calls.count <= 3)
        #expect(shrunk.program.faults.map(\.kind) == ["pool.nonpaged"])   // the partner allocation, failed
        #expect(try DriverRunner(entry).run(shrunk.program).signature == item.signature)
        let path = try #require(item.path)
        let saved = try Corpus.read(path)
        #expect(saved.program == shrunk.program && saved.recordedSignature.description == "driver:leak-mdl-on-partner-failure:leaked-mdl@DriverUnload")
        #expect(saved.header.driver == "leak-mdl-on-partner-failure")
        #expect(try ProgramFiles.readText(path).contains("\n# driver: leak-mdl-on-partner-failure\n"))
        #expect(try ProgramFiles.readText(path).contains("# Windows: DRIVER_VERIFIER_DETECTED_VIOLATION (0xC4; 0x62, 0x0, 0x0, 0x1)"))
        // The unshrunk entry written when the finding was confirmed is gone: one signature, one entry.
        #expect(Corpus.files(directory).count == 1)
    }

    @Test func aStoppedCampaignHasItsFindingsOnDiskUnshrunk() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("driver-stop-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var options = DriverCampaignOptions()
        options.runs = 40
        options.shrinkRuns = 200
        options.findingsDirectory = directory
        // Stops as soon as something is on disk, as a stop signal would mid-campaign.
        options.shouldStop = { [directory] in
            (try? FileManager.default.contentsOfDirectory(atPath: directory))?.contains { $0.hasSuffix(".gz") } ?? false
        }
        let entry = ExampleDrivers.registry.entry(named: "leak-mdl-on-partner-failure")!
        let (stats, findings) = DriverCampaign(driver: entry, options: options).run()
        let item = try #require(findings.first, "\(stats.programs) programs, \(stats.failingRuns) failing runs, \(Corpus.files(directory))")
        #expect(stats.programs < 40)
        #expect(item.shrunk == nil)   // no shrinking after a stop
        let saved = try Corpus.read(try #require(item.path))
        #expect(saved.program == item.program && saved.recordedSignature == item.signature)
    }
}
