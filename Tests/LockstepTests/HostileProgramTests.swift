import Lockstep
import LockstepPrograms
import MemoryManager
import Testing

/// Every parsable program runs without a trap or a hang (issue 14, parts 6 and 7). Each program here
/// trapped (Swift overflow), hung or was quadratic before its fix; a trap kills this test process and a
/// hang never ends, so the tests assert only that the run ends, with the verdict it has now.
@Suite struct HostileProgramTests {
    private func run(_ lines: String...) -> (TextFuzzLog.Status, String) {
        TextFuzzWorker.run((["# lockstep 1"] + lines).joined(separator: "\n"))
    }

    // MARK: Page arithmetic at the top of the address space (was `x &+ pageSize - 1`, a checked subtraction)

    @Test func unmapIoSpaceOfAHugeLength() {
        let (status, signature) = run("machine x64", "MmUnmapIoSpace(0xF0000000, length=0xFFFFFFFFFFFFF000)")
        #expect(status == .pass || status == .fail, "\(signature)")
    }

    @Test func protectUserBufferInTheLastPage() {
        let (status, _) = run("machine x64", "b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)",
                              "x0 = ProtectUserBuffer(0xFFFFFFFFFFFFF000, size=0x0, protect=ReadOnly)",
                              "x1 = ProtectUserBuffer(0xFFFFFFFFFFFFF000, size=0x1, protect=ReadOnly)")
        #expect(status == .pass)
    }

    @Test(arguments: ["machine x64", "machine x86", "machine alpha"])
    func mdlRoutinesOfHugeLengths(_ machine: String) {
        let (status, signature) = run(machine,
                                      "x0 = MmSizeOfMdl(0xFFFFFFFFFFFFF000, length=0xFFFFFFFFFFFFF000)",
                                      "x1 = MmSizeOfMdl(0x1, length=0xFFFFFFFFFFFFFFFF)",
                                      "m0 = MmCreateMdl(none, 0xFFFFFFFFFFFFF000, length=0xFFFFFFFFFFFFF000)",
                                      "v0 = MmMapIoSpace(pa=0xFFFFFFFFFFFFF000, length=0xFFFFFFFFFFFFF000, MmNonCached)",
                                      "v1 = MmMapIoSpace(pa=0xF0000000, length=0xFFFFFFFFFFFFF001, MmNonCached)")
        #expect(status == .pass || status == .fail, "\(signature)")
    }

    @Test func pageArithmeticWrapsInPointerWidth() {
        let x64 = MachineConfiguration(architecture: .x64).constants
        #expect(x64.roundToPages(0xFFFF_FFFF_FFFF_F000) == 0xFFFF_FFFF_FFFF_F000)   // the sum wraps to 0 before the -1
        #expect(x64.roundToPages(0xFFFF_FFFF_FFFF_F001) == 0)
        #expect(x64.spanPages(0xFFF, 0xFFFF_FFFF_FFFF_F002) == 1)
        let x86 = MachineConfiguration(architecture: .x86).constants
        #expect(x86.roundToPages(0xFFFF_F001) == 0)
    }

    /// The checker's record of I/O mappings (`forgetIoMappings`): a length of 2^43 from the top of system space.
    @Test func checkerForgetsIoMappingsOfAHugeRange() {
        let (status, signature) = run("machine x64 mode=free", "MmUnmapIoSpace(0xFFFFF80000000000, length=0x80000000000)")
        #expect(status == .pass || status == .fail, "\(signature)")
    }

    // MARK: Hangs

    /// A handle argument past 2^32 on a 32-bit machine once walked 2^20 pages per 2^32 in `forgetShadow`.
    @Test(arguments: ["machine x86", "machine alpha"])
    func handleArgumentPast32BitsAfterAWrite(_ machine: String) {
        let (status, signature) = run(machine, "b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)", "WriteMemory(b0, data=5A)",
                                      "x0 = TrimWorkingSet(0x8000000000000000)", "x1 = TrimWorkingSet(0xFFFFFFFFFFFFFFFF)")
        #expect(status == .pass || status == .fail, "\(signature)")
    }

    @Test func trailingBlanksParseInLinearTime() throws {
        let blanks = String(repeating: " ", count: 128 << 10)
        let program = try ProgramText.parse("# lockstep 1\nmachine x86" + blanks + "\nb0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)" + blanks + "\n")
        #expect(program.calls.count == 1)
    }

    @Test func manyMachineSettingsParseInLinearTime() throws {
        let settings = Array(repeating: "ptes=512", count: 100_000).joined(separator: " ")
        let program = try ProgramText.parse("# lockstep 1\nmachine x86 " + settings + "\n")
        #expect(program.machine.settings.count == 100_000)
    }

    /// An 8 MiB token is quoted by its start and length, not whole.
    @Test(arguments: ["b0 = AllocateUserBuffer(size=0x1000, protect=%)", "%(b0)"])
    func hugeTokenIsNotQuotedWhole(_ template: String) {
        let token = String(repeating: "R", count: 8 << 20)
        let line = template.replacingOccurrences(of: "%", with: token)
        do {
            _ = try ProgramText.parse("# lockstep 1\nmachine x86\n" + line + "\n")
            Issue.record("parsed")
        } catch {
            #expect(error.message.utf8.count < 400)
        }
    }

    @Test func hugeMachineValueIsNotQuotedWhole() {
        let (status, _) = run("machine x86 ram=" + String(repeating: "1", count: 1 << 20))
        #expect(status == .setupError)
        #expect(throws: ConfigurationError.self) { try MachineConfiguration(parsing: "machine x86 ram=" + String(repeating: "1", count: 1 << 20)) }
        do { _ = try MachineConfiguration(parsing: "machine x86 ram=" + String(repeating: "1", count: 1 << 20)) } catch {
            #expect(error.message.utf8.count < 400)
        }
    }

    // MARK: Host memory

    /// Twelve buffers of 2 × RAM each once took 1.4 GiB of host page tables; the commit limit is now
    /// system-wide (2 × RAM for all buffers together), so only the first is granted.
    @Test func userBuffersShareOneCommitLimit() throws {
        let program = try ProgramText.parse((["# lockstep 1", "machine x86 ram=16M"]
            + (0..<12).map { "b\($0) = AllocateUserBuffer(size=0x1FFF000, protect=ReadWrite)" }).joined(separator: "\n"))
        let kernel = try Execution.boot(program)
        let report = Execution().run(program, kernel: kernel)
        #expect(report.verdict.isPass)
        let granted = report.steps.filter { if case .returned(.number(let va)) = $0.outcome { va != 0 } else { false } }
        #expect(granted.count == 1)
    }
}
