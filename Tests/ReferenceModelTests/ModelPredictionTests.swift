import LockstepPrograms
import ReferenceModel
import Testing

/// The model's predictions on their own, against the spec: each step feeds the model what a correct
/// kernel would return, and checks what the model predicted for the call that matters.
@Suite struct ModelPredictionTests {
    /// Runs `text` through the model; `observed` gives each call's outcome by result name (default: a
    /// plain return); returns every prediction.
    private func predictions(_ text: String, observed: [String: Outcome] = [:]) throws -> [Prediction] {
        let program = try ProgramText.parse(text)
        let model = try ReferenceModel(program: program)
        var result: [Prediction] = []
        for call in program.calls {
            let prediction = model.expect(call)
            result.append(prediction)
            let outcome: Outcome
            if let name = call.result, let given = observed[name] {
                outcome = given
            } else {
                switch prediction {
                case .raises(let status): outcome = .raised(status: status)
                case .bugChecks(let code, _): outcome = .bugCheck(code: code, parameters: [0, 0, 0, 0])
                case .returns(.boolean(let b)): outcome = .returned(.boolean(b))
                case .returns(.exactly(let n)): outcome = .returned(.number(n))
                case .returns(.bytes(let d)): outcome = .returned(.bytes(d))
                default: outcome = .returned(.none)
                }
            }
            model.apply(call, observed: outcome)
        }
        return result
    }

    static let header = """
        # lockstep 1
        machine x86
        b0 = AllocateUserBuffer(size=0x3000, protect=ReadOnly)
        m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)

        """
    static let observed: [String: Outcome] = ["b0": .returned(.number(0x1_0000)), "m0": .returned(.number(0x8100_0100))]

    @Test func mdlFieldsFollowTheMacros() throws {
        let p = try predictions(Self.header + "x0 = MmGetMdlByteCount(m0)\nx1 = MmGetMdlByteOffset(m0)\nv0 = MmGetMdlVirtualAddress(m0)\nx2 = MmSizeOfMdl(va=0x10010, length=0x2000)\n",
                                observed: Self.observed)
        #expect(p[1] == .returns(.fresh(.mdl)))
        #expect(p[2] == .returns(.exactly(0x2000)))
        #expect(p[3] == .returns(.exactly(0x10)))
        #expect(p[4] == .returns(.exactly(0x1_0010)))
        #expect(p[5] == .returns(.exactly(28 + 4 * 3)))
    }

    @Test func writeLockOfAReadOnlyBufferRaisesAccessViolation() throws {
        let p = try predictions(Self.header + "MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)\nMmProbeAndLockPages(m0, KernelMode, IoReadAccess)\n",
                                observed: Self.observed)
        #expect(p[2] == .raises(status: 0xC000_0005))
        #expect(p[3] == .returns(.none))
    }

    @Test func verifierUnlockOfAnUnlockedMdlAndThenEverythingIsRefused() throws {
        let p = try predictions(Self.header + "MmUnlockPages(m0)\nx0 = MmGetMdlByteCount(m0)\n", observed: Self.observed)
        #expect(p[2] == .bugChecks(code: 0xC4, parameters: [.exactly(0x7C), .valueOf(name: "m0", offset: 0), .exactly(0x0008), .exactly(0)]))
        #expect(p[3] == .refused)
    }

    @Test func mappingsCarryTheByteOffsetAndUnlockReleasesThem() throws {
        let text = """
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            WriteMemory(b0+0x10, data=CAFE)
            m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            v0 = MmGetSystemAddressForMdl(m0)
            d0 = ReadMemory(v0, length=0x2)
            v1 = MmGetSystemAddressForMdl(m0)
            MmUnlockPages(m0)
            x0 = MmIsAddressValid(v0)
            """
        var observed = Self.observed
        observed["v0"] = .returned(.number(0xC100_0010))
        observed["v1"] = .returned(.number(0xC100_0010))
        let p = try predictions(text, observed: observed)
        #expect(p[4] == .returns(.systemMapping(mdl: "m0", byteOffset: 0x10)))
        #expect(p[5] == .returns(.bytes([0xCA, 0xFE])))
        #expect(p[6] == .returns(.exactly(0xC100_0010)))      // the existing mapping, not a new one
        #expect(p[8] == .returns(.boolean(false)))             // MmUnlockPages unmapped it
    }

    @Test func pagedOutPagesAreInvalidButKeepTheirBytes() throws {
        let text = """
            # lockstep 1
            machine x64
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            WriteMemory(b0+0x1000, data=0102)
            x0 = TrimWorkingSet(8)
            x1 = MmIsAddressValid(b0+0x1000)
            d0 = ReadMemory(b0+0x1000, length=0x2)
            x2 = MmIsAddressValid(b0+0x1000)
            """
        let p = try predictions(text, observed: ["b0": .returned(.number(0x1_0000))])
        #expect(p[2] == .returns(.exactly(1)))
        #expect(p[3] == .returns(.boolean(false)))
        #expect(p[4] == .returns(.bytes([1, 2])))
        #expect(p[5] == .returns(.boolean(true)))
    }

    @Test func ioAllocateMdlLimitsFollowTheVersion() throws {
        let nt5 = try predictions("# lockstep 1\nmachine x86 version=5.1\nm0 = IoAllocateMdl(va=0x10000, length=0x3FF8001, secondary=false, quota=false, irp=none)\n")
        #expect(nt5[0] == .returns(.null))   // 16377 pages: 28 + 4 * 16377 > 0xFFFF
        let vista = try predictions("# lockstep 1\nmachine x86 version=6.0\nm0 = IoAllocateMdl(va=0x0, length=0x80000000, secondary=false, quota=false, irp=none)\n")
        #expect(vista[0] == .returns(.null))
    }

    @Test func halTranslationTable() throws {
        let p = try predictions("""
            # lockstep 1
            machine x86
            a0 = HalTranslateBusAddress(PCIBus, bus=0x1, address=0x40000010, space=0x0)
            a1 = HalTranslateBusAddress(Isa, bus=0x0, address=0x3F8, space=0x1)
            a2 = HalTranslateBusAddress(MicroChannel, bus=0x0, address=0x1000, space=0x0)
            a3 = HalTranslateBusAddress(PCIBus, bus=0x2, address=0x1000, space=0x0)
            """)
        #expect(p[0] == .returns(.translated(address: 0xF010_0010, space: 0)))
        #expect(p[1] == .returns(.translated(address: 0x3F8, space: 1)))
        #expect(p[2] == .returns(.boolean(false)))
        #expect(p[3] == .returns(.boolean(false)))
    }

    @Test func processExitWithLockedPagesOnAFreeBuild() throws {
        let text = """
            # lockstep 1
            machine x86 mode=free
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            x0 = TerminateProcess(8)
            """
        let p = try predictions(text, observed: ["b0": .returned(.number(0x1_0000)), "m0": .returned(.number(0x8100_0100))])
        #expect(p[3] == .bugChecks(code: 0x76, parameters: [.exactly(0), .any, .exactly(2), .exactly(0)]))
    }

    @Test func faultPlansAreFollowedAndUnknownKindsRefused() throws {
        #expect(throws: ModelError.self) {
            try ReferenceModel(program: ProgramText.parse("# lockstep 1\nmachine x86\nfault disk nth=1\n"))
        }
        let p = try predictions("# lockstep 1\nmachine x86\nfault pool.nonpaged nth=2\ni0 = IoAllocateIrp()\ni1 = IoAllocateIrp()\n",
                                observed: ["i0": .returned(.number(0x8100_0000))])
        #expect(p[0] == .returns(.fresh(.irp)))
        #expect(p[1] == .returns(.null))
    }
}
