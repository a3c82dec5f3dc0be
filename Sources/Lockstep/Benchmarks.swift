import LockstepPrograms
import MemoryManager

/// Release-mode throughput figures (printed by `lockstep bench`; recorded in docs/BENCHMARKS.md).
package enum Benchmarks {
    /// The representative mix of the engine benchmark as a program: per iteration IoAllocateMdl over a
    /// 1-4 page user range, MmProbeAndLockPages, MmGetSystemAddressForMdlSafe, WriteMemory through the
    /// mapping, MmUnmapLockedPages, MmUnlockPages, IoFreeMdl.
    package static func mixProgram(iterations: Int, architecture: String = "x86") -> Program {
        var calls: [Call] = [Call("b0", .allocateUserBuffer, [.expression(.literal(0x8000)), .symbol("ReadWrite")])]
        let page = MachineLine(architecture: architecture).pageSize
        for i in 0..<iterations {
            let offset = UInt64(i % 7) * 0x1F0
            let length = UInt64(1 + i % 4) * page - offset % page - 1
            let m = "m\(i)", v = "v\(i)"
            let mdl = Argument.expression(.reference(m, offset: 0))
            calls += [
                Call(m, .ioAllocateMdl, [.expression(.reference("b0", offset: Int64(offset))), .expression(.literal(length)),
                                         .boolean(false), .boolean(false), .expression(.null)]),
                Call(nil, .mmProbeAndLockPages, [mdl, .symbol("KernelMode"), .symbol("IoWriteAccess")]),
                Call(v, .mmGetSystemAddressForMdlSafe, [mdl, .symbol("NormalPagePriority")]),
                Call(nil, .writeMemory, [.expression(.reference(v, offset: 0)), .bytes(Array(repeating: 0x5A, count: 16))]),
                Call(nil, .mmUnmapLockedPages, [.expression(.reference(v, offset: 0)), mdl]),
                Call(nil, .mmUnlockPages, [mdl]),
                Call(nil, .ioFreeMdl, [mdl]),
            ]
        }
        return Program(machine: MachineLine(architecture: architecture), calls: calls)
    }

    /// Runs the program's calls on a bare engine (no oracle, no invariants); returns the calls made.
    package static func runBare(_ program: Program) throws -> Int {
        var adapter = EngineAdapter(kernel: try Execution.boot(program))
        for call in program.calls { _ = adapter.perform(call) }
        return program.calls.count
    }
}
