import Lockstep
import LockstepPrograms
import MemoryManager
import Testing

/// The vocabulary's readings of argument kinds meet the engine's types at the adapter; where the
/// engine adapter and the model each read arguments their own way, they disagreed on these programs.
@Suite struct SharedVocabularyTests {
    @Test func symbolValuesAreTheEnginesValues() {
        for symbol in ArgumentKind.cachingType.symbols! {
            #expect(MemoryCachingType(name: symbol)?.rawValue == UInt32(ArgumentKind.cachingType.value(of: symbol)!), "\(symbol)")
        }
        for symbol in ArgumentKind.interfaceType.symbols! {
            #expect(InterfaceType(name: symbol)?.rawValue == Int32(truncatingIfNeeded: ArgumentKind.interfaceType.value(of: symbol)!), "\(symbol)")
        }
        for symbol in ArgumentKind.irql.symbols! {
            #expect(Irql(name: symbol)?.rawValue == UInt8(ArgumentKind.irql.value(of: symbol)!), "\(symbol)")
        }
        for symbol in ArgumentKind.protection.symbols! { #expect(PageProtection(rawValue: symbol) != nil) }
    }

    private func verdict(_ body: String, machine: String = "machine x86") throws -> Verdict {
        Execution().run(try ProgramText.parse("# lockstep 1\n\(machine)\n\(body)\n")).verdict
    }

    /// MEMORY_CACHING_TYPE is 32 bits wide: the engine kept the low 32 bits, the model compared all 64
    /// and predicted NULL for a cache type of 0x100000001 (MmCached).
    @Test func aCachingTypeKeepsItsLow32BitsOnBothSides() throws {
        let verdict = try verdict("""
            b0 = AllocateUserBuffer(size=0x1000, protect=ReadWrite)
            m0 = IoAllocateMdl(va=b0, length=0x1000, secondary=false, quota=false, irp=none)
            MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
            v0 = MmMapLockedPagesSpecifyCache(m0, KernelMode, 0x100000001, requested=none, bugcheck=false, NormalPagePriority)
            """)
        #expect(verdict == .pass, "\(verdict)")
    }

    /// INTERFACE_TYPE likewise: 0x100000005 is PCIBus to the engine, and was no bus at all to the model.
    @Test func anInterfaceTypeKeepsItsLow32BitsOnBothSides() throws {
        let verdict = try verdict("a0 = HalTranslateBusAddress(0x100000005, bus=0x0, address=0xF0000010, space=0x0)")
        #expect(verdict == .pass, "\(verdict)")
    }

    /// The model read `0X…` in a device window as 0 and put the window where the engine did not.
    @Test func deviceWindowsReadTheSameNumbers() throws {
        let verdict = try verdict("a0 = HalTranslateBusAddress(PCIBus, bus=0x0, address=0x40000010, space=0x0)",
                                  machine: "machine x86 device=PCIBus.0:0X40000000+0x10000@0xF0100000")
        #expect(verdict == .pass, "\(verdict)")
    }

    /// A machine-line number the shared syntax does not read is refused, not guessed (the engine alone
    /// still takes a sign; the program is then unrunnable, never a false finding).
    @Test func aMachineNumberTheModelCannotReadMakesTheProgramUnrunnable() throws {
        #expect(try verdict("x0 = MmSizeOfMdl(va=0x0, length=0x0)", machine: "machine x86 ptes=0X200") == .pass)
        guard case .unrunnable(let reason) = try verdict("x0 = MmSizeOfMdl(va=0x0, length=0x0)", machine: "machine x86 ptes=+512") else {
            Issue.record("a signed number on the machine line ran"); return
        }
        #expect(reason == "reference model: bad ptes=+512")
    }
}
