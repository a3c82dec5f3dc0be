import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Lockstep
import Testing

/// The JUnit report CI systems read: well-formed whatever a program text holds, with the counts CI
/// uses to colour a run.
@Suite struct JUnitReportTests {
    /// Counts the elements a CI reader looks at, and fails on any XML error.
    final class Reader: NSObject, XMLParserDelegate {
        var testcases = 0, failures = 0, errors = 0
        var suiteAttributes: [String: String] = [:]
        var failureMessages: [String] = []
        var failureText = ""
        private var inFailure = false

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String]) {
            switch name {
            case "testsuite": suiteAttributes = attributes
            case "testcase": testcases += 1
            case "failure": failures += 1; failureMessages.append(attributes["message"] ?? ""); inFailure = true
            case "error": errors += 1
            default: break
            }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { if inFailure { failureText += string } }
        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            if name == "failure" { inFailure = false }
        }
    }

    func read(_ report: JUnitReport) throws -> Reader {
        let parser = XMLParser(data: Data(report.xml.utf8))
        let reader = Reader()
        parser.delegate = reader
        #expect(parser.parse(), "not well-formed: \(parser.parserError.map { "\($0)" } ?? "")\n\(report.xml)")
        return reader
    }

    @Test func countsAndMarkupSurviveTheRoundTrip() throws {
        let program = "# lockstep 1\nmachine x86\nb0 = AllocateUserBuffer(size=0x10, protect=ReadWrite)\n# <&> \"quoted\"\n"
        let report = JUnitReport(suite: "lockstep fuzz --seed 1", cases: [
            .init(name: "invariant:mdl-consistency:IoAllocateMdl", className: "lockstep.fuzz", status: .failed(message: "a \"signature\" <with> & markup", details: program)),
            .init(name: "entry.gz", className: "lockstep.replay", status: .passed),
            .init(name: "bad.gz", className: "lockstep.replay", status: .errored(message: "bad.gz: not a gzip file\u{1}")),
        ], properties: [("seed", "1")])
        let reader = try read(report)
        #expect(reader.testcases == 3)
        #expect(reader.failures == 1)
        #expect(reader.errors == 1)
        #expect(reader.suiteAttributes["tests"] == "3")
        #expect(reader.suiteAttributes["failures"] == "1")
        #expect(reader.suiteAttributes["errors"] == "1")
        #expect(reader.failureMessages == ["a \"signature\" <with> & markup"])
        #expect(reader.failureText == program, "the program text reaches CI unchanged")
    }

    @Test func anEmptyRunIsAValidReportWithNoFailures() throws {
        let reader = try read(JUnitReport(suite: "lockstep replay", cases: []))
        #expect(reader.testcases == 0 && reader.failures == 0 && reader.errors == 0)
    }
}
