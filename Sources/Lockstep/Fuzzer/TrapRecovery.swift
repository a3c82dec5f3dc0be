import Foundation
import LockstepPrograms

/// Decides whether a program left in flight is a trap, and saves it if it is. A process can die
/// beside a program for reasons that are not the program's (a kill from outside, another worker's
/// trap), so a record is never saved on its face: it is re-run alone in a fresh process (`oracle`),
/// saved only if that process crashes too, shrunk with the same oracle first.
package struct TrapConfirmer {
    /// Runs a program alone in a child and says `trap` when the child crashes.
    package var oracle: any FailureOracle
    /// The same without the reference model (nil: do not tell the engine's traps from the model's).
    package var engineOnlyOracle: (any FailureOracle)?
    package let findingsDirectory: String
    /// Candidate runs (each a child process) spent shrinking a trap.
    package var shrinkRuns = Limits.trapShrinkRuns

    package init(oracle: any FailureOracle, engineOnlyOracle: (any FailureOracle)? = nil, findingsDirectory: String) {
        self.oracle = oracle
        self.engineOnlyOracle = engineOnlyOracle
        self.findingsDirectory = findingsDirectory
    }

    /// The record's program if, run alone, it crashes the process.
    func reproduces(_ record: InFlightRecord.Left) -> Program? {
        var oracle = self.oracle
        guard let program = try? ProgramText.parse(record.text) else { return nil }
        return oracle.failure(of: program) != nil ? program : nil
    }

    /// Shrinks a confirmed trap and saves it with signature `trap`, saying whose trap it is: one that
    /// survives without the model is the engine's. A crash report is kept beside the entry.
    func save(_ program: Program, _ record: InFlightRecord.Left, how: String, crashReport: String? = nil) -> Result<String, Corpus.EntryError> {
        var side = "the engine or the model"
        if var engineOnly = engineOnlyOracle {
            side = engineOnly.failure(of: program) != nil ? "the engine" : "the reference model (the engine alone survives it)"
        }
        let shrunk = Shrinker(maxRuns: shrinkRuns, maxSeconds: 60, oracle: oracle).shrink(program)
        let final = InFlightRecord.Left(worker: record.worker, index: record.index, text: ProgramText.encode(shrunk?.program ?? program), path: record.path)
        let stats = shrunk.map { ["shrunk from \(program.calls.count) calls and \(program.faults.count) faults in \($0.runs) child runs; 1-minimal: \($0.oneMinimal ? "yes" : "no")"] } ?? []
        let report = crashReport.flatMap { FileManager.default.fileExists(atPath: $0) ? $0 : nil }
        let saved = InFlightRecord.saveAsTrap(final, why: "a Swift runtime trap in \(side) kills the process (\(how)); reproduced alone",
                                              extraHeader: stats + (report == nil ? [] : ["crash report of the campaign process: the .crash file of the same name"]),
                                              to: findingsDirectory)
        if case .success(let path) = saved, let report {
            let target = (path as NSString).deletingPathExtension + ".crash"
            try? FileManager.default.removeItem(atPath: target)
            try? FileManager.default.copyItem(atPath: report, toPath: target)
        }
        return saved
    }
}

/// What became of one program an earlier campaign left in flight.
package struct RecoveredRecord: Sendable {
    /// The run number, when the record has one.
    package let index: Int?
    /// The saved `trap` entry; nil: the program passes alone (the campaign was killed, not trapped).
    package let path: String?
    /// Why a confirmed trap could not be saved.
    package let problem: String?
}

package enum TrapRecovery {
    /// Settles the records of campaigns that died in `directory` (their lock is free; live campaigns'
    /// records are left alone): each is re-run alone and saved as a `trap` only if it crashes again; then
    /// the dead campaigns' scratch files and stray temporaries are removed.
    package static func recoverDeadCampaigns(in directory: String, confirmer: TrapConfirmer) -> [RecoveredRecord] {
        var recovered: [RecoveredRecord] = []
        func settle(_ records: [InFlightRecord.Left]) {
            for record in records {
                guard let program = confirmer.reproduces(record) else {
                    unlink(record.path)
                    recovered.append(RecoveredRecord(index: record.index, path: nil, problem: nil))
                    continue
                }
                switch confirmer.save(program, record, how: "an earlier campaign died while running it") {
                case .success(let path): recovered.append(RecoveredRecord(index: record.index, path: path, problem: nil))
                case .failure(let error): recovered.append(RecoveredRecord(index: record.index, path: nil, problem: error.description))
                }
            }
        }
        CampaignLock.forEachDeadCampaign(in: directory) { campaign in
            settle(InFlightRecord.leftBehind(in: directory, campaign: campaign))
        }
        // Records of versions before campaign ids (`.in-flight-<worker>.txt`) have no owner to ask.
        settle(InFlightRecord.leftBehind(in: directory, campaign: nil))
        for legacy in InFlightRecord.leftBehind(in: directory, campaign: nil, includingFinished: true) { unlink(legacy.path) }
        ScratchFiles.removeOrphanTemporaries(in: directory)
        return recovered
    }
}
