import Foundation
import LockstepPrograms
import Testing
@testable import Lockstep

/// `lockstep fuzz --corpus DIR`: a campaign starts from a directory's programs and adds to it.
@Suite struct CampaignCorpusTests {
    static func temporaryDirectory() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-corpus-\(UInt32.random(in: 0...UInt32.max))").path
    }

    @Test func aCampaignWritesThePassingProgramsThatReachedNewFeaturesAndTheNextStartsFromThem() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var first = CampaignOptions()
        first.runs = 150
        first.corpusDirectory = directory
        let firstRun = Campaign(first).run { _, _ in }
        let written = Corpus.files(directory)
        // Every program that reached something new and passed is an entry recorded as `pass`.
        #expect(!written.isEmpty && written.count <= firstRun.stats.corpus)
        let entries = try written.map { try Corpus.read($0) }
        #expect(entries.allSatisfy { $0.recordedSignature == "pass" })

        // Seeded with them, another seed's campaign starts with at least their features, and keeps them
        // all in its corpus.
        var second = CampaignOptions()
        second.seed = 2
        second.runs = 1
        second.guided = true
        second.seedPrograms = entries.map(\.program)
        let secondRun = Campaign(second).run { _, _ in }
        #expect(secondRun.stats.features >= firstRun.stats.features * 9 / 10)
        #expect(secondRun.stats.corpus >= entries.count)
        var unseeded = second
        unseeded.seedPrograms = []
        #expect(Campaign(unseeded).run { _, _ in }.stats.features < secondRun.stats.features)
    }
}
