import Foundation
import LockstepPrograms

/// Running totals shared by the workers, for progress lines.
final class SharedProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var stats = CampaignStats()

    func add(calls: Int, failed: Bool, reproduced: Bool, signatures: Set<FailureSignature>, features: Int, seconds: Double) {
        lock.lock()
        defer { lock.unlock() }
        stats.features = max(stats.features, features)
        stats.programs += 1
        stats.calls += calls
        if failed { stats.findings += 1 }
        if reproduced && stats.firstFinding == nil { stats.firstFinding = .init(seconds: seconds, programs: stats.programs) }
        for signature in signatures where stats.signatures[signature] == nil { stats.signatures[signature] = 1 }
    }

    /// A finding was written (or could not be): snapshots carry it, so a supervisor whose session dies
    /// still knows where every finding is.
    func recordWrite(signature: FailureSignature, path: String?, problem: String?) {
        lock.lock()
        defer { lock.unlock() }
        if let path { stats.writtenFindings = (stats.writtenFindings ?? [:]).merging([signature: path]) { $1 } }
        if let problem { stats.unwrittenFindings = (stats.unwrittenFindings ?? [:]).merging([signature: problem]) { $1 } }
    }

    /// A reproducible failure has been seen (cheaper than a snapshot, for the per-program stop check).
    var hasFirstFinding: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stats.firstFinding != nil
    }

    var snapshot: CampaignStats {
        lock.lock()
        defer { lock.unlock() }
        return stats
    }
}

/// Each worker's result, stored from its own thread.
final class WorkerResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [WorkerOutput?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    func store(_ worker: Int, _ result: WorkerOutput) {
        lock.lock()
        results[worker] = result
        lock.unlock()
    }

    var all: [WorkerOutput] {
        lock.lock()
        defer { lock.unlock() }
        return results.compactMap { $0 }
    }
}

/// What one worker brings back.
struct WorkerOutput {
    var stats: CampaignStats
    var findings: [Finding]
    /// Passing programs that reached a feature no earlier program of this worker had.
    var kept: [Program]
}

/// Counters a campaign reports as it goes and at the end.
public struct CampaignStats: Sendable, Codable {
    /// Programs run (seed-corpus programs not included).
    public var programs = 0
    /// Calls run (steps executed, over all programs).
    public var calls = 0
    /// Failing runs (a program that fails counts each time, flaky ones included; unrunnable ones not).
    public var findings = 0
    /// Failing runs per signature.
    public var signatures: [FailureSignature: Int] = [:]
    /// Failing runs that did not fail the same way when re-run.
    public var flaky = 0
    /// Programs whose second run gave different outcomes (counted only with `checkDeterminism`).
    public var nondeterministic = 0
    /// Steps the oracle left unpredictable (no expectation to compare).
    public var unpredictedSteps = 0
    /// Programs that could not be set up (`Execution`'s set-up-error policy): a generator or mutator
    /// fault, never an engine finding.
    public var unrunnable = 0
    /// The first of them, with why.
    public var firstUnrunnable: String?
    /// Observable-state fields the model said it cannot know (compared on the engine's side only).
    public var unknownObservations = 0
    /// Distinct features reached (routine × outcome class, fault kind × routine × nth).
    public var features = 0
    /// Programs kept because they reached a new feature.
    public var corpus = 0
    /// Seconds from the campaign's start to the end (the figure in the summary).
    public var elapsed: Double = 0
    /// When the first reproducible failure was seen (nil: none was).
    public var firstFinding: FirstFinding?
    /// The parameter edges the campaign's calls reached (`ParameterEdges.all` names, sorted); nil in
    /// results written before edges were counted.
    public var reachedEdges: [String]?
    /// Where each signature's entry was written, by signature (snapshots of a running campaign).
    public var writtenFindings: [FailureSignature: String]?
    /// Why a signature's entry could not be written.
    public var unwrittenFindings: [FailureSignature: String]?
    /// Why the campaign ended (nil while it runs).
    public var stopReason: StopReason?
    /// Why passing programs could not be added to `--corpus`.
    public var corpusProblem: String?

    /// All counters zero.
    public init() {}
}

extension CampaignStats {
    /// Adds another worker's or session's counters to these: counts add up, features and signatures
    /// merge. (Elapsed time, the first finding and the kept corpus merge differently for workers and
    /// sessions; the callers do those.)
    public mutating func addCounters(_ other: CampaignStats) {
        programs += other.programs
        calls += other.calls
        findings += other.findings
        flaky += other.flaky
        nondeterministic += other.nondeterministic
        unpredictedSteps += other.unpredictedSteps
        unknownObservations += other.unknownObservations
        unrunnable += other.unrunnable
        firstUnrunnable = firstUnrunnable ?? other.firstUnrunnable
        // Workers keep their own feature sets: report the largest (a lower bound of the union).
        features = max(features, other.features)
        for (signature, count) in other.signatures { signatures[signature, default: 0] += count }
        addEdges(other.reachedEdges)
    }

    /// Adds reached edges to this campaign's (a sorted union).
    public mutating func addEdges(_ edges: [String]?) {
        guard let edges else { return }
        reachedEdges = Array(Set(reachedEdges ?? []).union(edges)).sorted()
    }

    /// `edges: 812 of 1037 reached`, then at most `limit` of the parameter edges no call reached.
    public func edgeSummary(limit: Int = 10) -> [String] {
        let unreached = unreachedEdges
        var lines = ["edges: \(ParameterEdges.all.count - unreached.count) of \(ParameterEdges.all.count) reached"
                     + (unreached.isEmpty ? "" : "; not reached\(unreached.count > limit ? " (first \(limit) of \(unreached.count))" : ""):")]
        lines += unreached.prefix(limit).map { "  \($0)" }
        return lines
    }

    /// The parameter edges no call reached, in `ParameterEdges.all` order.
    public var unreachedEdges: [String] {
        let reached = Set(reachedEdges ?? [])
        return ParameterEdges.all.filter { !reached.contains($0) }
    }
}

/// How long a campaign took to its first reproducible failure: the mutation benchmark's figure.
public struct FirstFinding: Sendable, Codable, Equatable {
    /// Seconds from the campaign's start (before shrinking).
    public var seconds: Double
    /// Programs run by all workers up to and including the failing one.
    public var programs: Int

    /// A first finding at `seconds` after the start, after `programs` programs.
    public init(seconds: Double, programs: Int) {
        self.seconds = seconds
        self.programs = programs
    }
}

