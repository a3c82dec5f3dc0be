import Foundation
import LockstepPrograms

/// The program a worker is running right now, kept on disk so that a Swift trap in the engine (which
/// kills the process) cannot lose it: written before the run, cleared after. A non-empty record found
/// after a worker died names the program (and its run number) that was running when it died. Records
/// are named by campaign (`.in-flight-<campaign>-<worker>.txt`, see `CampaignLock`), so a campaign
/// never takes another live campaign's record.
final class InFlightRecord: @unchecked Sendable {
    private let descriptor: Int32
    let path: String

    static func path(_ directory: String, campaign: Int32, worker: Int) -> String { "\(directory)/.in-flight-\(campaign)-\(worker).txt" }

    /// Opens the worker's record; nil if the directory cannot be written.
    init?(directory: String, campaign: Int32, worker: Int) {
        path = Self.path(directory, campaign: campaign, worker: worker)
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        descriptor = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
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
    static func positions(in directory: String, campaign: Int32, workers: Int) -> [Int?] {
        (0..<workers).map { worker in
            guard let data = FileManager.default.contents(atPath: path(directory, campaign: campaign, worker: worker)),
                  let text = String(data: data, encoding: .utf8), let line = text.split(separator: "\n").first else { return nil }
            let parts = line.split(separator: " ")
            guard parts.count >= 3, parts[0] == "#", parts[1] == "run" || parts[1] == "next" else { return nil }
            return Int(parts[2])
        }
    }

    /// Removes a campaign's records (it ended normally, or was stopped).
    static func clear(in directory: String, campaign: Int32) {
        for record in leftBehind(in: directory, campaign: campaign, includingFinished: true) { unlink(record.path) }
    }

    /// A record left behind by a worker that died.
    struct Left: Sendable {
        let worker: Int
        /// The run number, when the record has one (records written by older versions do not).
        let index: Int?
        let text: String
        let path: String
    }

    /// The records of `campaign` with a program in flight (all of them with `includingFinished`), by
    /// worker number; campaign nil: the records of versions before campaign ids (`.in-flight-<worker>.txt`).
    static func leftBehind(in directory: String, campaign: Int32?, includingFinished: Bool = false) -> [Left] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        let prefix = campaign.map { ".in-flight-\($0)-" } ?? ".in-flight-"
        var found: [Left] = []
        for name in names where name.hasPrefix(prefix) && name.hasSuffix(".txt") {
            let path = "\(directory)/\(name)"
            guard let worker = Int(name.dropFirst(prefix.count).dropLast(4)) else { continue }
            if includingFinished {
                found.append(Left(worker: worker, index: nil, text: "", path: path))
                continue
            }
            guard let data = FileManager.default.contents(atPath: path), !data.isEmpty,
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
    static func saveAsTrap(_ record: Left, signature: FailureSignature = .trap, why: String, extraHeader: [String] = [],
                           to directory: String) -> Result<String, Corpus.EntryError> {
        defer { unlink(record.path) }
        let header = CorpusHeader(verdict: signature, notes: ["verdict: " + why] + (record.index.map { ["found by: run \($0) of a campaign"] } ?? []) + extraHeader)
        if let program = try? ProgramText.parse(record.text) {
            do { return .success(try Corpus.write(program, header: header, to: directory)) } catch { return .failure(error) }
        }
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in record.text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let target = "\(directory)/trap-\(String(hash, radix: 16)).txt"
        let text = header.lines.map { "# " + $0 }.joined(separator: "\n") + "\n" + record.text
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: target), options: .atomic)
            return .success(target)
        } catch {
            return .failure(Corpus.EntryError(description: "\(target): could not be written (\(error.localizedDescription))"))
        }
    }
}
