@testable import Lockstep
import LockstepPrograms
import Testing

/// The generator's action table (GenerationActions.swift) and the rules its rows keep.
@Suite struct GenerationTableTests {
    static func action(_ name: String) -> GeneratorAction { ProgramBuilder.actions.first { $0.name == name }! }

    @Test func everyActionHasOneRowAndTheCoreLifecycleIsOnInEveryProgram() {
        let names = ProgramBuilder.actions.map(\.name)
        #expect(Set(names).count == names.count)
        let core = ProgramBuilder.actions.filter { $0.weight.enabledPercent >= 100 }.map(\.name)
        #expect(core == ["allocateBuffer", "allocateMdl", "lock", "unlock", "mapSafe", "unmap", "freeMdl"])
    }

    /// A row whose target nothing in the program fits is skipped without a decision drawn, so the next
    /// action sees the same random stream.
    @Test func anActionWithNothingToActOnDrawsNothingAndWritesNothing() {
        var builder = ProgramBuilder(options: GenerationOptions(), random: SeededRandom(seed: 3))
        var untouched = builder.random
        for name in ["lock", "unlock", "mapLegacy", "unmap", "freeMdl", "freePages", "unmapIoSpace", "freeIrp", "writeBuffer"] {
            builder.step(Self.action(name))
        }
        #expect(builder.calls.isEmpty)
        #expect(builder.random.next() == untouched.next())
    }

    /// The call writer names a result by the routine's result kind, and only a routine that returns something.
    @Test func theCallWriterBindsTheSignaturesResultKind() {
        var builder = ProgramBuilder(options: GenerationOptions(), random: SeededRandom(seed: 3))
        let buffer = builder.bind(.allocateUserBuffer, [.literal(0x1000), .symbol("ReadWrite")])
        let mdl = builder.ioAllocateMdl(builder.ref(buffer), 0x10)
        let nothing = builder.call(.mmProbeAndLockPages, [builder.ref(mdl), .symbol("KernelMode"), .symbol("IoReadAccess")])
        let view = builder.call(.mmGetSystemAddressForMdlSafe, [builder.ref(mdl), .symbol("NormalPagePriority")])
        #expect([buffer, mdl] == ["b0", "m1"] && nothing == nil && view == "v2")
        #expect(builder.calls.map(\.result) == ["b0", "m1", nil, "v2"])
    }

    /// Enumeration values come from the parameter's kind in the signature table.
    @Test func enumerationEdgesComeFromTheSignatureTable() {
        let builder = ProgramBuilder(options: GenerationOptions(), random: SeededRandom(seed: 3))
        #expect(builder.symbols(.mmMapIoSpace, "cache") == ArgumentKind.cachingType.symbols)
        #expect(builder.firstInvalid(.mmProbeAndLockPages, "operation") == .literal(3))
        #expect(builder.edges(.mmSizeOfMdl, "length").map(\.1) == builder.edgeConstants.lengths.map(\.1))
    }
}
