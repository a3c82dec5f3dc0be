import LockstepPrograms
import Testing

/// Arguments by parameter name, and the one reading of each argument kind both sides share.
@Suite struct CallArgumentsTests {
    private func call(_ line: String, bindings: [String: UInt64] = [:]) throws -> Call {
        let setup = "b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)\nm0 = IoAllocateMdl(va=b0, length=0x10, secondary=false, quota=false, irp=none)\n"
        return try ProgramText.parse("# lockstep 1\nmachine x86\n" + setup + line + "\n").calls.last!
    }

    private func read(_ line: String, bindings: [String: UInt64] = ["b0": 0x1_0000, "m0": 0x8100_0500], mask: UInt64 = 0xFFFF_FFFF) throws -> CallArguments {
        CallArguments(try call(line), bindings: bindings, mask: mask)
    }

    @Test func everySignatureNamesEachParameterOnce() {
        for routine in Routine.allCases {
            let labels = routine.signature.parameters.map(\.label)
            #expect(Set(labels).count == labels.count, "\(routine.name): \(labels)")
        }
    }

    @Test func argumentsAreFoundByTheirParameterName() throws {
        let call = try call("IoBuildPartialMdl(m0, m0, va=b0+0x10, length=0x8)")
        #expect(call.argument(named: "source") == .expression(.reference("m0", offset: 0)))
        #expect(call.argument(named: "va") == .expression(.reference("b0", offset: 0x10)))
        #expect(call["length"] == .expression(.literal(8)))
    }

    @Test func aNameNotInTheSignatureIsNil() throws {
        let call = try call("IoBuildPartialMdl(m0, m0, va=b0+0x10, length=0x8)")
        #expect(call.argument(named: "mdl") == nil)
        #expect(call.argument(named: "Length") == nil)
        #expect(call[""] == nil)
        // A hand-built call short of arguments: the missing ones are nil too.
        #expect(Call(nil, .ioBuildPartialMdl, [.expression(.null)]).argument(named: "target") == nil)
    }

    @Test func numbersEvaluateUnderTheBindingsGivenAndWrapToThePointerWidth() throws {
        let arguments = try read("IoBuildPartialMdl(m0, m0, va=b0-0x10, length=0x8)", bindings: ["b0": 0x8, "m0": 0x8100_0500])
        #expect(arguments.number("va") == 0xFFFF_FFF8)
        #expect(arguments.number("length") == 8)
        #expect(arguments.number("source") == 0x8100_0500)
        #expect(arguments.expression("va") == .reference("b0", offset: -0x10))
        let wide = CallArguments(arguments.call, bindings: ["b0": 0x8], mask: .max)
        #expect(wide.number("va") == 0xFFFF_FFFF_FFFF_FFF8)
        // Names no call bound read 0.
        #expect(CallArguments(arguments.call, bindings: [:], mask: .max).number("source") == 0)
    }

    @Test func flagsAndTheKindsThatReadAsNumbers() throws {
        let allocate = try read("m1 = IoAllocateMdl(va=b0, length=0x10, secondary=true, quota=false, irp=none)")
        #expect(allocate.flag("secondary") && !allocate.flag("quota"))
        #expect(allocate.number("secondary") == 1 && allocate.number("irp") == 0)
        let map = try read("v0 = MmMapLockedPagesSpecifyCache(m0, KernelMode, MmCached, requested=none, bugcheck=true, NormalPagePriority)")
        #expect(map.flag("bugcheck"))
        // A BOOLEAN given as a number (hand-built; the parser wants true or false) is any nonzero value.
        let numeric = Call(nil, .ioAllocateMdl, [.expression(.null), .expression(.literal(0)), .expression(.literal(0x1_0000_0000)),
                                                 .boolean(false), .expression(.null)])
        #expect(CallArguments(numeric, bindings: [:], mask: .max).flag("secondary"))
        #expect(map.number("mode") == 0 && map.symbol("mode") == "KernelMode")   // a symbol is no number
        #expect(map.symbol("requested") == nil)
    }

    @Test(arguments: [("KernelMode", false), ("UserMode", true), ("0x0", false), ("0x1", true), ("0x100", true), ("0x100000000", true)])
    func processorMode(written: String, user: Bool) throws {
        let arguments = try read("v0 = MmMapLockedPages(m0, \(written))")
        #expect((arguments.processorMode("mode") == .userMode) == user)
    }

    @Test(arguments: [("IoReadAccess", CallArguments.LockOperation.ioReadAccess), ("IoWriteAccess", .ioWriteAccess),
                      ("IoModifyAccess", .ioModifyAccess), ("0", .ioReadAccess), ("1", .ioWriteAccess), ("2", .ioModifyAccess),
                      ("3", .ioModifyAccess), ("0x100", .ioModifyAccess), ("0xFFFFFFFFFFFFFFFF", .ioModifyAccess)])
    func lockOperation(written: String, operation: CallArguments.LockOperation) throws {
        #expect(try read("MmProbeAndLockPages(m0, KernelMode, \(written))").lockOperation("operation") == operation)
    }

    @Test(arguments: [("MmNonCached", 0), ("MmCached", 1), ("MmUSWCCached", 5), ("6", 6), ("0x100", 0x100),
                      ("0x100000001", 1), ("0xFFFFFFFFFFFFFFFF", 0xFFFF_FFFF)] as [(String, UInt32)])
    func cachingTypeIsAThirtyTwoBitEnum(written: String, value: UInt32) throws {
        #expect(try read("v0 = MmMapIoSpace(pa=0xF0000000, length=0x1000, \(written))").cachingType("cache") == value)
    }

    @Test(arguments: [("InterfaceTypeUndefined", -1), ("Internal", 0), ("PCIBus", 5), ("ACPIBus", 17), ("18", 18),
                      ("0xFFFFFFFF", -1), ("0x100000005", 5)] as [(String, Int32)])
    func interfaceTypeIsAThirtyTwoBitEnum(written: String, value: Int32) throws {
        #expect(try read("a0 = HalTranslateBusAddress(\(written), bus=0x0, address=0x0, space=0x0)").interfaceType("interface") == value)
    }

    @Test(arguments: [("PASSIVE_LEVEL", 0), ("APC_LEVEL", 1), ("DISPATCH_LEVEL", 2), ("HIGH_LEVEL", 31), ("5", 5),
                      ("32", 31), ("0x100", 0), ("0x102", 2)] as [(String, UInt8)])
    func irqlIsAByteCappedAtHighLevel(written: String, level: UInt8) throws {
        #expect(try read("KeRaiseIrql(\(written))").irql("irql") == level)
    }

    @Test func priorityPoolTypeAndProtection() throws {
        #expect(try read("v0 = MmGetSystemAddressForMdlSafe(m0, LowPagePriority)").pagePriority("priority") == .lowPagePriority)
        #expect(try read("v0 = MmGetSystemAddressForMdlSafe(m0, HighPagePriority)").pagePriority("priority") == .highPagePriority)
        #expect(try read("v0 = MmGetSystemAddressForMdlSafe(m0, 0x20)").pagePriority("priority") == .normalPagePriority)
        #expect(try read("p0 = ExAllocatePoolWithTag(PagedPool, size=0x10)").poolType("type") == .pagedPool)
        #expect(try read("p0 = ExAllocatePoolWithTag(0x1, size=0x10)").poolType("type") == .pagedPool)
        #expect(try read("p0 = ExAllocatePoolWithTag(0x100000001, size=0x10)").poolType("type") == .nonPagedPool)
        #expect(try read("p0 = ExAllocatePoolWithTag(NonPagedPool, size=0x10)").poolType("type") == .nonPagedPool)
        #expect(try read("b1 = AllocateUserBuffer(size=0x1000, protect=NoAccess)").protection("protect") == .noAccess)
        #expect(try read("b1 = AllocateUserBuffer(size=0x1000, protect=0x2)").protection("protect") == .readWrite)
    }

    @Test func bytesAreReadOnlyWhereBytesWereWritten() throws {
        let write = try read("WriteMemory(b0, data=0102A5)")
        #expect(write.bytes("data") == [1, 2, 0xA5])
        #expect(write.bytes("va") == nil && write.number("data") == 0)
        #expect(try read("WriteMemory(b0, data=\"\")").bytes("data") == [])
    }

    @Test func symbolValuesFollowTheSymbols() {
        for kind in ArgumentKind.allCases {
            #expect(kind.symbols?.count == kind.symbolValues?.count, "\(kind)")
        }
        #expect(ArgumentKind.pagePriority.value(of: "NormalPagePriority") == 16)
        #expect(ArgumentKind.irql.value(of: "HIGH_LEVEL") == 31)
        #expect(ArgumentKind.irql.value(of: "UserMode") == nil)
    }

    /// What a result name holds after a call, on either side.
    @Test func boundValues() {
        #expect(Outcome.returned(.number(0x8100_0500)).boundValue == 0x8100_0500)
        #expect(Outcome.returned(.boolean(true)).boundValue == 1)
        #expect(Outcome.returned(.boolean(false)).boundValue == 0)
        #expect(Outcome.returned(.translated(address: 0xF010_0010, space: 0)).boundValue == 0xF010_0010)
        #expect(Outcome.returned(.bytes([1, 2, 3])).boundValue == 3)
        #expect(Outcome.returned(.none).boundValue == 0)
        #expect(Outcome.raised(status: 0xC000_0005).boundValue == 0)
        #expect(Outcome.bugCheck(code: 0xC4, parameters: [1, 2, 3, 4]).boundValue == 0)
        #expect(Outcome.refused.boundValue == 0)
    }
}
