// The dump harness of docs/INDEPENDENCE.md §2.0. Not part of any target: to use it, copy it into
// Tests/LockstepTests/ and run `INDEP_DIR=$PWD/docs/independence swift test --filter ZZIndependenceDump`;
// it writes, per program, each step's engine outcome, model prediction and model view to /tmp/indep-dump.
import Foundation
import Lockstep
import LockstepPrograms
import Testing

private final class PassThrough: Oracle {
    let inner: Oracle
    var predictions: [String] = []
    var views: [String] = []
    init(_ inner: Oracle) { self.inner = inner }
    func expect(_ call: Call) -> Prediction {
        let p = inner.expect(call)
        predictions.append("\(p)")
        return .unpredictable(reason: "dump")
    }
    func apply(_ call: Call, observed: Outcome) { apply(call, observed: observed, memory: { _, _ in nil }) }
    func apply(_ call: Call, observed: Outcome, memory: @escaping (UInt64, Int) -> [UInt8]?) {
        inner.apply(call, observed: observed, memory: memory)
        var names = call.references
        if let r = call.result { names.append(r) }
        var seen = Set<String>()
        views.append(names.filter { seen.insert($0).inserted }.compactMap { n in inner.describe(n).map { "\(n): \($0)" } }.joined(separator: " | "))
    }
    func describe(_ name: String) -> String? { inner.describe(name) }
}

@Suite struct ZZIndependenceDump {
    @Test func dump() throws {
        guard let dir = ProcessInfo.processInfo.environment["INDEP_DIR"] else { return }
        let out = ProcessInfo.processInfo.environment["INDEP_OUT"] ?? "/tmp/indep-dump"
        try? FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        for file in try FileManager.default.contentsOfDirectory(atPath: dir).filter({ $0.hasSuffix(".txt") }).sorted() {
            var text = ""
            do {
                let program = try ProgramFiles.load(dir + "/" + file)
                let oracle = PassThrough(try ReferenceOracle.make(for: program))
                let report = Execution().run(program, oracle: oracle)
                for (i, step) in report.steps.enumerated() {
                    text += "\(step.index)\t\(ProgramText.encode(step.call))\t\(step.outcome)\t\(oracle.predictions[i])\t\(oracle.views[i])\n"
                }
                text += "VERDICT\t\(report.verdict)\n"
            } catch {
                text += "ERROR\t\(error)\n"
            }
            try text.write(toFile: out + "/" + file, atomically: true, encoding: .utf8)
        }
    }
}
