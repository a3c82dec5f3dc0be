import Foundation

/// One line that names a path and the operating system's reason (`strerror`), for a directory a
/// campaign cannot use or a file it cannot write.
package struct PathError: Error, CustomStringConvertible {
    package let description: String

    package init(_ path: String, _ what: String, errno code: Int32) {
        description = "\(path): \(what) (\(String(cString: strerror(code))))"
    }

    package init(_ description: String) { self.description = description }
}

/// Directories a campaign writes to (findings, `--corpus`): checked before the campaign starts, so a
/// bad path is one line and exit status 2, not a false trap or findings "(not written)".
package enum WritableDirectory {
    /// Creates `path` (and its parents) if it is missing, then proves it can be written by creating,
    /// writing, syncing and removing a probe file. `role` names the directory in the message.
    package static func prepare(_ path: String, role: String) throws(PathError) {
        try makeDirectories(path, role: role)
        let probe = "\(path)/.write-probe-\(getpid())"
        let descriptor = open(probe, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw PathError(path, "cannot write in the \(role)", errno: errno) }
        defer { unlink(probe) }
        let byte: [UInt8] = [0x0A]
        let written = write(descriptor, byte, 1)
        let failure = written == 1 ? (fsync(descriptor) == 0 ? 0 : errno) : errno
        close(descriptor)
        if failure != 0 { throw PathError(path, "cannot write in the \(role)", errno: failure) }
    }

    /// Checks that `path` is a directory whose entries can be listed (a corpus to read).
    package static func checkReadable(_ path: String, role: String) throws(PathError) {
        guard let directory = opendir(path) else { throw PathError(path, "cannot read the \(role)", errno: errno) }
        closedir(directory)
    }

    /// `mkdir -p` with the failing component's error.
    static func makeDirectories(_ path: String, role: String) throws(PathError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw PathError(path, "cannot use it as the \(role)", errno: ENOTDIR) }
            return
        }
        // The parent by hand: NSString.deletingLastPathComponent traps on some short relative paths.
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if let slash = trimmed.lastIndex(of: "/"), slash != trimmed.startIndex {
            try makeDirectories(String(trimmed[..<slash]), role: role)
        }
        if mkdir(path, 0o755) != 0 && errno != EEXIST { throw PathError(path, "cannot create the \(role)", errno: errno) }
    }
}

/// The scratch files of one campaign in its findings directory (in-flight records, the supervisor's
/// session files, trap candidates) carry the campaign's id (the pid of its supervisor, or of the
/// campaign itself with `--in-process`), and the campaign holds an exclusive `flock` on
/// `.campaign-<id>.lock` while it runs. The kernel drops the lock when the process dies however it
/// dies, so another campaign can tell a live campaign's files (lock held: left alone) from a dead one's
/// (lock free: recovered and removed), with no pid-reuse race.
package final class CampaignLock: @unchecked Sendable {
    package let directory: String
    package let campaign: Int32
    private let descriptor: Int32

    /// Takes this campaign's lock in `directory` (which must exist and be writable).
    package init(directory: String, campaign: Int32 = getpid()) throws(PathError) {
        self.directory = directory
        self.campaign = campaign
        let path = Self.lockPath(directory, campaign)
        descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw PathError(path, "cannot create the campaign lock", errno: errno) }
        guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(descriptor)
            throw PathError(path, "the campaign lock is held by another process", errno: code)
        }
    }

    /// Removes this campaign's scratch files and its lock (a campaign that ends normally).
    package func release() {
        ScratchFiles.remove(campaign: campaign, in: directory)
        unlink(Self.lockPath(directory, campaign))
        close(descriptor)
    }

    static func lockPath(_ directory: String, _ campaign: Int32) -> String { "\(directory)/.campaign-\(campaign).lock" }

    /// Runs `body` for each campaign whose files are in `directory` but whose lock nobody holds, while
    /// holding that lock (so two campaigns starting together do not both recover the same records), then
    /// removes the dead campaign's files and lock.
    static func forEachDeadCampaign(in directory: String, _ body: (Int32) -> Void) {
        for campaign in ScratchFiles.campaigns(in: directory) {
            let path = lockPath(directory, campaign)
            let descriptor = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { continue }
            defer { close(descriptor) }
            guard flock(descriptor, LOCK_EX | LOCK_NB) == 0 else { continue }
            body(campaign)
            ScratchFiles.remove(campaign: campaign, in: directory)
            unlink(path)
        }
    }
}

/// Names of a campaign's scratch files, and their clean-up.
enum ScratchFiles {
    /// Files named after a campaign id: `<prefix><id><suffix…>`.
    static let campaignPrefixes = [".campaign-", ".in-flight-", ".session-", ".trap-candidate-"]

    /// The campaign ids that have files in `directory`.
    static func campaigns(in directory: String) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        var ids = Set<Int32>()
        for name in names {
            for prefix in campaignPrefixes where name.hasPrefix(prefix) {
                let digits = name.dropFirst(prefix.count).prefix { $0.isNumber }
                // `.in-flight-<worker>.txt` (no campaign id) was written by versions before campaign ids.
                if prefix == ".in-flight-", !name.dropFirst(prefix.count + digits.count).hasPrefix("-") { continue }
                if let id = Int32(digits) { ids.insert(id) }
            }
        }
        return ids.sorted()
    }

    /// Removes every scratch file of `campaign`, and atomic-write temporaries and write probes whose
    /// writer process is gone.
    static func remove(campaign: Int32, in directory: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name != ".campaign-\(campaign).lock" {
            let owned = campaignPrefixes.contains { prefix in
                // `.session-12` must not match campaign 1: the id ends where the digits do.
                name.hasPrefix("\(prefix)\(campaign)") && !(name.dropFirst("\(prefix)\(campaign)".count).first?.isNumber ?? false)
            }
            if owned { unlink("\(directory)/\(name)") }
        }
        removeOrphanTemporaries(in: directory)
    }

    /// `.tmp-<name>-<pid>` and `.write-probe-<pid>` of processes that no longer exist, and Foundation's
    /// atomic-write temporaries (`.dat.nosync…`, no owner named) older than an hour.
    static func removeOrphanTemporaries(in directory: String) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(".dat.nosync") {
            let modified = (try? FileManager.default.attributesOfItem(atPath: "\(directory)/\(name)"))?[.modificationDate] as? Date
            if let modified, modified.timeIntervalSinceNow < -3600 { unlink("\(directory)/\(name)") }
        }
        for name in names where name.hasPrefix(".tmp-") || name.hasPrefix(".write-probe-") {
            guard let pid = name.split(separator: "-").last.flatMap({ Int32($0) }), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { unlink("\(directory)/\(name)") }
        }
    }
}
