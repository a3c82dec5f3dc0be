import MemoryManager
import Testing

/// Helpers shared by the engine suites of this target (one per routine family, and the `Conformance*`
/// ones). They only drive the public API and decode results; expected values are always written out in
/// the tests themselves.
enum Construction {
    /// Boots a machine with the given knobs (defaults: x86, Driver Verifier, NT 5.x).
    static func kernel(_ arch: Architecture = .x86, mode: CheckingMode = .verifier, version: WindowsVersion = .nt5,
                       ram: UInt64 = 16 << 20, nonpaged: UInt64 = 256 << 10, pciBuses: UInt32 = 2) throws -> Kernel {
        try Kernel(MachineConfiguration(architecture: arch, ramBytes: ram, nonpagedPoolBytes: nonpaged,
                                        checking: mode, version: version, pciBuses: pciBuses))
    }

    /// The decoded MDL header (fails the test if it cannot be read).
    static func header(_ k: Kernel, _ mdl: VirtualAddress, sourceLocation: SourceLocation = #_sourceLocation) throws -> MdlHeader {
        try #require(k.inspect.mdl(mdl), sourceLocation: sourceLocation)
    }

    /// Size as the unsigned 16-bit value stored in the CSHORT.
    static func size(_ h: MdlHeader) -> UInt16 { UInt16(bitPattern: h.size) }

    /// Writes `value` little-endian, `width` bytes, at `va` (a driver poking a field directly).
    static func poke(_ k: Kernel, _ va: VirtualAddress, width: Int, _ value: UInt64) throws {
        try k.env.writeMemory(va, (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) })
    }

    /// Allocates `bytes` of nonpaged pool and fills it with `fill`.
    static func garbageBlock(_ k: Kernel, bytes: Int, fill: UInt8 = 0xAB) throws -> VirtualAddress {
        let block = try #require(try k.env.allocatePool(.nonPagedPool, bytes: UInt64(bytes)))
        try k.env.writeMemory(block, [UInt8](repeating: fill, count: bytes))
        return block
    }

    /// IoAllocateMdl with no IRP and no flags of interest.
    static func allocate(_ k: Kernel, _ va: VirtualAddress, _ length: UInt32) throws -> VirtualAddress? {
        try k.io.allocateMdl(virtualAddress: va, length: length, secondaryBuffer: false, chargeQuota: false, irp: 0)
    }

    /// A 3-page user buffer and an MDL for 0x2000 bytes at offset 0x10 (3 pages spanned), not locked, on
    /// the standard machine in `mode` with what `configure` changes.
    static func userBufferMdl(_ mode: CheckingMode = .verifier, protection: PageProtection = .readWrite,
                              configure: (inout MachineConfiguration) -> Void = { _ in })
        throws -> (kernel: Kernel, buffer: VirtualAddress, mdl: VirtualAddress) {
        var configuration = MachineConfiguration(checking: mode)
        configure(&configuration)
        let kernel = try Kernel(configuration)
        let buffer = try #require(try kernel.env.allocateUserBuffer(size: 0x3000, protection: protection))
        let mdl = try #require(try allocate(kernel, buffer + 0x10, 0x2000))
        return (kernel, buffer, mdl)
    }

    /// A 4-page user buffer and an MDL for [buffer+0x100, buffer+0x3900) (4 pages spanned), probe-locked
    /// for write.
    static func lockedUserMdl(_ k: Kernel) throws -> (buffer: VirtualAddress, mdl: VirtualAddress) {
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x4000, protection: .readWrite))
        let mdl = try #require(try allocate(k, buffer + 0x100, 0x3800))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        return (buffer, mdl)
    }

    /// Runs `body` and returns the bug check it raised (fails the test if it raised none or something else).
    static func bugCheck(sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) -> BugCheck? {
        do {
            try body()
            Issue.record("expected a bug check, the call returned normally", sourceLocation: sourceLocation)
        } catch let error as KernelError {
            if case .bugCheck(let check) = error { return check }
            Issue.record("expected a bug check, got \(error)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("unexpected error \(error)", sourceLocation: sourceLocation)
        }
        return nil
    }
}
