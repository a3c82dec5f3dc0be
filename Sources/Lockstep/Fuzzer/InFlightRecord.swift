import Foundation
import LockstepPrograms

/// The program a worker is running right now, kept on disk so that a Swift trap in the engine (which
/// kills the process) cannot lose it: written before the run, cleared after. A non-empty record found
/// after a worker died names the program (and its run number) that was running when it died.
final class InFlightRecord: @unchecked Sendable {
    private let descriptor: Int32
    let path: String

    /// Opens `<directory>/.in-flight-<worker>.txt`; nil if the directory cannot be written.
    init?(directory: String, worker: Int) {
        path = "\(directory)/.in-flight-\(worker).txt"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        descriptor = open(path, O_CREAT | O_WRONLY, 0o644)
        guard descriptor >= 0 else { return nil }
        _ = ftruncate(descriptor, 0)
    }

    deinit { close(descriptor) }

    /// Records run `index` (program `text`) as running: one positioned write of `# run <index> <bytes>`
    /// and the text. Nothing is truncated (a syscall saved per program): readers take exactly `<bytes>`
    /// bytes of text and ignore whatever an older, longer record left after them.
    func begin(index: Int, _ text: String) {
        let body = Array(text.utf8)
        var bytes = Array("# run \(index) \(body.count)\n".utf8) + body
        _ = bytes.withUnsafeMutableBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// The program finished; the worker's next run is `next` (past the budget when it is done). The
    /// record keeps that position so that a supervisor can resume the worker after another one died.
    func end(next: Int) {
        var bytes = Array("# next \(next)\n".utf8)
        _ = bytes.withUnsafeMutableBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// Where each worker stood when the campaign stopped or died: the run it was running (a record left
    /// in flight) or the next it would have run; nil for a worker without a record.
    static func positions(in directory: String, workers: Int) -> [Int?] {
        (0..<workers).map { worker in
            guard let data = FileManager.default.contents(atPath: "\(directory)/.in-flight-\(worker).txt"),
                  let text = String(data: data, encoding: .utf8), let line = text.split(separator: "\n").first else { return nil }
            let parts = line.split(separator: " ")
            guard parts.count >= 3, parts[0] == "#", parts[1] == "run" || parts[1] == "next" else { return nil }
            return Int(parts[2])
        }
    }

    /// Removes every record (a campaign that ended normally).
    static func clear(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for name in names where name.hasPrefix(".in-flight-") { try? FileManager.default.removeItem(atPath: "\(directory)/\(name)") }
    }

    /// A record left behind by a worker that died.
    struct Left: Sendable {
        let worker: Int
        /// The run number, when the record has one (records written by older versions do not).
        let index: Int?
        let text: String
        let path: String
    }

    /// The non-empty records in `directory`, by worker number.
    static func leftBehind(in directory: String) -> [Left] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var found: [Left] = []
        for name in names where name.hasPrefix(".in-flight-") && name.hasSuffix(".txt") {
            let path = "\(directory)/\(name)"
            guard let worker = Int(name.dropFirst(".in-flight-".count).dropLast(4)),
                  let data = FileManager.default.contents(atPath: path), !data.isEmpty,
                  var text = String(data: data, encoding: .utf8), !text.hasPrefix("# next ") else { continue }
            var index: Int?
            if text.hasPrefix("# run "), let newline = text.firstIndex(of: "\n") {
                let fields = text[text.index(text.startIndex, offsetBy: 6)..<newline].split(separator: " ")
                index = fields.first.flatMap { Int($0) }
                var body = Array(text.utf8[text.utf8.index(after: newline)...])
                if fields.count == 2, let length = Int(fields[1]), length <= body.count { body = Array(body.prefix(length)) }
                text = String(decoding: body, as: UTF8.self)
            }
            found.append(Left(worker: worker, index: index, text: text, path: path))
        }
        return found.sorted { $0.worker < $1.worker }
    }

    /// Saves `record` as a `trap` corpus entry (gzip, content-hash name, atomic) with `why` in its
    /// header, then clears the record; a record whose text does not parse is kept as plain text.
    static func saveAsTrap(_ record: Left, signature: String = "trap", why: String, extraHeader: [String] = [], to directory: String) -> String? {
        defer { try? FileManager.default.removeItem(atPath: record.path) }
        let header = ["verdict: " + why] + (record.index.map { ["found by: run \($0) of a campaign"] } ?? []) + extraHeader
        if let program = try? ProgramText.parse(record.text) {
            return try? Corpus.write(program, signature: signature, header: header, to: directory)
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in record.text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let target = "\(directory)/trap-\(String(hash, radix: 16)).txt"
        let text = (["# verdict-signature: \(signature)"] + header.map { "# " + $0 }).joined(separator: "\n") + "\n" + record.text
        return (try? Data(text.utf8).write(to: URL(fileURLWithPath: target), options: .atomic)) != nil ? target : nil
    }

    /// Turns records left by a campaign that died (in-process mode, no supervisor) into `trap` findings;
    /// returns their paths.
    static func recoverTraps(in directory: String) -> [String] {
        leftBehind(in: directory).compactMap {
            saveAsTrap($0, why: "the process died while running this program (a trap in the engine or the model)", to: directory)
        }
    }
}
