import Foundation
import LockstepPrograms

/// Reading program files (plain text or gzip), with one-line errors that name the file.
public enum ProgramFiles {
    /// A file that could not be read or parsed: `path:line:column: message` or `path: message`.
    public struct LoadError: Error, CustomStringConvertible {
        /// The file, as given.
        public let path: String
        /// The 1-based line of a parse error (nil: the file could not be read at all).
        public let line: Int?
        /// The 1-based column of a parse error (nil: the file could not be read at all).
        public let column: Int?
        /// What went wrong.
        public let message: String

        /// `path:line:column: message`, or `path: message` without a position.
        public var description: String {
            if let line, let column { return "\(path):\(line):\(column): \(message)" }
            return "\(path): \(message)"
        }
    }

    /// The text of a file, decompressed if it is gzip.
    public static func readText(_ path: String) throws(LoadError) -> String {
        guard let contents = FileManager.default.contents(atPath: path) else {
            let exists = FileManager.default.fileExists(atPath: path)
            throw LoadError(path: path, line: nil, column: nil, message: exists ? "cannot read the file" : "no such file")
        }
        var bytes = [UInt8](contents)
        if Gzip.isCompressed(bytes) {
            do { bytes = try Gzip.decompress(bytes) } catch {
                throw LoadError(path: path, line: nil, column: nil, message: "corrupt gzip data: \(error)")
            }
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LoadError(path: path, line: nil, column: nil, message: "not UTF-8 text")
        }
        return text
    }

    /// Reads and parses a program file.
    public static func load(_ path: String) throws(LoadError) -> Program {
        let text = try readText(path)
        do {
            return try ProgramText.parse(text)
        } catch {
            throw LoadError(path: path, line: error.line, column: error.column, message: error.message)
        }
    }
}
