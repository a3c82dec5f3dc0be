import Foundation
import LockstepPrograms
import Testing
@testable import Lockstep

/// The supervisor against a stand-in `lockstep`: a shell script whose first session leaves two programs
/// in flight and dies by SIGILL (as a Swift trap kills a process), whose resumed session ends normally,
/// and whose `run` dies only on the program with `length=0x0` (the trap).
@Suite struct SupervisorTests {
    static let trapProgram = """
        # lockstep 1
        machine x86
        b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
        m1 = IoAllocateMdl(va=b0, length=0x10, secondary=false, quota=false, irp=none)
        x2 = MmSizeOfMdl(va=b0+0x10, length=0x0)
        IoFreeMdl(m1)

        """
    static let innocentProgram = "# lockstep 1\nmachine x86\nx0 = MmSizeOfMdl(va=0x0, length=0x1)\n"

    static let campaign: Int32 = 4242

    static func script(directory: String, death: String = "ILL") -> String {
        """
        #!/bin/sh
        if [ "$1" = run ]; then
          for last; do :; done
          if grep -q 'length=0x0' "$last"; then kill -ILL $$; fi
          exit 0
        fi
        for argument; do
          if [ "$previous" = --session-result ]; then result=$argument; fi
          previous=$argument
        done
        if echo "$@" | grep -q -- --resume; then
          echo "$@" > '\(directory)/resumed-arguments'
          echo '{"stats":{"programs":10,"calls":50,"findings":0,"signatures":{},"flaky":0,"nondeterministic":0,"unpredictedSteps":0,"unknownObservations":0,"unrunnable":0,"features":3,"corpus":1,"elapsed":0.1},"findings":[]}' > "$result"
          exit 0
        fi
        echo '{"stats":{"programs":7,"calls":20,"findings":0,"signatures":{},"flaky":0,"nondeterministic":0,"unpredictedSteps":0,"unknownObservations":0,"unrunnable":0,"features":2,"corpus":1,"elapsed":0.1},"findings":[]}' > "$result"
        printf '# run 4\\n%s' '\(trapProgram)' > '\(directory)/.in-flight-\(campaign)-0.txt'
        printf '# run 5\\n%s' '\(innocentProgram)' > '\(directory)/.in-flight-\(campaign)-1.txt'
        kill -\(death) $$

        """
    }

    static func supervisor(directory: String, death: String = "ILL") throws -> CampaignSupervisor {
        // Run by /bin/sh, not executed itself: a file just written can be "busy" for exec while tests
        // running beside this one fork.
        let script = directory + "/fake-lockstep"
        try Data(Self.script(directory: directory, death: death).utf8).write(to: URL(fileURLWithPath: script))
        var supervisor = CampaignSupervisor(
            executable: "/bin/sh",
            sessionArguments: { resume, _, result in [script, "fuzz", "--session-result", result] + (resume.map { ["--resume", $0.map(String.init).joined(separator: ",")] } ?? []) },
            runArguments: [script, "run", "--quiet"], findingsDirectory: directory, jobs: 2, runStep: 2, seconds: nil)
        supervisor.campaign = campaign
        return supervisor
    }

    static func temporaryDirectory() throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("lockstep-supervisor-\(UInt32.random(in: 0...UInt32.max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test func aTrapIsSavedShrunkAndTheCampaignResumesAfterIt() throws {
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var lines: [String] = []
        let result = try Self.supervisor(directory: directory).run { lines.append($0) }

        // One trap, counted once, saved as a corpus entry; the innocent program beside it is not a finding.
        #expect(result.findings.map(\.signature) == [.trap])
        let entry = try Corpus.read(try #require(result.findings[0].path))
        #expect(entry.recordedSignature == .trap)
        // Shrunk with child processes as the oracle: the buffer and the trapping call are all it needs.
        #expect(entry.program.calls.map(\.routine.name) == ["AllocateUserBuffer", "MmSizeOfMdl"])
        // Both sessions' counters add up, and the trap is counted as a failing run and as a program (it
        // ran, and is skipped after the restart; the innocent one is re-run and counted there).
        #expect(result.stats.programs == 7 + 10 + 1 && result.stats.findings == 1)
        // The trapping worker resumes after its program (4 + 2); the other re-runs the one it was on.
        let resumed = try String(contentsOfFile: directory + "/resumed-arguments", encoding: .utf8)
        #expect(resumed.contains("--resume 6,5"))
        #expect(lines.contains { $0.hasPrefix("trap: the campaign process died (signal 4, SIGILL) running run 4") })
    }

    /// A child killed from outside (SIGKILL: a signal the engine cannot raise) leaves programs in flight
    /// that are not traps, even one that would trap alone: the campaign stops, saves nothing. (SIGTERM
    /// and SIGINT are `.ci/kill-suite`'s: a test runner may ignore them, and children inherit that.)
    @Test func aChildKilledFromOutsideIsNoTrap() throws {
        let signal = "KILL"
        let directory = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var lines: [String] = []
        let result = try Self.supervisor(directory: directory, death: signal).run { lines.append($0) }
        #expect(result.findings.isEmpty)
        #expect(result.interruptedBy == SIGKILL)
        #expect(Corpus.files(directory).filter { $0.hasSuffix(".gz") }.isEmpty)
        #expect(InFlightRecord.leftBehind(in: directory, campaign: Self.campaign).isEmpty)
        #expect(lines.contains { $0.contains("not a trap") })
    }
}
