import Foundation
import LockstepPrograms

/// The `#` lines a corpus entry carries after `# lockstep 1`: the verdict it recorded, how the campaign
/// judged it, the driver it runs against, and notes for people. One canonical text form (`lines`),
/// written by `Corpus.write`; `init(decoding:)` reads it and the older forms.
///
///     # verdict-signature: state:MmProbeAndLockPages:ByteCount
///     # qualifier: misuse
///     # driver: copy
///     # found by: lockstep fuzz --seed 7 (run 12, program seed 0x…)
public struct CorpusHeader: Sendable, Equatable {
    /// What a replay of the program must show: `pass`, or a failure without its qualifier.
    public var verdict: FailureSignature
    /// How the campaign that found it judged it (`misuse`, `flaky`); nil for an engine finding or a pass.
    public var qualifier: FailureSignature.Qualifier?
    /// The driver a driver-under-test entry runs against; nil for an engine entry.
    public var driver: String?
    /// Lines for people (without `# `): how it was found, the verdict before shrinking, …
    public var notes: [String]

    /// A header for `verdict` (stored without its qualifier); `qualifier` and `driver` default to the ones
    /// `verdict` carries. Default: a `pass` entry with no notes.
    public init(verdict: FailureSignature = .pass, qualifier: FailureSignature.Qualifier? = nil, driver: String? = nil, notes: [String] = []) {
        self.verdict = verdict.unqualified
        self.qualifier = qualifier ?? verdict.qualifier
        self.driver = driver ?? verdict.driver
        self.notes = notes
    }

    /// The signature the finding was reported under: the verdict with the campaign's qualifier.
    public var finding: FailureSignature { verdict.qualified(qualifier) }

    /// The canonical text form, each line without the leading `# `.
    public var lines: [String] {
        ["\(Key.verdict.rawValue): \(verdict)"]
            + (qualifier.map { ["\(Key.qualifier.rawValue): \($0.rawValue)"] } ?? [])
            + (driver.map { ["\(Key.driver.rawValue): \($0)"] } ?? [])
            + notes
    }

    /// An entry's text: the program's canonical text with these lines (`# ` first) after its
    /// `# lockstep 1` line.
    public func annotating(_ program: Program) -> String {
        let lines = ProgramText.encode(program).split(separator: "\n", omittingEmptySubsequences: false)
        return ([String(lines[0])] + self.lines.map { "# " + $0 } + lines.dropFirst().map(String.init)).joined(separator: "\n")
    }

    /// The keys of the header's facts (the notes' keys are free).
    enum Key: String, CaseIterable {
        case verdict = "verdict-signature"
        case qualifier
        case driver
        /// Older entries: the campaign's signature with its qualifier (`misuse:…`), beside the verdict.
        case oldFindingSignature = "signature"
    }

    /// Why a header cannot be read.
    public struct DecodingError: Error, CustomStringConvertible {
        /// What is wrong with the header text.
        public let description: String
    }

    /// Reads the `#` lines of an entry's text: the current form and the older ones (a `flaky:` verdict,
    /// the `signature:` line that carried the qualifier, a driver named only in its signature). An entry
    /// with no verdict line (a plain program file) recorded `pass`.
    public init(decoding text: String) throws(DecodingError) {
        var verdict = FailureSignature.pass
        var qualifier: FailureSignature.Qualifier?
        var oldFinding: FailureSignature?
        var driver: String?
        var notes: [String] = []
        for line in text.split(separator: "\n") where line.hasPrefix("# ") && line != "# lockstep 1" {
            let content = String(line.dropFirst(2))
            guard let colon = content.firstIndex(of: ":"), let key = Key(rawValue: String(content[..<colon])) else {
                notes.append(content)
                continue
            }
            let value = content[content.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            do throws(FailureSignature.ParseError) {
                switch key {
                case .verdict: verdict = try FailureSignature(parsing: value)
                case .oldFindingSignature: oldFinding = try FailureSignature(parsing: value)
                case .driver: driver = value
                case .qualifier:
                    guard let known = FailureSignature.Qualifier(rawValue: value) else {
                        throw FailureSignature.ParseError(description: "\"\(value)\" is no qualifier")
                    }
                    qualifier = known
                }
            } catch {
                throw DecodingError(description: "header line \"\(line)\": \(error)")
            }
        }
        self.init(verdict: verdict, qualifier: qualifier ?? verdict.qualifier ?? oldFinding?.qualifier, driver: driver, notes: notes)
    }
}
