import LockstepPrograms
import ReferenceModel
import Testing

/// Concrete cases from `shared/spec/NT_MDL_SEMANTICS.md` and `docs/ENGINE_CONVENTIONS.md`, checked on
/// the model alone. A small driver plays the kernel: it feeds the model the outcome the model itself
/// predicted, inventing plausible addresses for fresh objects and mappings (or taking them from `values`).
@Suite struct SpecCaseTests {
    /// Runs a program body on `machine` and returns every prediction, by call index.
    private func run(_ machine: String, _ body: String, values: [String: UInt64] = [:]) throws -> [Prediction] {
        let program = try ProgramText.parse("# lockstep 1\nmachine \(machine)\n" + body)
        let model = try ReferenceModel(program: program)
        var addresses = AddressBook(x64: program.machine.architecture == "x64")
        var result: [Prediction] = []
        for call in program.calls {
            let prediction = model.expect(call)
            result.append(prediction)
            let outcome = call.result.flatMap { values[$0] }.map { Outcome.returned(.number($0)) }
                ?? addresses.outcome(for: prediction)
            model.apply(call, observed: outcome)
        }
        return result
    }

    /// Invents the addresses a kernel would hand out.
    private struct AddressBook {
        let x64: Bool
        var counters: [String: UInt64] = [:]

        mutating func next(_ kind: String, base: UInt64, stride: UInt64) -> UInt64 {
            let index = counters[kind, default: 0]
            counters[kind] = index + 1
            return base + index * stride
        }

        mutating func outcome(for prediction: Prediction) -> Outcome {
            switch prediction {
            case .returns(.fresh(.buffer)): .returned(.number(next("buffer", base: 0x10000, stride: 0x10000)))
            case .returns(.fresh(_)): .returned(.number(next("pool", base: x64 ? 0xFFFF_FA80_0001_0000 : 0x8101_0000, stride: 0x10000)))
            case .returns(.systemMapping(_, let offset)):
                .returned(.number(next("system", base: x64 ? 0xFFFF_F880_0000_0000 : 0xC100_0000, stride: 0x10000) + offset))
            case .returns(.userMapping(_, let offset)): .returned(.number(next("user", base: 0x4000_0000, stride: 0x10000) + offset))
            case .returns(.ioSpaceMapping(let physical)):
                .returned(.number(next("io", base: 0xC180_0000, stride: 0x10000) + (physical & 0xFFF)))
            case .returns(.physicalAddressOf(_)): .returned(.number(next("physical", base: 0x40_0000, stride: 0x1000)))
            case .returns(.exactly(let n)): .returned(.number(n))
            case .returns(.boolean(let b)): .returned(.boolean(b))
            case .returns(.bytes(let d)): .returned(.bytes(d))
            case .returns(.null): .returned(.number(0))
            case .raises(let status): .raised(status: status)
            case .bugChecks(let code, _): .bugCheck(code: code, parameters: [0, 0, 0, 0])
            case .refused: .refused
            case .oneOf(let options): options.first.map { outcome(for: $0) } ?? .returned(.none)
            default: .returned(.none)
            }
        }
    }

    private static let mdl = "m0"
    private func verifier(_ subcode: UInt64, _ p2: ParameterPrediction, _ p3: ParameterPrediction, _ p4: ParameterPrediction) -> Prediction {
        .bugChecks(code: 0xC4, parameters: [.exactly(subcode), p2, p3, p4])
    }
    private let m0: ParameterPrediction = .valueOf(name: "m0", offset: 0)

    // MARK: MmProbeAndLockPages / MmUnlockPages

    @Test func probeReadOnlyForWriteRaisesAccessViolationAndReadSucceeds() throws {
        let p = try run("x86", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadOnly)
            m0 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoModifyAccess)
            MmProbeAndLockPages(m0, UserMode, IoReadAccess)
            """)
        #expect(p[2] == .raises(status: 0xC000_0005))
        #expect(p[3] == .returns(.none))
    }

    @Test func userModeProbeOfAKernelAddressRaisesAccessViolation() throws {
        let p = try run("x86", """
            p0 = ExAllocatePoolWithTag(NonPagedPool, size=0x100)
            m0 = IoAllocateMdl(va=p0, length=0x100, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, UserMode, IoReadAccess)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            """)
        #expect(p[2] == .raises(status: 0xC000_0005))
        #expect(p[3] == .returns(.none))   // kernel callers may lock kernel memory, even for write
    }

    @Test func lockLimitRaisesWorkingSetQuota() throws {
        let p = try run("x86 locklimit=2", """
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x3000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            """)
        #expect(p[2] == .raises(status: 0xC000_00A1))
    }

    @Test func verifierUnlockMisuseCodes() throws {
        let unlocked = try run("x86", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0+0x10, length=0x100, secondary=false, quota=false, irp=none)
            MmUnlockPages(m0)
            x0 = MmGetMdlByteCount(m0)
            """)
        #expect(unlocked[2] == verifier(0x7C, m0, .exactly(0x8), .exactly(0)))   // flags: ALLOCATED_FIXED_SIZE
        #expect(unlocked[3] == .refused)
        let nonpaged = try run("x86", """
            p0 = ExAllocatePoolWithTag(NonPagedPool, size=0x100)
            m0 = IoAllocateMdl(va=p0, length=0x100, secondary=false, quota=false, irp=none)
            MmBuildMdlForNonPagedPool(m0)
            MmUnlockPages(m0)
            """)
        #expect(nonpaged[3] == verifier(0x7D, m0, .exactly(0xC), .exactly(0)))
    }

    @Test func verifierRelockIsIncorrectFlags() throws {
        let p = try run("x86", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            """)
        // flags: FIXED_SIZE | PAGES_LOCKED | WRITE_OPERATION; offending: PAGES_LOCKED.
        #expect(p[3] == verifier(0xB0, m0, .exactly(0x8A), .exactly(0x2)))
    }

    @Test func checkedBuildAssertsWithAnyUndocumentedSite() throws {
        let p = try run("x86 mode=checked", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            """)
        #expect(p[3] == .bugChecks(code: 0x1E, parameters: [.exactly(0x8000_0003), .any, m0, .exactly(0x8A)]))
        let io = try run("x86 mode=checked", "MmUnmapIoSpace(0x0, length=0x1000)\n")
        #expect(io[0] == .bugChecks(code: 0x1E, parameters: [.exactly(0x8000_0003), .exactly(71), .exactly(0), .exactly(0x1000)]))
    }

    @Test func freeBuildDoesWhatTheAlgorithmDoes() throws {
        // No Verifier: unlocking a nonpaged-pool MDL is not checked; the PFN walk finds a page with no
        // lock reference (conventions: 0x4E/7 in every mode).
        let p = try run("x86 mode=free", """
            p0 = ExAllocatePoolWithTag(NonPagedPool, size=0x100)
            m0 = IoAllocateMdl(va=p0, length=0x100, secondary=false, quota=false, irp=none)
            MmBuildMdlForNonPagedPool(m0)
            MmUnlockPages(m0)
            """)
        #expect(p[2] == .returns(.none))
        #expect(p[3] == .bugChecks(code: 0x4E, parameters: [.exactly(7), .any, .any, .exactly(0)]))
    }

    // MARK: IoAllocateMdl versions

    @Test func ioAllocateMdlFieldsFollowTheMacros() throws {
        let p = try run("x86", """
            m0 = IoAllocateMdl(va=0x12345, length=0x0, secondary=false, quota=false, irp=none)
            x0 = MmGetMdlByteCount(m0)
            x1 = MmGetMdlByteOffset(m0)
            v0 = MmGetMdlVirtualAddress(m0)
            """)
        #expect(p[0] == .returns(.fresh(.mdl)))   // Length 0 is legal on Windows
        #expect(p[1] == .returns(.exactly(0)))
        #expect(p[2] == .returns(.exactly(0x345)))
        #expect(p[3] == .returns(.exactly(0x12345)))
    }

    @Test func ioAllocateMdlLengthLimitsPerVersion() throws {
        // NT 5.x: header + PFNs must fit 0xFFFF: 16376 pages (67,076,096 bytes aligned) fit, one byte more does not.
        let nt5 = try run("x86 version=5.1", """
            m0 = IoAllocateMdl(va=0x10000, length=67076096, secondary=false, quota=false, irp=none)
            m1 = IoAllocateMdl(va=0x10000, length=67076097, secondary=false, quota=false, irp=none)
            m2 = IoAllocateMdl(va=0x10001, length=67076096, secondary=false, quota=false, irp=none)
            """)
        #expect(nt5[0] != .returns(.null))
        #expect(nt5[1] == .returns(.null))
        #expect(nt5[2] == .returns(.null))
        // NT 6.0: Size unchecked but Length >= 2 GiB fails.
        let nt6 = try run("x86 version=6.0 nonpaged=64M", """
            m0 = IoAllocateMdl(va=0x0, length=0x80000000, secondary=false, quota=false, irp=none)
            m1 = IoAllocateMdl(va=0x0, length=0x7FFFFFFF, secondary=false, quota=false, irp=none)
            """)
        #expect(nt6[0] == .returns(.null))
        #expect(nt6[1] != .returns(.null))
        // NT 6.1: any ULONG length.
        let nt61 = try run("x86 version=6.1 nonpaged=64M", "m0 = IoAllocateMdl(va=0x0, length=0xFFFFFFFF, secondary=false, quota=false, irp=none)\n")
        #expect(nt61[0] != .returns(.null))
    }

    @Test func lookasideThresholdIs23PagesOnNT5And17OnNT6() throws {
        // A free build recycles the last freed fixed-size block; 23 pages are fixed-size only before NT 6.
        let body = """
            m0 = IoAllocateMdl(va=0x10000, length=0x17000, secondary=false, quota=false, irp=none)
            IoFreeMdl(m0)
            m1 = IoAllocateMdl(va=0x10000, length=0x17000, secondary=false, quota=false, irp=none)
            """
        let nt5 = try run("x86 mode=free version=5.1", body, values: ["m0": 0x8101_0000])
        #expect(nt5[2] == .returns(.exactly(0x8101_0000)))
        let nt6 = try run("x86 mode=free version=6.0", body, values: ["m0": 0x8101_0000])
        #expect(nt6[2] == .returns(.fresh(.mdl)))
        // Verifier bypasses the lookaside list.
        let verifier = try run("x86 version=5.1", body, values: ["m0": 0x8101_0000])
        #expect(verifier[2] == .returns(.fresh(.mdl)))
    }

    // MARK: Mapping

    @Test func systemMappingCarriesTheByteOffsetExceptBeforeSP4() throws {
        let body = """
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            v0 = MmMapLockedPages(m0, KernelMode)
            v1 = MmMapLockedPages(m0, UserMode)
            v2 = MmGetSystemAddressForMdl(m0)
            """
        let nt5 = try run("x86", body)
        #expect(nt5[3] == .returns(.systemMapping(mdl: "m0", byteOffset: 0x10)))
        #expect(nt5[4] == .returns(.userMapping(mdl: "m0", byteOffset: 0x10)))
        #expect(nt5[5] == .returns(.exactly(0xC100_0010)))   // MappedSystemVa, no second mapping
        let sp3 = try run("x86 version=4.0sp3", body)
        #expect(sp3[3] == .returns(.systemMapping(mdl: "m0", byteOffset: 0)))
        #expect(sp3[4] == .returns(.userMapping(mdl: "m0", byteOffset: 0)))
        #expect(sp3[5] == .returns(.exactly(0xC100_0010)))   // MappedSystemVa keeps the offset
    }

    @Test func verifierMappingChecks() throws {
        let p = try run("x86", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            v0 = MmMapLockedPages(m0, KernelMode)
            """)
        #expect(p[2] == verifier(0xB3, m0, .exactly(0x8), .exactly(0x2)))
        let twice = try run("x86", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            v0 = MmMapLockedPages(m0, KernelMode)
            v1 = MmMapLockedPages(m0, KernelMode)
            """)
        #expect(twice[4] == verifier(0xB2, m0, .exactly(0xB), .exactly(0x1)))
    }

    @Test func pteExhaustionBugChecksOrReturnsNull() throws {
        let body = """
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x3000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)

            """
        let safe = try run("x86 ptes=2", body + "v0 = MmGetSystemAddressForMdlSafe(m0, NormalPagePriority)\n")
        #expect(safe[3] == .returns(.null))
        let legacy = try run("x86 ptes=2", body + "v0 = MmGetSystemAddressForMdl(m0)\n")
        #expect(legacy[3] == .bugChecks(code: 0x3F, parameters: [.exactly(0), .exactly(3), .exactly(2), .exactly(2)]))
    }

    @Test func userMappingRequestedAddressChecks() throws {
        let body = """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)

            """
        let p = try run("x86", body + """
            v0 = MmMapLockedPagesSpecifyCache(m0, UserMode, MmCached, requested=0x7FFE0000, bugcheck=false, NormalPagePriority)
            v1 = MmMapLockedPagesSpecifyCache(m0, UserMode, MmCached, requested=0x7FFD0010, bugcheck=false, NormalPagePriority)
            v2 = MmMapLockedPagesSpecifyCache(m0, UserMode, MmCached, requested=0x10000, bugcheck=false, NormalPagePriority)
            v3 = MmMapLockedPagesSpecifyCache(m0, UserMode, MmCached, requested=0x7FFDF000, bugcheck=false, NormalPagePriority)
            """, values: ["b0": 0x10000])
        #expect(p[3] == .raises(status: 0xC000_0141))   // past MM_HIGHEST_VAD_ADDRESS
        #expect(p[4] == .raises(status: 0xC000_0141))   // not page aligned
        #expect(p[5] == .raises(status: 0xC000_0018))   // the buffer is there
        #expect(p[6] == .returns(.userMapping(mdl: "m0", byteOffset: 0)))
    }

    @Test func unmapMisuseUnderVerifier() throws {
        let p = try run("x86", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            MmUnmapLockedPages(0x30000, m0)
            """)
        #expect(p[3] == verifier(0xB9, .exactly(0x30000), m0, .exactly(0)))
        let system = try run("x86", """
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoReadAccess)
            MmUnmapLockedPages(0xC1000000, m0)
            """)
        #expect(system[3] == verifier(0xB6, m0, .exactly(0xA), .exactly(0x1)))
    }

    // MARK: Memory contents through aliases

    @Test func bytesWrittenThroughTheUserVaReadBackThroughEveryAlias() throws {
        let p = try run("x86", """
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            WriteMemory(b0+0x1010, data=A1B2C3)
            m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            v0 = MmGetSystemAddressForMdlSafe(m0, NormalPagePriority)
            d0 = ReadMemory(v0+0x1000, length=0x3)
            WriteMemory(v0, data=55)
            d1 = ReadMemory(b0+0x10, length=0x1)
            a0 = MmGetPhysicalAddress(b0+0x1010)
            v1 = MmMapIoSpace(pa=a0, length=0x3, MmNonCached)
            d2 = ReadMemory(v1, length=0x3)
            """, values: ["v0": 0xC100_0010, "a0": 0x40_1010])
        #expect(p[5] == .returns(.bytes([0xA1, 0xB2, 0xC3])))
        #expect(p[7] == .returns(.bytes([0x55])))
        #expect(p[8] == .returns(.physicalAddressOf(.reference("b0", offset: 0x1010))))
        #expect(p[10] == .returns(.bytes([0xA1, 0xB2, 0xC3])))
    }

    @Test func pageOutAndPageInKeepTheBytes() throws {
        let p = try run("x64", """
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            WriteMemory(b0+0x20, data=0A0B)
            x0 = PageOut(b0)
            x1 = MmIsAddressValid(b0)
            d0 = ReadMemory(b0+0x20, length=0x2)
            """)
        #expect(p[2] == .returns(.boolean(true)))
        #expect(p[3] == .returns(.boolean(false)))
        #expect(p[4] == .returns(.bytes([0x0A, 0x0B])))
    }

    // MARK: Partial MDLs

    @Test func partialMdlRangeChecksFollowTheVersion() throws {
        let body = """
            p0 = ExAllocatePoolWithTag(NonPagedPool, size=0x2000)
            m0 = IoAllocateMdl(va=p0, length=0x2000, secondary=false, quota=false, irp=none)
            MmBuildMdlForNonPagedPool(m0)
            m1 = IoAllocateMdl(va=p0, length=0x1000, secondary=false, quota=false, irp=none)
            IoBuildPartialMdl(m0, m1, va=p0+0x1800, length=0x1000)

            """
        let nt6 = try run("x86 version=6.0", body)
        #expect(nt6[4] == .bugChecks(code: 0x12E, parameters: [m0, .valueOf(name: "m1", offset: 0), .valueOf(name: "p0", offset: 0x1800),
                                                                .exactly(0x1000)]))
        // NT 5.1 has no range check; the target (Size for one page) is too small for the two pages spanned.
        let nt5 = try run("x86 version=5.1", body)
        #expect(nt5[4] == .bugChecks(code: 0x40, parameters: [.exactly(0), .exactly(0), .exactly(0), .exactly(0)]))
    }

    @Test func partialMdlInheritsFlagsAndItsOwnMappingIsReleasedOnFree() throws {
        let p = try run("x86", """
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x3000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            m1 = IoAllocateMdl(va=b0+0x1000, length=0x1000, secondary=false, quota=false, irp=none)
            IoBuildPartialMdl(m0, m1, va=b0+0x1000, length=0x0)
            x0 = MmGetMdlByteCount(m1)
            v0 = MmGetSystemAddressForMdlSafe(m1, NormalPagePriority)
            MmUnlockPages(m1)
            """)
        #expect(p[4] == .bugChecks(code: 0x40, parameters: [.exactly(0), .exactly(0), .exactly(0), .exactly(0)]))
        let ok = try run("x86", """
            b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x3000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            m1 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
            IoBuildPartialMdl(m0, m1, va=b0+0x1000, length=0x0)
            x0 = MmGetMdlByteCount(m1)
            v0 = MmGetSystemAddressForMdlSafe(m1, NormalPagePriority)
            MmUnlockPages(m1)
            """)
        #expect(ok[4] == .returns(.none))
        #expect(ok[5] == .returns(.exactly(0x2000)))   // Length 0: to the end of the source
        #expect(ok[6] == .returns(.systemMapping(mdl: "m1", byteOffset: 0)))
        #expect(ok[7] == verifier(0xB4, .valueOf(name: "m1", offset: 0), .exactly(0x39), .exactly(0x10)))
    }

    // MARK: Robustness

    @Test func machineLinesTheModelCannotFollowAreErrors() throws {
        for line in ["mips", "x86 mode=paranoid", "x86 version=3.51", "x86 ram=99999999999G", "x86 ram=lots"] {
            #expect(throws: ModelError.self) { try ReferenceModel(program: ProgramText.parse("# lockstep 1\nmachine \(line)\n")) }
        }
    }

    @Test func extremeArgumentsDoNotTrap() throws {
        let p = try run("x86 mode=free", """
            a0 = HalTranslateBusAddress(0xFFFFFFFFFFFFFFFF, bus=0xFFFFFFFF, address=0xFFFFFFFFFFFFFFFF, space=0x0)
            p0 = ExAllocatePoolWithTag(NonPagedPool, size=0xFFFFFFFFFFFFFFFF)
            x0 = MmSizeOfMdl(va=0xFFFFFFFF, length=0xFFFFFFFFFFFFFFFF)
            v0 = MmMapIoSpace(pa=0xFFFFFFFFFFFFF000, length=0xFFFFFFFF, MmCached)
            b0 = AllocateUserBuffer(size=0xFFFFFFFFFFFFFFFF, protect=ReadWrite)
            m0 = IoAllocateMdl(va=0xFFFFFFFF, length=0xFFFFFFFF, secondary=true, quota=true, irp=none)
            d0 = ReadMemory(0xFFFFFFFF, length=0xFFFFFFFFFFFFFFFF)
            """)
        #expect(p[0] == .returns(.boolean(false)))
        #expect(p[1] == .returns(.null))
        #expect(p[3] == .returns(.null))   // the span wraps to 0 pages: nothing to map
        #expect(p[4] == .returns(.null))
        // x86: the span wraps to 1 page (spec §1.4), but NT 5.x refuses any Length of 2 GiB or more ([SERGE]).
        #expect(p[5] == .returns(.null))
        #expect(p[6] == .bugChecks(code: 0x50, parameters: [.exactly(0xFFFF_FFFF), .exactly(0), .exactly(0), .exactly(0)]))
    }
}
