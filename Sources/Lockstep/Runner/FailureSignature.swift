/// What a failure is, with no addresses: the same bug found twice gets the same signature. Campaigns
/// deduplicate by it, the shrinker keeps it, corpus entries record it and replay compares it.
///
/// Its text form (`description`) is the one written to corpus headers and printed in summaries, e.g.
/// `divergence:MmMapLockedPages:null/value`, `invariant:no-dangling-frames:IoFreeMdl`,
/// `misuse:state:MmProbeAndLockPages:ByteCount`, `driver:copy:leaked-mdl@DriverUnload`. `init(parsing:)`
/// is the only code that reads one back.
public struct FailureSignature: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The failure itself.
    public enum What: Hashable, Sendable {
        /// No failure.
        case pass
        /// The engine and the oracle disagree about a call's outcome: the outcome classes of each.
        case divergence(routine: String, engine: String, expected: String)
        /// The program bug-checked where the oracle predicted something else.
        case bugcheck(routine: String, engine: String, expected: String)
        /// An invariant failed after a call (`routine` nil: before any call).
        case invariant(String, routine: String?)
        /// Observable state differs after a call.
        case state(routine: String, field: String)
        /// The process running the program died.
        case trap
        /// A driver under test broke a rule (driver-under-test mode).
        case driver(name: String, rule: String, phase: String)
        /// The program could not be set up.
        case unrunnable
    }

    /// How a campaign judged a failure beside what it is.
    public enum Qualifier: String, Sendable, CaseIterable {
        /// It did not happen again when the program was re-run.
        case flaky
        /// Corruption the program causes on a free or checked build that Driver Verifier stops: a
        /// driver bug, not an engine inconsistency.
        case misuse
    }

    /// The failure itself.
    public var what: What
    /// How the campaign judged it (`flaky`, `misuse`); nil for a plain finding.
    public var qualifier: Qualifier?

    /// A signature for `what`, with an optional qualifier.
    public init(_ what: What, qualifier: Qualifier? = nil) {
        self.what = what
        self.qualifier = qualifier
    }

    /// The signature of a passing run.
    public static let pass = FailureSignature(.pass)
    /// The signature of a run whose process died.
    public static let trap = FailureSignature(.trap)
    /// The signature of a program that could not be set up.
    public static let unrunnable = FailureSignature(.unrunnable)

    /// True for `pass`.
    public var isPass: Bool { what == .pass }
    /// True when qualified `misuse`.
    public var isMisuse: Bool { qualifier == .misuse }
    /// True when qualified `flaky`.
    public var isFlaky: Bool { qualifier == .flaky }

    /// The same failure with `qualifier` (nil: none).
    public func qualified(_ qualifier: Qualifier?) -> FailureSignature { FailureSignature(what, qualifier: qualifier) }
    /// The failure without its qualifier: what a replay of the program shows.
    public var unqualified: FailureSignature { qualified(nil) }

    /// The driver a driver finding names.
    public var driver: String? {
        if case .driver(let name, _, _) = what { name } else { nil }
    }

    /// The text form: `[qualifier:]kind:…`, e.g. `divergence:MmMapLockedPages:null/value`.
    public var description: String {
        let body: String
        switch what {
        case .pass: body = "pass"
        case .divergence(let routine, let engine, let expected): body = "divergence:\(routine):\(engine)/\(expected)"
        case .bugcheck(let routine, let engine, let expected): body = "bugcheck:\(routine):\(engine)/\(expected)"
        case .invariant(let invariant, let routine): body = "invariant:\(invariant):\(routine ?? "start")"
        case .state(let routine, let field): body = "state:\(routine):\(field)"
        case .trap: body = "trap"
        case .driver(let name, let rule, let phase): body = "driver:\(name):\(rule)@\(phase)"
        case .unrunnable: body = "unrunnable"
        }
        return qualifier.map { "\($0.rawValue):" + body } ?? body
    }

    /// Orders by text form (summaries and findings are listed in this order).
    public static func < (a: FailureSignature, b: FailureSignature) -> Bool { a.description < b.description }

    /// Why a text is no signature.
    public struct ParseError: Error, CustomStringConvertible {
        /// Which text was refused.
        public let description: String
    }

    /// Reads a signature's text form back (corpus headers, old and new, and `--json`).
    public init(parsing text: String) throws(ParseError) {
        var rest = Substring(text)
        var qualifier: Qualifier?
        // At most one qualifier: `flaky:misuse:…` is no signature a campaign writes.
        if let candidate = Qualifier.allCases.first(where: { rest.hasPrefix($0.rawValue + ":") }) {
            qualifier = candidate
            rest = rest.dropFirst(candidate.rawValue.count + 1)
        }
        let parts = rest.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
        func fail() -> ParseError { ParseError(description: "\"\(text)\" is no failure signature") }
        func classes(_ text: String) throws(ParseError) -> (String, String) {
            guard let slash = text.firstIndex(of: "/") else { throw fail() }
            return (String(text[..<slash]), String(text[text.index(after: slash)...]))
        }
        let what: What
        switch (parts[0], parts.count) {
        case ("pass", 1): what = .pass
        case ("trap", 1): what = .trap
        case ("unrunnable", 1): what = .unrunnable
        case ("divergence", 3):
            let (engine, expected) = try classes(parts[2])
            what = .divergence(routine: parts[1], engine: engine, expected: expected)
        case ("bugcheck", 3):
            let (engine, expected) = try classes(parts[2])
            what = .bugcheck(routine: parts[1], engine: engine, expected: expected)
        case ("invariant", 3): what = .invariant(parts[1], routine: parts[2] == "start" ? nil : parts[2])
        case ("state", 3): what = .state(routine: parts[1], field: parts[2])
        case ("driver", 3):
            guard let at = parts[2].lastIndex(of: "@") else { throw fail() }
            what = .driver(name: parts[1], rule: String(parts[2][..<at]), phase: String(parts[2][parts[2].index(after: at)...]))
        default: throw fail()
        }
        guard parts.allSatisfy({ !$0.isEmpty }) else { throw fail() }
        self.init(what, qualifier: qualifier)
    }
}

extension FailureSignature: Codable, CodingKeyRepresentable {
    /// Encoded as its text form, so session results and `--json` read like summaries.
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try FailureSignature(parsing: text)
    }

    /// Writes the text form as a single string.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// The text form as a dictionary key (signature-keyed maps encode as JSON objects).
    public var codingKey: any CodingKey { TextKey(stringValue: description) }

    /// Reads a dictionary key's text form; nil if it is no signature.
    public init?<T: CodingKey>(codingKey: T) {
        guard let parsed = try? FailureSignature(parsing: codingKey.stringValue) else { return nil }
        self = parsed
    }

    private struct TextKey: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
