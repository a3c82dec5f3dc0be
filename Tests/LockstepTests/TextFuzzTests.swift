import Foundation
import LockstepPrograms
import Testing
@testable import Lockstep

/// The program-text fuzz target: mutants are reproducible, and its supervisor turns a worker that dies
/// in a mutant into a saved trap and goes on after it (against a stand-in worker script).
@Suite struct TextFuzzTests {
    static let bases = ["# lockstep 1\nmachine x86\nb0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)\nx0 = MmSizeOfMdl(va=b0, length=0x10)\n"]

    @Test func mutantsAreAPureFunctionOfSeedAndIndex() {
        let mutator = ProgramTextMutator(bases: Self.bases)
        let first = (0..<50).map { mutator.mutant(seed: 7, index: UInt64($0)) }
        #expect(first == (0..<50).map { mutator.mutant(seed: 7, index: UInt64($0)) })
        #expect(Set(first).count > 25)
        #expect(first != (0..<50).map { mutator.mutant(seed: 8, index: UInt64($0)) })
    }

    /// A first worker that passes mutant 0 and dies by SIGILL in mutant 1; the next one, started at 2, ends normally.
    static let worker = """
        #!/bin/sh
        for argument; do
          case "$previous" in --log) log=$argument;; --from) from=$argument;; esac
          previous=$argument
        done
        if [ "$from" = 0 ]; then
          printf '0\\tstart\\t\\n0\\tpass\\t\\n1\\tstart\\t\\n' >> "$log"
          kill -ILL $$
        fi
        printf '%s\\tstart\\t\\n%s\\tfail\\tinvariant:x:Y\\n' "$from" "$from" >> "$log"
        exit 0

        """

    @Test func aWorkerThatDiesIsATrapAndTheRunGoesOn() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-textfuzz-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let executable = directory + "/fake-lockstep"
        try Data(Self.worker.utf8).write(to: URL(fileURLWithPath: executable))
        chmod(executable, 0o755)
        let mutator = ProgramTextMutator(bases: Self.bases)
        let summary = try TextFuzzSupervisor(executable: executable, workerArguments: ["textfuzz"], mutator: mutator, seed: 1, runs: 3, seconds: nil,
                                             timeLimitSeconds: 10, memoryLimitBytes: 512 << 20, findingsDirectory: directory + "/findings").run { _ in }
        #expect(summary.programs == 3)
        #expect(summary.traps.map(\.index) == [1])
        #expect(summary.traps.first?.detail == "signal 4")
        #expect(summary.verdicts["invariant:x:Y"]?.count == 1)
        let saved = try String(contentsOfFile: try #require(summary.traps.first?.path), encoding: .utf8)
        #expect(saved == mutator.mutant(seed: 1, index: 1))
    }
}
