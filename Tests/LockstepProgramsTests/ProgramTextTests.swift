import LockstepPrograms
import Testing

@Suite struct ProgramTextTests {
    static let designExample = """
        # lockstep 1
        machine x86 ram=16M nonpaged=256K ptes=512
        fault pool.nonpaged nth=3
        b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
        m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
        MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
        v0 = MmGetSystemAddressForMdl(m0)
        MmUnlockPages(m0)
        IoFreeMdl(m0)

        """

    @Test func designExampleParsesToTheExpectedCalls() throws {
        let program = try ProgramText.parse(Self.designExample)
        #expect(program.machine.architecture == "x86")
        #expect(program.machine["ptes"] == "512")
        #expect(program.faults == [FaultLine(kind: "pool.nonpaged", settings: [Setting("nth", "3")])])
        #expect(program.calls.count == 6)
        #expect(program.calls[1] == Call("m0", .ioAllocateMdl, [
            .expression(.reference("b0", offset: 0x10)), .expression(.literal(0x2000)),
            .boolean(false), .boolean(false), .expression(.null)]))
        #expect(program.calls[2] == Call(nil, .mmProbeAndLockPages, [
            .expression(.reference("m0", offset: 0)), .symbol("KernelMode"), .symbol("IoWriteAccess")]))
    }

    @Test func theMachineLineNamesItsPageSize() throws {
        #expect(MachineLine(architecture: "x86").pageSize == 0x1000)
        #expect(MachineLine(architecture: "x64").pageSize == 0x1000)
        #expect(MachineLine(architecture: "alpha").pageSize == 0x2000)
        #expect(try ProgramText.parse("# lockstep 1\nmachine alpha mode=free\n").machine.pageSize == 0x2000)
    }

    @Test func canonicalTextIsAFixedPoint() throws {
        let program = try ProgramText.parse(Self.designExample)
        #expect(ProgramText.encode(program) == Self.designExample)
    }

    @Test func looseSpellingsParseToTheCanonicalProgram() throws {
        let loose = """

            # lockstep 1
            machine x86   ram=16M
            b0=AllocateUserBuffer( 12288 , ReadWrite )   # unlabeled, decimal
            m0 = IoAllocateMdl(b0+16, length=8192, false, false, NULL)
            """
        let program = try ProgramText.parse(loose)
        #expect(ProgramText.encode(program) == """
            # lockstep 1
            machine x86 ram=16M
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)

            """)
    }

    @Test func everyRoutineRoundTripsWithEveryArgumentShape() throws {
        // One call per routine, arguments chosen per kind, bound to fresh names.
        var calls: [Call] = [Call("b0", .allocateUserBuffer, [.expression(.literal(0x3000)), .symbol("ReadOnly")])]
        var counter = 1
        for routine in Routine.allCases {
            let arguments: [Argument] = routine.signature.parameters.enumerated().map { index, parameter in
                switch parameter.kind {
                case .boolean: return .boolean(index % 2 == 0)
                case .bytes: return .bytes(index % 2 == 0 ? [0x01, 0xA5, 0xFF] : [])
                case .handle: return .expression(index % 2 == 0 ? .reference("b0", offset: 0) : .null)
                case .address: return .expression(.reference("b0", offset: index % 2 == 0 ? 0x10 : -0x1001))
                case .length, .number: return .expression(.literal(UInt64(0xFFF + index)))
                default:
                    let symbols = parameter.kind.symbols!
                    return index % 3 == 2 ? .expression(.literal(7)) : .symbol(symbols[index % symbols.count])
                }
            }
            let result = routine.signature.result.map { "\($0.prefix)\(counter)" }
            counter += 1
            calls.append(Call(result, routine, arguments))
        }
        let program = Program(machine: MachineLine(architecture: "x64", settings: [Setting("mode", "free")]),
                              faults: [FaultLine(kind: "pagein", settings: [Setting("page", "b0+0x1000")])], calls: calls)
        let text = ProgramText.encode(program)
        #expect(try ProgramText.parse(text) == program)
    }

    @Test func vocabularyCoversTheTwentyOneRoutinesAndTheFourExtras() {
        let nt = Routine.allCases.filter(\.isNtRoutine).map(\.name)
        #expect(nt.count == 25)
        for name in ["HalTranslateBusAddress", "MmGetPhysicalAddress", "MmGetMdlVirtualAddress", "MmGetSystemAddressForMdl",
                     "MmBuildMdlForNonPagedPool", "MmGetMdlByteCount", "MmGetMdlByteOffset", "MmMapLockedPages",
                     "MmUnmapLockedPages", "MmIsAddressValid", "MmSizeOfMdl", "MmCreateMdl", "MmPrepareMdlForReuse",
                     "MmInitializeMdl", "MmMapIoSpace", "MmUnmapIoSpace", "MmProbeAndLockPages", "MmUnlockPages",
                     "IoAllocateMdl", "IoBuildPartialMdl", "IoFreeMdl", "MmGetSystemAddressForMdlSafe",
                     "MmMapLockedPagesSpecifyCache", "MmAllocatePagesForMdl", "MmFreePagesFromMdl"] {
            #expect(nt.contains(name), "\(name) missing from the vocabulary")
        }
    }

    // MARK: Errors name the line, the column and what was expected.

    private func parseError(_ text: String) -> ProgramParseError? {
        do { _ = try ProgramText.parse(text); return nil } catch { return error }
    }

    @Test func missingVersionLine() {
        #expect(parseError("machine x86\n")?.description == "line 1, column 1: expected '# lockstep 1' as the first line")
    }

    @Test func unsupportedVersion() {
        #expect(parseError("# lockstep 2\nmachine x86\n")?.description == "line 1, column 12: unsupported format version '2'; this lockstep reads version 1")
    }

    @Test func unknownRoutineSuggestsTheNtName() {
        let error = parseError("# lockstep 1\nmachine x86\nm0 = ioallocatemdl(none, 1, false, false, none)\n")
        #expect(error?.line == 3)
        #expect(error?.column == 6)
        #expect(error?.message == "unknown routine 'ioallocatemdl'; did you mean IoAllocateMdl?")
    }

    @Test func unboundNameIsReportedAtItsColumn() {
        let error = parseError("# lockstep 1\nmachine x86\nMmUnlockPages(m7)\n")
        #expect(error == ProgramParseError(line: 3, column: 15, "'m7' is not bound by an earlier call"))
    }

    @Test func wrongResultPrefixSaysWhatToName() {
        let error = parseError("# lockstep 1\nmachine x86\nb0 = IoAllocateIrp()\n")
        #expect(error?.message == "IoAllocateIrp binds an IRP; name it i<n>, e.g. i0")
    }

    @Test func wrongArityAndBadSymbols() {
        let base = "# lockstep 1\nmachine x86\nb0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)\nm0 = IoAllocateMdl(va=b0, length=0x10, secondary=false, quota=false, irp=none)\n"
        #expect(parseError(base + "MmProbeAndLockPages(m0, KernelMode)\n")?.message
                == "expected ',' and operation (MmProbeAndLockPages takes 3 arguments)")
        #expect(parseError(base + "MmUnlockPages(m0, m0)\n")?.message == "MmUnlockPages takes 1 argument")
        let bad = parseError(base + "MmProbeAndLockPages(m0, KernelMod, IoReadAccess)\n")
        #expect(bad?.line == 5)
        #expect(bad?.column == 25)
        #expect(bad?.message == "unknown mode 'KernelMod'; expected one of KernelMode, UserMode")
        #expect(parseError(base + "m1 = IoAllocateMdl(va=b0, size=0x10, secondary=false, quota=false, irp=none)\n")?.message
                == "expected length= (argument length of IoAllocateMdl), found 'size='")
        #expect(parseError(base + "m0 = IoAllocateMdl(va=b0, length=0x10, secondary=false, quota=false, irp=none)\n")?.message
                == "'m0' is already bound; every result gets a fresh name")
    }

    @Test func faultAfterCallsAndMissingMachineAreErrors() {
        #expect(parseError("# lockstep 1\nIoAllocateIrp()\n")?.message == "expected 'machine <x86|x64|alpha> key=value…' before the first call")
        #expect(parseError("# lockstep 1\nmachine x86\ni0 = IoAllocateIrp()\nfault ptes nth=1\n")?.line == 4)
    }
}
