import LockstepPrograms
import ReferenceModel
import Testing

/// The four per-version Windows facts of docs/CONFORMANCE.md, predicted by the model alone: each step
/// feeds the model the outcome it predicted (with plausible addresses for fresh blocks), and the test
/// reads the predictions and the model's own description of the MDL.
@Suite struct ModelVersionFactsTests {
    /// Runs `body` on `machine`; returns the model and every prediction.
    private func run(_ machine: String, _ body: String, values: [String: UInt64] = [:]) throws -> (model: ReferenceModel, predictions: [Prediction]) {
        let program = try ProgramText.parse("# lockstep 1\nmachine \(machine)\n" + body)
        let model = try ReferenceModel(program: program)
        var predictions: [Prediction] = []
        var nextPool: UInt64 = 0x8101_0000
        var nextBuffer: UInt64 = 0x1_0000
        func outcome(_ prediction: Prediction) -> Outcome {
            switch prediction {
            case .returns(.fresh(.buffer)): defer { nextBuffer += 0x1_0000 }; return .returned(.number(nextBuffer))
            case .returns(.fresh(_)): defer { nextPool += 0x1_0000 }; return .returned(.number(nextPool))
            case .returns(.exactly(let n)): return .returned(.number(n))
            case .returns(.boolean(let b)): return .returned(.boolean(b))
            case .returns(.null): return .returned(.number(0))
            case .raises(let status): return .raised(status: status)
            case .bugChecks(let code, _): return .bugCheck(code: code, parameters: [0, 0, 0, 0])
            case .oneOf(let options): return options.first.map(outcome) ?? .returned(.none)
            default: return .returned(.none)
            }
        }
        for call in program.calls {
            let prediction = model.expect(call)
            predictions.append(prediction)
            model.apply(call, observed: call.result.flatMap { values[$0] }.map { .returned(.number($0)) } ?? outcome(prediction))
        }
        return (model, predictions)
    }

    private func allocate(_ va: UInt64, _ length: UInt64) -> String {
        "m0 = IoAllocateMdl(va=0x\(String(va, radix: 16)), length=0x\(String(length, radix: 16)), secondary=false, quota=false, irp=none)\n"
    }

    // MARK: 1. IoAllocateMdl, Length 0xFFFFF000-0xFFFFFFFF

    @Test(arguments: ["5.1", "6.0"])
    func ioAllocateMdlNearFourGiBIsNullOn5xAnd60(version: String) throws {
        for va: UInt64 in [0, 1, 0x0F0F_FB2F, 0xFFFF_FFFF] {
            for length: UInt64 in [0xFFFF_F000, 0xFFFF_F001, 0xFFFF_FFFF] {
                let (_, p) = try run("x86 nonpaged=24M ram=48M mode=free version=\(version)", allocate(va, length))
                #expect(p[0] == .returns(.null), "va \(va) length \(length)")
            }
        }
    }

    @Test func ioAllocateMdlWrappedSpanIsAPoolMdlOn61AndFixedSizeFrom62() throws {
        for (version, flags) in [("6.1", "MdlFlags=0x0 "), ("6.2", "MdlFlags=0x8 "), ("10.0", "MdlFlags=0x8 ")] {
            let (model, p) = try run("x86 mode=free version=\(version)", allocate(1, 0xFFFF_F000))
            #expect(p[0] == .returns(.fresh(.mdl)))
            let description = try #require(model.describe("m0"))
            #expect(description.contains(flags), "\(version): \(description)")
            #expect(description.contains("Size=28 "))
        }
        // An aligned 0xFFFFF000 does not wrap (0xFFFFF pages): a 4 MiB pool MDL on every version from 6.1.
        let (model, p) = try run("x86 nonpaged=24M ram=48M mode=free version=6.2", allocate(0, 0xFFFF_F000))
        #expect(p[0] == .returns(.fresh(.mdl)))
        #expect(try #require(model.describe("m0")).contains("MdlFlags=0x0 "))
    }

    // MARK: 2. IoFreeMdl twice on a fixed-size MDL

    @Test(arguments: ["4.0", "5.1", "6.0", "6.1", "10.0"], ["free", "checked"])
    func ioFreeMdlTwiceIsTheHangBugCheck(version: String, mode: String) throws {
        let (_, p) = try run("x86 mode=\(mode) version=\(version)", allocate(0x0F0F_FB2E, 1234) + "IoFreeMdl(m0)\nIoFreeMdl(m0)\nx0 = MmSizeOfMdl(va=0, length=1)\n")
        #expect(p[1] == .returns(.none))
        #expect(p[2] == .bugChecks(code: 0xE2, parameters: [.exactly(0), .exactly(0), .valueOf(name: "m0", offset: 0), .exactly(0)]))
        #expect(p[3] == .refused)
    }

    // MARK: 3. MmBuildMdlForNonPagedPool on an untouched paged-pool page

    /// The paged-pool block's address (the model does not predict where pool blocks go).
    static let paged: [String: UInt64] = ["p0": 0xE100_0000]

    private let untouchedPaged = """
        p0 = ExAllocatePoolWithTag(PagedPool, size=0x1000)
        m0 = IoAllocateMdl(va=p0, length=0x1000, secondary=false, quota=false, irp=none)
        MmBuildMdlForNonPagedPool(m0)
        v0 = MmGetSystemAddressForMdlSafe(m0, NormalPagePriority)

        """

    @Test(arguments: ["5.1", "6.0", "6.1"])
    func mmBuildMdlForNonPagedPoolOnUntouchedPagedPoolReturnsUpTo61(version: String) throws {
        let (model, p) = try run("x86 mode=free version=\(version)", untouchedPaged, values: Self.paged)
        #expect(p[2] == .returns(.none))
        #expect(p[3] == .returns(.exactly(0xE100_0000)))       // MappedSystemVa: the buffer itself
        #expect(try #require(model.describe("m0")).contains("MdlFlags=0xC "))   // FIXED_SIZE | SOURCE_IS_NONPAGED_POOL
        let (_, verifier) = try run("x86 mode=verifier version=\(version)", untouchedPaged, values: Self.paged)
        #expect(verifier[2] == .bugChecks(code: 0xC4, parameters: [.exactly(0x7F), .exactly(0), .valueOf(name: "m0", offset: 0), .exactly(0x8)]))
    }

    @Test func mmBuildMdlForNonPagedPoolOnUntouchedPagedPoolAssertsOn62CheckedAndIs1A1240On100() throws {
        let (_, checked) = try run("x86 mode=checked version=6.2", untouchedPaged, values: Self.paged)
        #expect(checked[2] == .bugChecks(code: 0x1E, parameters: [.exactly(0x8000_0003), .any, .valueOf(name: "m0", offset: 0), .exactly(0x8)]))
        let (_, free62) = try run("x86 mode=free version=6.2", untouchedPaged, values: Self.paged)
        #expect(free62[2] == .returns(.none))
        for mode in ["free", "verifier"] {
            let (_, p) = try run("x86 mode=\(mode) version=10.0", untouchedPaged, values: Self.paged)
            #expect(p[2] == .bugChecks(code: 0x1A, parameters: [.exactly(0x1240), .valueOf(name: "m0", offset: 0), .exactly(0xE100_0000), .exactly(0)]))
        }
    }

    // MARK: 4. Process end with locked pages under Driver Verifier

    private let lockedAtExit = """
        b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
        m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
        MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
        x0 = TerminateProcess(8)

        """

    @Test func processExitWithLockedPagesUnderVerifierIs76On5xAndCBFrom60() throws {
        for version in ["4.0", "5.1"] {
            let (_, p) = try run("x86 mode=verifier version=\(version)", lockedAtExit)
            #expect(p[3] == .bugChecks(code: 0x76, parameters: [.exactly(0), .any, .exactly(2), .exactly(0)]), "\(version)")
        }
        for version in ["6.0", "6.1", "6.2", "10.0"] {
            let (_, p) = try run("x86 mode=verifier version=\(version)", lockedAtExit)
            #expect(p[3] == .bugChecks(code: 0xCB, parameters: [.exactly(0), .exactly(0), .any, .exactly(2)]), "\(version)")
        }
    }
}
