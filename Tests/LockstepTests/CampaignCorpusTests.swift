import Foundation
import LockstepPrograms
import Testing
@_spi(Mutations) import MemoryManager
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
        #expect(entries.allSatisfy { $0.recordedSignature == .pass })

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

    /// Campaigns that write to one findings directory keep one entry per signature, the smallest.
    @Test func findingsAreDedupedBySignatureAcrossCampaigns() throws {
        let directory = Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var signaturesFound = Set<FailureSignature>()
        for seed in [1, 2] as [UInt64] {
            var options = CampaignOptions()
            options.seed = seed
            options.runs = 80
            options.findingsDirectory = directory
            options.prepareKernel = { $0.mutations = .byteOffsetOffByOne }
            signaturesFound.formUnion(Campaign(options).run { _, _ in }.findings.map(\.signature))
        }
        let recorded = try Corpus.files(directory).map { try Corpus.read($0).recordedSignature }
        #expect(recorded.count == Set(recorded).count)
        #expect(Set(recorded) == signaturesFound)
    }
}
