import Foundation
import LockstepPrograms
import MemoryManager

/// How a fuzzing campaign runs.
public struct CampaignOptions: Sendable {
    public var seed: UInt64 = 1
    /// Stop after this many programs (nil: run until `seconds`).
    public var runs: Int?
    /// Stop after this many seconds (the budget decides only when to stop, never what runs).
    public var seconds: Double = 60
    public var generation = GenerationOptions()
    /// Where new findings are written (nil: nowhere).
    public var findingsDirectory: String?
    /// Run every program twice and compare a digest of all outcomes.
    public var checkDeterminism = false
    public var checkEvery = 1
    /// Called on every fresh engine before a program runs (tests switch on deliberate bugs here).
    public var prepareKernel: (@Sendable (Kernel) -> Void)?

    public init() {}
}

/// One failing program.
public struct Finding: Sendable {
    public let signature: String
    /// The program's own seed: `lockstep fuzz --seed <campaign seed>` regenerates it as run `index`.
    public let programSeed: UInt64
    public let index: Int
    public let program: Program
    public let verdict: Verdict
    /// The failure did not reproduce on a second run.
    public let flaky: Bool
    /// Where it was written, if it was.
    public var path: String?
}

/// Counters a campaign reports as it goes and at the end.
public struct CampaignStats: Sendable {
    public var programs = 0
    public var calls = 0
    public var findings = 0
    public var signatures: [String: Int] = [:]
    public var flaky = 0
    public var nondeterministic = 0
    public var unpredictedSteps = 0
    public var elapsed: Double = 0
}

/// Generates programs from a seed, runs each in lockstep, re-runs every failure once before reporting
/// it, and writes each new signature's first program as a finding.
public struct Campaign {
    public let options: CampaignOptions

    public init(_ options: CampaignOptions) { self.options = options }

    /// Runs the campaign; `progress` is called about once a second and at the end.
    public func run(progress: (CampaignStats, Bool) -> Void) -> (stats: CampaignStats, findings: [Finding]) {
        let generator = ProgramGenerator(options.generation)
        let runner = LockstepRunner(checkEvery: options.checkEvery)
        var stats = CampaignStats()
        var findings: [Finding] = []
        let clock = ContinuousClock()
        let start = clock.now
        var lastReport = start
        var index = 0
        while true {
            let elapsed = start.duration(to: clock.now)
            stats.elapsed = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            if let runs = options.runs { if index >= runs { break } } else if stats.elapsed >= options.seconds { break }
            let programSeed = SeededRandom.derive(options.seed, UInt64(index))
            let program = generator.generate(seed: programSeed)
            let report = runOnce(program, runner)
            stats.programs += 1
            stats.calls += report.steps.count
            stats.unpredictedSteps += report.steps.filter { if case .unpredictable = $0.expectation { return true } else { return false } }.count
            if options.checkDeterminism, Self.digest(report) != Self.digest(runOnce(program, runner)) {
                stats.nondeterministic += 1
            }
            if !report.verdict.isPass {
                let again = runOnce(program, runner)
                let flaky = again.verdict.signature != report.verdict.signature
                let signature = flaky ? "flaky:" + report.verdict.signature : report.verdict.signature
                stats.findings += 1
                if flaky { stats.flaky += 1 }
                if stats.signatures[signature] == nil {
                    var finding = Finding(signature: signature, programSeed: programSeed, index: index, program: program,
                                          verdict: report.verdict, flaky: flaky)
                    finding.path = save(finding)
                    findings.append(finding)
                }
                stats.signatures[signature, default: 0] += 1
            }
            index += 1
            if lastReport.duration(to: clock.now) >= .seconds(1) {
                lastReport = clock.now
                progress(stats, false)
            }
        }
        progress(stats, true)
        return (stats, findings)
    }

    private func runOnce(_ program: Program, _ runner: LockstepRunner) -> RunReport {
        do {
            let kernel = try LockstepRunner.makeKernel(for: program)
            options.prepareKernel?(kernel)
            return try runner.run(program, oracle: try ReferenceOracle.make(for: program), kernel: kernel)
        } catch {
            return RunReport(steps: [], verdict: .pass)
        }
    }

    /// FNV-1a over the outcome of every step (stable across processes, unlike Hasher).
    static func digest(_ report: RunReport) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for step in report.steps {
            for byte in "\(step.index) \(step.outcome)|".utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        }
        for byte in report.verdict.signature.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }

    /// Writes the finding atomically (temporary file + rename) as program text with a `#` header.
    private func save(_ finding: Finding) -> String? {
        guard let directory = options.findingsDirectory else { return nil }
        let text = ProgramText.encode(finding.program)
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let header = ["# signature: \(finding.signature)", "# found by: lockstep fuzz --seed \(options.seed) (run \(finding.index), program seed \(finding.programSeed))",
                      "# verdict: " + finding.verdict.description.replacingOccurrences(of: "\n", with: "\n#   ")]
        lines.insert(contentsOf: header, at: 1)
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in text.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        let safe = finding.signature.map { $0.isLetter || $0.isNumber ? $0 : "-" }
        let path = "\(directory)/\(String(safe).prefix(80))-\(String(hash, radix: 16)).txt"
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
            return path
        } catch {
            return nil
        }
    }
}
