import Foundation
import LockstepPrograms

/// The program-text fuzz target (`lockstep textfuzz`): mutants of corpus and library programs
/// (`ProgramTextMutator`) run in lockstep in a child process (`TextFuzzWorker`). Any trap (the child
/// dies by a signal), any program over the time limit and any program over the memory limit is a
/// failure: its text is saved under the findings directory and a new child goes on after it. Failing
/// verdicts on the correct engine are reported for triage, grouped by signature with one example each.
package struct TextFuzzSupervisor {
    package let executable: String
    /// Arguments before the worker's own options: the subcommand and the base paths.
    package let workerArguments: [String]
    package let mutator: ProgramTextMutator
    package let seed: UInt64
    package let runs: Int
    package let seconds: Double?
    package let timeLimitSeconds: Double
    package let memoryLimitBytes: UInt64
    package let findingsDirectory: String

    package init(executable: String, workerArguments: [String], mutator: ProgramTextMutator, seed: UInt64, runs: Int, seconds: Double?,
                timeLimitSeconds: Double, memoryLimitBytes: UInt64, findingsDirectory: String) {
        self.executable = executable
        self.workerArguments = workerArguments
        self.mutator = mutator
        self.seed = seed
        self.runs = runs
        self.seconds = seconds
        self.timeLimitSeconds = timeLimitSeconds
        self.memoryLimitBytes = memoryLimitBytes
        self.findingsDirectory = findingsDirectory
    }

    /// What a run found.
    package struct Summary: Sendable {
        package var programs = 0
        package var parsable = 0
        package var passed = 0
        package var setupErrors = 0
        /// Mutants that killed their process, with the signal or status.
        package var traps: [(index: Int, detail: String, path: String)] = []
        package var hangs: [(index: Int, detail: String, path: String)] = []
        package var overMemory: [(index: Int, detail: String, path: String)] = []
        /// Failing verdicts: signature → (count, first mutant's index).
        package var verdicts: [String: (count: Int, example: Int)] = [:]
        package var peakChildResidentBytes: UInt64 = 0
        package var seconds = 0.0

        /// Traps, hangs and programs over the memory limit: what fails the target.
        package var failures: Int { traps.count + hangs.count + overMemory.count }
        package var failingVerdicts: Int { verdicts.values.reduce(0) { $0 + $1.count } }
    }

    package func run(log: (String) -> Void) throws -> Summary {
        try FileManager.default.createDirectory(atPath: findingsDirectory, withIntermediateDirectories: true)
        let logPath = "\(findingsDirectory)/.textfuzz-\(getpid()).log"
        try? FileManager.default.removeItem(atPath: logPath)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        var summary = Summary()
        let clock = ContinuousClock()
        let started = clock.now
        var next = 0
        var read = 0
        while next < runs {
            let elapsed = (clock.now - started).inSeconds
            if let seconds, elapsed >= seconds { break }
            var arguments = workerArguments + ["--worker", "--seed", String(seed), "--from", String(next), "--runs", String(runs),
                                               "--time-limit", String(timeLimitSeconds), "--memory-limit-mib", String(memoryLimitBytes >> 20),
                                               "--log", logPath]
            if let seconds { arguments += ["--seconds", String(max(0, seconds - elapsed))] }
            let (status, signalled) = try CampaignSupervisor.spawn(executable, arguments, quiet: true)
            let lines = TextFuzzLog.read(logPath)
            var inFlight: Int?
            for line in lines[read...] {
                switch line.status {
                case .start: inFlight = line.index
                case .unparsable: summary.programs += 1; inFlight = nil
                case .setupError: summary.programs += 1; summary.parsable += 1; summary.setupErrors += 1; inFlight = nil
                case .pass: summary.programs += 1; summary.parsable += 1; summary.passed += 1; inFlight = nil
                case .fail:
                    summary.programs += 1; summary.parsable += 1; inFlight = nil
                    summary.verdicts[line.detail, default: (0, line.index)].count += 1
                case .hang:
                    summary.hangs.append((line.index, line.detail, save(line.index, "hang")))
                    log("hang  mutant \(line.index) (\(line.detail))"); inFlight = nil; summary.programs += 1
                case .memory:
                    summary.overMemory.append((line.index, line.detail, save(line.index, "memory")))
                    log("memory  mutant \(line.index) (\(line.detail))"); inFlight = nil; summary.programs += 1
                }
                next = line.index + 1
            }
            read = lines.count
            if let inFlight {
                // The child died in this mutant: by a signal (a Swift runtime trap), or by an error exit.
                let detail = signalled ? "signal \(status)" : "exit status \(status)"
                summary.traps.append((inFlight, detail, save(inFlight, "trap")))
                summary.programs += 1
                log("trap  mutant \(inFlight) (\(detail))")
                next = inFlight + 1
            } else if status != 0 && status != TextFuzzWorker.hangStatus && status != TextFuzzWorker.memoryStatus {
                throw TextFuzzError("the text fuzz worker failed outside any program (\(signalled ? "signal" : "exit status") \(status))")
            } else if status == 0 {
                break
            }
        }
        var usage = rusage()
        getrusage(RUSAGE_CHILDREN.rawValue, &usage)
        summary.peakChildResidentBytes = UInt64(max(0, usage.ru_maxrss)) * 1024
        summary.seconds = (clock.now - started).inSeconds
        return summary
    }

    /// Writes mutant `index` as `<kind>-<seed>-<index>.txt`; returns the path.
    private func save(_ index: Int, _ kind: String) -> String {
        let path = "\(findingsDirectory)/\(kind)-\(seed)-\(index).txt"
        try? Data(mutator.mutant(seed: seed, index: UInt64(index)).utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        return path
    }

    /// The base texts under `paths` (directories: their `.gz` and `.txt` files, sorted by name). Files
    /// that cannot be read are skipped: a corrupt corpus entry is not the text fuzzer's business.
    package static func bases(_ paths: [String]) -> [String] {
        var files: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            if isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
                files += names.filter { ($0.hasSuffix(".gz") || $0.hasSuffix(".txt")) && !$0.hasPrefix(".") }.sorted().map { "\(path)/\($0)" }
            } else {
                files.append(path)
            }
        }
        return files.compactMap { try? ProgramFiles.readText($0) }
    }
}
