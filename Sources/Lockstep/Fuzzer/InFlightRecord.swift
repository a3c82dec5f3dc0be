import Foundation
import LockstepPrograms

/// The program a worker is running right now, kept on disk so that a Swift trap in the engine (which
/// kills the process) cannot lose it: written before the run, cleared after. A non-empty record found
/// when a campaign starts is a program that killed an earlier campaign; it becomes a `trap` finding.
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

    /// Records `text` as running: one positioned write (the record is empty between programs).
    func begin(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { pwrite(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// The program finished: nothing is in flight.
    func end() { _ = ftruncate(descriptor, 0) }

    /// Turns records left by a campaign that died into `trap` findings; returns their paths.
    static func recoverTraps(in directory: String) -> [String] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var recovered: [String] = []
        for name in names.sorted() where name.hasPrefix(".in-flight-") {
            let path = "\(directory)/\(name)"
            guard let data = FileManager.default.contents(atPath: path), !data.isEmpty, let text = String(data: data, encoding: .utf8) else { continue }
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            lines.insert(contentsOf: ["# signature: trap", "# verdict: the process died while running this program (a trap in the engine or the model)"],
                         at: min(1, lines.count))
            var hash: UInt64 = 0xCBF2_9CE4_8422_2325
            for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
            let target = "\(directory)/trap-\(String(hash, radix: 16)).txt"
            if (try? Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: target), options: .atomic)) != nil {
                try? FileManager.default.removeItem(atPath: path)
                recovered.append(target)
            }
        }
        return recovered
    }
}
