import Foundation

/// A JUnit XML report (the format Jenkins, GitLab, GitHub test reporters and most CI systems read):
/// `lockstep fuzz --junit FILE` writes one failed case per finding with its minimized program, and
/// `lockstep replay --junit FILE` one case per corpus entry.
package struct JUnitReport: Sendable, Equatable {
    /// One test case: passed, failed (the verdict broke) or errored (the input could not be used).
    package struct Case: Sendable, Equatable, Codable {
        package enum Status: Sendable, Equatable, Codable {
            case passed
            /// `message` is one line (the signature); `details` the program text and how to reproduce it.
            case failed(message: String, details: String)
            case errored(message: String)
            /// Reported, not a failure: e.g. driver misuse a free build lets through (Verifier stops it).
            case skipped(message: String)
        }

        package var name: String
        package var className: String
        package var seconds: Double
        package var status: Status

        package init(name: String, className: String, seconds: Double = 0, status: Status) {
            self.name = name
            self.className = className
            self.seconds = seconds
            self.status = status
        }
    }

    /// The suite's name, e.g. `lockstep fuzz --seed 1`.
    package var suite: String
    package var cases: [Case]
    /// Wall time of the whole run (recorded, never used to decide anything).
    package var seconds: Double
    /// Free-form properties CI shows beside the suite (seed, machine, programs run).
    package var properties: [(String, String)]

    package init(suite: String, cases: [Case], seconds: Double = 0, properties: [(String, String)] = []) {
        self.suite = suite
        self.cases = cases
        self.seconds = seconds
        self.properties = properties
    }

    package static func == (a: JUnitReport, b: JUnitReport) -> Bool {
        a.suite == b.suite && a.cases == b.cases && a.seconds == b.seconds
            && a.properties.map { [$0.0, $0.1] } == b.properties.map { [$0.0, $0.1] }
    }

    /// The XML document.
    package var xml: String {
        let failures = cases.filter { if case .failed = $0.status { true } else { false } }.count
        let errors = cases.filter { if case .errored = $0.status { true } else { false } }.count
        let skipped = cases.filter { if case .skipped = $0.status { true } else { false } }.count
        var lines = ["<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
                     "<testsuites name=\(Self.attribute(suite)) tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"\(errors)\" time=\"\(Self.time(seconds))\">",
                     "  <testsuite name=\(Self.attribute(suite)) tests=\"\(cases.count)\" failures=\"\(failures)\" errors=\"\(errors)\" skipped=\"\(skipped)\" time=\"\(Self.time(seconds))\">"]
        if !properties.isEmpty {
            lines.append("    <properties>")
            for (name, value) in properties { lines.append("      <property name=\(Self.attribute(name)) value=\(Self.attribute(value))/>") }
            lines.append("    </properties>")
        }
        for testCase in cases {
            let open = "    <testcase name=\(Self.attribute(testCase.name)) classname=\(Self.attribute(testCase.className)) time=\"\(Self.time(testCase.seconds))\""
            switch testCase.status {
            case .passed:
                lines.append(open + "/>")
            case .failed(let message, let details):
                lines.append(open + ">")
                lines.append("      <failure message=\(Self.attribute(message)) type=\"lockstep\">\(Self.text(details))</failure>")
                lines.append("    </testcase>")
            case .errored(let message):
                lines.append(open + ">")
                lines.append("      <error message=\(Self.attribute(message)) type=\"input\"/>")
                lines.append("    </testcase>")
            case .skipped(let message):
                lines.append(open + ">")
                lines.append("      <skipped message=\(Self.attribute(message))/>")
                lines.append("    </testcase>")
            }
        }
        lines += ["  </testsuite>", "</testsuites>", ""]
        return lines.joined(separator: "\n")
    }

    /// Writes the report atomically (a CI step that reads it never sees half a file).
    package func write(to path: String) throws {
        try Data(xml.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    private static func time(_ seconds: Double) -> String { String(format: "%.3f", seconds) }

    /// A quoted attribute value: markup characters escaped, and newlines kept as character references.
    static func attribute(_ value: String) -> String {
        "\"" + escape(value).replacingOccurrences(of: "\n", with: "&#10;").replacingOccurrences(of: "\"", with: "&quot;") + "\""
    }

    /// Element text: markup characters escaped; characters XML 1.0 forbids (control bytes) dropped.
    static func text(_ value: String) -> String { escape(value) }

    private static func escape(_ value: String) -> String {
        var out = ""
        out.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\n", "\t", "\r": out.unicodeScalars.append(scalar)
            default:
                if scalar.value < 0x20 || scalar.value == 0xFFFE || scalar.value == 0xFFFF { continue }
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
