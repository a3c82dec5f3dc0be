import LockstepPrograms
import Testing

/// The program's own operations: dependency closure, removal with dependents, dense renaming,
/// validation and the simplicity order.
@Suite struct ProgramOperationsTests {
    static let text = """
        # lockstep 1
        machine x86
        fault pagein page=b0+0x1000
        b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
        m1 = IoAllocateMdl(va=b0, length=0x2000, secondary=false, quota=false, irp=none)
        b2 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
        MmProbeAndLockPages(m1, UserMode, IoReadAccess)
        v3 = MmGetSystemAddressForMdl(m1)
        MmUnlockPages(m1)
        IoFreeMdl(m1)
        """

    private var program: Program { get throws { try ProgramText.parse(Self.text) } }

    @Test func theDependencyClosureFollowsNamesBackToTheirProducers() throws {
        let program = try program
        #expect(program.dependencyClosure(of: 4) == [0, 1, 4])   // v3 reads m1, which reads b0
        #expect(program.dependencyClosure(of: 2) == [2])
        #expect(program.boundNames == ["b0", "m1", "b2", "v3"])
    }

    @Test func removingACallRemovesEveryCallThatReadsWhatItBound() throws {
        let program = try program
        let withoutMdl = program.removingCalls([1])
        #expect(withoutMdl.calls.map(\.routine) == [.allocateUserBuffer, .allocateUserBuffer])
        let withoutSecondBuffer = program.removingCalls([2])
        #expect(withoutSecondBuffer.calls.count == 6)
        #expect(program.removingCalls(0..<0) == program)
    }

    @Test func denseRenamingNumbersNamesInOrderFaultPagesIncluded() throws {
        let renamed = try program.removingCalls([2]).renamedDensely()
        #expect(renamed.boundNames == ["b0", "m1", "v2"])
        #expect(ProgramText.encode(renamed).contains("fault pagein page=b0+0x1000"))
        try renamed.validate()
    }

    @Test func validationCatchesWhatTheParserWould() throws {
        let program = try program
        try program.validate()
        var unbound = program
        unbound.calls.remove(at: 0)
        #expect(throws: ProgramValidationError.self) { try unbound.validate() }
        var arity = program
        arity.calls[1].arguments.removeLast()
        #expect(throws: ProgramValidationError(call: 2, message: "IoAllocateMdl: 4 arguments for 5 parameters")) { try arity.validate() }
        var prefix = program
        prefix.calls[1].result = "b9"
        #expect(throws: ProgramValidationError.self) { try prefix.validate() }
        var twice = program
        twice.calls[2].result = "b0"
        #expect(throws: ProgramValidationError.self) { try twice.validate() }
        var nothingToBind = program
        nothingToBind.calls[5].result = "x9"
        #expect(throws: ProgramValidationError.self) { try nothingToBind.validate() }
        var kind = program
        kind.calls[3].arguments[1] = .boolean(true)
        #expect(throws: ProgramValidationError.self) { try kind.validate() }
        var fault = program
        fault.faults[0].settings = [Setting("page", "q7")]
        #expect(throws: ProgramValidationError.self) { try fault.validate() }
    }

    @Test func simplerMeansFewerCallsThenFewerFaultsThenShorterText() throws {
        let program = try program
        let fewerCalls = program.removingCalls([5])
        #expect(fewerCalls.isSimpler(than: program))
        #expect(!program.isSimpler(than: fewerCalls))
        var noFaults = program
        noFaults.faults = []
        #expect(noFaults.isSimpler(than: program))
        var shorter = program
        shorter.calls[0].arguments[0] = .expression(.literal(0x1))
        #expect(shorter.isSimpler(than: program) != program.isSimpler(than: shorter))
        #expect(!program.isSimpler(than: program))
    }
}
