import Foundation
import LockstepPrograms

/// A corpus: a directory of gzip-compressed program texts (`zcat` shows one), each with `#` header lines
/// that record what it is and the verdict it had. Entries are named by a content hash of the canonical
/// program text; a name clash with different content is an error, never an overwrite. Writes are atomic
/// (temporary file in the same directory, fsync, rename), so a campaign killed at any instant leaves
/// only whole entries, and several writers can share a directory.
public enum Corpus {
    /// Why an entry could not be written or read.
    public struct EntryError: Error, CustomStringConvertible {
        /// The path and the reason, on one line.
        public let description: String
    }

    /// One entry as read back.
    public struct Entry: Sendable {
        /// An entry from its parts (`Corpus.read` and `Corpus.entries` build them); `problem` marks one
        /// that could not be read.
        public init(path: String, program: Program, header: CorpusHeader, problem: String? = nil) {
            self.path = path
            self.program = program
            self.header = header
            self.problem = problem
        }

        /// The entry's file.
        public let path: String
        /// The program it holds.
        public let program: Program
        /// What the entry recorded: its verdict, the campaign's qualifier, its driver, notes.
        public let header: CorpusHeader
        /// Why the entry could not be read (set only by `Corpus.entries`, which keeps bad entries so
        /// that a parameterized test fails on them by name).
        public let problem: String?

        /// The verdict a replay must show (`pass` for an entry that records none).
        public var recordedSignature: FailureSignature { header.verdict }
        /// The signature the campaign that found it reported (the verdict with its qualifier).
        public var findingSignature: FailureSignature { header.finding }
    }

    /// FNV-1a 64 of the canonical program text, as 16 hex digits: the entry's name.
    public static func name(of program: Program) -> String {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in ProgramText.encode(program).utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let digits = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    /// Writes `program` with its `header`.
    /// Returns the path; an existing entry with the same content is left as it is, unless
    /// `replacingSameProgram` (a finding written unshrunk, now known to be minimal, gets its final
    /// header). Errors name the path and the operating system's reason (`No space left on device`).
    @discardableResult
    public static func write(_ program: Program, header: CorpusHeader, to directory: String,
                             replacingSameProgram: Bool = false) throws(EntryError) -> String {
        let bytes = Gzip.compress(Array(header.annotating(program).utf8))
        let path = "\(directory)/\(name(of: program)).gz"
        do {
            try WritableDirectory.makeDirectories(directory, role: "corpus directory")
        } catch {
            throw EntryError(description: error.description)
        }
        if FileManager.default.fileExists(atPath: path) {
            let existing = try read(path)
            guard existing.program == program else { throw EntryError(description: "\(path): name clash with a different program; not overwritten") }
            if !replacingSameProgram { return path }
        }
        let temporary = "\(directory)/.tmp-\(name(of: program))-\(getpid())"
        let descriptor = open(temporary, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw EntryError(description: PathError(path, "could not be written", errno: errno).description) }
        var failure: Int32 = 0
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Foundation.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0, fsync(descriptor) != 0 { failure = errno }
        if close(descriptor) != 0, failure == 0 { failure = errno }
        if failure == 0, rename(temporary, path) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(temporary)
            throw EntryError(description: PathError(path, "could not be written", errno: failure).description)
        }
        return path
    }

    /// Reads one entry (gzip or plain text).
    public static func read(_ path: String) throws(EntryError) -> Entry {
        let text: String
        let program: Program
        do {
            text = try ProgramFiles.readText(path)
            program = try ProgramFiles.load(path)
        } catch {
            throw EntryError(description: error.description)
        }
        do {
            return Entry(path: path, program: program, header: try CorpusHeader(decoding: text))
        } catch {
            throw EntryError(description: "\(path): \(error)")
        }
    }

    /// What a merge did.
    public struct MergeResult: Sendable {
        /// Entries written to the output.
        public var written = 0
        /// Distinct failure signatures kept (the simplest program of each).
        public var failureSignatures = 0
        /// Passing entries kept (every one is kept).
        public var passing = 0
        /// One line per input entry that could not be read or written.
        public var problems: [String] = []
    }

    /// Unions corpora into `output`: every `pass` entry is kept (each is its own regression); for each
    /// failure signature the simplest program wins (`Program.isSimpler(than:)`).
    public static func merge(_ inputs: [String], into output: String) -> MergeResult {
        var result = MergeResult()
        var bySignature: [FailureSignature: Entry] = [:]
        var passing: [Entry] = []
        for file in inputs.flatMap(files) {
            let entry: Entry
            do { entry = try read(file) } catch {
                result.problems.append(error.description)
                continue
            }
            let signature = entry.recordedSignature
            if signature.isPass { passing.append(entry); continue }
            if let kept = bySignature[signature], !entry.program.isSimpler(than: kept.program) { continue }
            bySignature[signature] = entry
        }
        result.failureSignatures = bySignature.count
        result.passing = passing.count
        for entry in passing + bySignature.keys.sorted().map({ bySignature[$0]! }) {
            do {
                var header = entry.header
                header.notes = ["merged from: \(entry.path)"] + entry.header.notes.filter { !$0.hasPrefix("merged from: ") }
                try write(entry.program, header: header, to: output)
                result.written += 1
            } catch {
                result.problems.append(error.description)
            }
        }
        return result
    }

    /// The entry files of a directory (or the file itself), sorted; an unreadable directory gives none
    /// (see `listing` for the reason).
    public static func files(_ path: String) -> [String] {
        (try? listing(path)) ?? []
    }

    /// The entry files of a directory (or the file itself, or a missing path, which reading then
    /// reports), sorted; a directory that cannot be listed is an error naming it and the reason.
    public static func listing(_ path: String) throws(EntryError) -> [String] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue else { return [path] }
        guard let directory = opendir(path) else {
            throw EntryError(description: PathError(path, "cannot read the directory", errno: errno).description)
        }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if (name.hasSuffix(".gz") || name.hasSuffix(".txt")) && !name.hasPrefix(".") { names.append(name) }
        }
        return names.sorted().map { "\(path)/\($0)" }
    }
}
