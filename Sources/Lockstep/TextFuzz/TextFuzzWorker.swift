import Foundation
import LockstepPrograms
import Synchronization

/// The child side of the program-text fuzz target: runs mutants `first..<end` in lockstep, one after
/// the other, and logs each to an append-only file its supervisor reads (`TextFuzzLog`). Before a mutant
/// runs its `start` line is on disk, so when a trap kills the process the supervisor knows which mutant
/// did it. A watchdog thread ends the process (status `hangStatus` / `memoryStatus`, after logging why)
/// when one program runs past the time limit or the process's resident memory passes the limit; after
/// each program the process's peak (getrusage maxrss) is checked too, which catches a spike between
/// two polls.
package struct TextFuzzWorker {
    package static let hangStatus: Int32 = 3
    package static let memoryStatus: Int32 = 4
    /// How often the watchdog looks at the clock and the resident set.
    static let pollMilliseconds: UInt32 = 20

    package let mutator: ProgramTextMutator
    package let seed: UInt64
    package let first: Int
    package let end: Int
    /// Stop starting new mutants after this many seconds (nil: none).
    package let seconds: Double?
    package let timeLimitSeconds: Double
    package let memoryLimitBytes: UInt64
    package let logPath: String

    package init(mutator: ProgramTextMutator, seed: UInt64, first: Int, end: Int, seconds: Double?, timeLimitSeconds: Double,
                memoryLimitBytes: UInt64, logPath: String) {
        self.mutator = mutator
        self.seed = seed
        self.first = first
        self.end = end
        self.seconds = seconds
        self.timeLimitSeconds = timeLimitSeconds
        self.memoryLimitBytes = memoryLimitBytes
        self.logPath = logPath
    }

    /// Runs the mutants; returns normally when they are done or the time is up.
    package func run() throws {
        let log = open(logPath, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard log >= 0 else { throw TextFuzzError("\(logPath): cannot open the text fuzz log (\(String(cString: strerror(errno))))") }
        let watchdog = Watchdog(log: log, timeLimitNanoseconds: UInt64(timeLimitSeconds * 1e9), memoryLimitBytes: memoryLimitBytes)
        watchdog.start()
        let started = DispatchTime.now().uptimeNanoseconds
        for index in first..<end {
            if let seconds, Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9 > seconds { break }
            let text = mutator.mutant(seed: seed, index: UInt64(index))
            TextFuzzLog.append(log, index, .start)
            watchdog.programStarted(index)
            let (status, signature) = Self.run(text)
            watchdog.programEnded()
            let peak = Self.peakResidentBytes()
            if peak > memoryLimitBytes {
                TextFuzzLog.append(log, index, .memory, "\(peak >> 20) MiB")
                exit(Self.memoryStatus)
            }
            TextFuzzLog.append(log, index, status, signature)
        }
        close(log)
    }

    /// Parses and runs one text: its status and, for a failing verdict, its signature (`misuse:` first
    /// when Driver Verifier would have stopped the program at or before the failing step).
    package static func run(_ text: String) -> (TextFuzzLog.Status, String) {
        guard let program = try? ProgramText.parse(text) else { return (.unparsable, "") }
        let execution = Execution()
        let report = execution.run(program)
        switch report.verdict {
        case .pass: return (.pass, "")
        case .unrunnable: return (.setupError, "")
        default: return (.fail, execution.signature(of: program, report).description)
        }
    }

    /// The process's peak resident set so far.
    static func peakResidentBytes() -> UInt64 {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return UInt64(max(0, usage.ru_maxrss)) * 1024    // kilobytes on Linux
    }

    /// The process's resident set now (Linux: /proc/self/statm; elsewhere the peak stands in).
    static func residentBytes() -> UInt64 {
        guard let statm = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return peakResidentBytes() }
        let fields = statm.split(separator: " ")
        guard fields.count > 1, let pages = UInt64(fields[1]) else { return 0 }
        return pages * UInt64(sysconf(Int32(_SC_PAGESIZE)))
    }
}

/// Ends the process when the running program passes the time limit or the process passes the memory limit.
private final class Watchdog: Sendable {
    let log: Int32
    let timeLimitNanoseconds: UInt64
    let memoryLimitBytes: UInt64
    /// The running program's index + 1 (0: none) and when it started.
    let running = Atomic<Int>(0)
    let startedAt = Atomic<UInt64>(0)

    init(log: Int32, timeLimitNanoseconds: UInt64, memoryLimitBytes: UInt64) {
        self.log = log
        self.timeLimitNanoseconds = timeLimitNanoseconds
        self.memoryLimitBytes = memoryLimitBytes
    }

    func programStarted(_ index: Int) {
        startedAt.store(DispatchTime.now().uptimeNanoseconds, ordering: .sequentiallyConsistent)
        running.store(index + 1, ordering: .sequentiallyConsistent)
    }

    func programEnded() { running.store(0, ordering: .sequentiallyConsistent) }

    func start() {
        let thread = Thread { [self] in
            while true {
                usleep(TextFuzzWorker.pollMilliseconds * 1000)
                let current = running.load(ordering: .sequentiallyConsistent)
                guard current > 0 else { continue }
                let elapsed = DispatchTime.now().uptimeNanoseconds &- startedAt.load(ordering: .sequentiallyConsistent)
                guard running.load(ordering: .sequentiallyConsistent) == current else { continue }
                if elapsed > timeLimitNanoseconds {
                    TextFuzzLog.append(log, current - 1, .hang, "over \(timeLimitNanoseconds / 1_000_000_000) s")
                    _exit(TextFuzzWorker.hangStatus)
                }
                let resident = TextFuzzWorker.residentBytes()
                if resident > memoryLimitBytes {
                    TextFuzzLog.append(log, current - 1, .memory, "\(resident >> 20) MiB")
                    _exit(TextFuzzWorker.memoryStatus)
                }
            }
        }
        thread.start()
    }
}

/// The worker's log: one line per event, `index<TAB>status<TAB>detail`.
package enum TextFuzzLog {
    package enum Status: String, Sendable {
        case start, unparsable, setupError = "setup-error", pass, fail, hang, memory
    }

    package struct Line: Sendable {
        package let index: Int
        package let status: Status
        package let detail: String
    }

    static func append(_ fd: Int32, _ index: Int, _ status: Status, _ detail: String = "") {
        let line = Array("\(index)\t\(status.rawValue)\t\(detail)\n".utf8)
        _ = line.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count) }
    }

    package static func read(_ path: String) -> [Line] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: "\t", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count >= 2, let index = Int(fields[0]), let status = Status(rawValue: String(fields[1])) else { return nil }
            return Line(index: index, status: status, detail: fields.count > 2 ? String(fields[2]) : "")
        }
    }
}

package struct TextFuzzError: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}
