import MemoryManager
import Testing

/// MDL sizes, offsets and the macros of spec §1.1–§1.4, on each architecture. Expected values are
/// worked out by hand from the spec's formulas, never by calling the engine's own.
@Suite struct SpecMdlLayoutTests {
    private func kernel(_ arch: Architecture = .x86, mode: CheckingMode = .verifier, version: WindowsVersion = .nt5) throws -> Kernel {
        try Kernel(MachineConfiguration(architecture: arch, checking: mode, version: version))
    }

    @Test func macrosOnX86() {
        let c = PlatformConstants(.x86)
        #expect(c.byteOffset(0x1234_5678) == 0x678)
        #expect(c.pageAlign(0x1234_5678) == 0x1234_5000)
        #expect(c.spanPages(0x1000, 0) == 0)          // aligned, empty: 0 pages
        #expect(c.spanPages(0x1001, 0) == 1)          // unaligned, empty: 1 page
        #expect(c.spanPages(0x1FFF, 2) == 2)          // straddles one boundary
        #expect(c.spanPages(0x1000, 0x3000) == 3)
        #expect(c.spanPages(0x1001, 0xFFFF_F000) == 0) // §1.4: 1 + 0xFFFFF000 + 0xFFF wraps to 0 in 32 bits
        #expect(c.bytesToPages(0x1001) == 2)
        #expect(c.roundToPages(0x1001) == 0x2000)
    }

    @Test func macrosOnX64DoNotWrapForULongSizes() {
        let c = PlatformConstants(.x64)
        #expect(c.spanPages(0x1001, 0xFFFF_F000) == 0x10_0000) // (1 + 0xFFFFF000 + 0xFFF) >> 12 without wrap
    }

    @Test func eightKilobytePagesOnAlpha() {
        let c = PlatformConstants(.alpha)
        #expect(c.pageSize == 0x2000)
        #expect(c.byteOffset(0x1_2345) == 0x345 + 0x0000) // 0x12345 & 0x1FFF = 0x0345
        #expect(c.spanPages(0x1FFF, 2) == 2)
        #expect(c.spanPages(0x2000, 0x2000) == 1)
        #expect(c.mdlHeaderSize == 28)
        #expect(c.pfnSize == 4)
    }

    @Test func mmSizeOfMdlAlignedAndUnalignedPerArchitecture() throws {
        // x86: 28 + 4 * pages; x64: 48 + 8 * pages; alpha: 28 + 4 * (8 KiB pages).
        let x86 = try kernel(.x86).mm, x64 = try kernel(.x64).mm, alpha = try kernel(.alpha).mm
        #expect(try x86.sizeOfMdl(base: 0x10000, length: 0x3000) == 28 + 4 * 3)
        #expect(try x86.sizeOfMdl(base: 0x10010, length: 0x3000) == 28 + 4 * 4)
        #expect(try x64.sizeOfMdl(base: 0x10000, length: 0x3000) == 48 + 8 * 3)
        #expect(try x64.sizeOfMdl(base: 0x10FFF, length: 2) == 48 + 8 * 2)
        #expect(try alpha.sizeOfMdl(base: 0x10000, length: 0x3000) == 28 + 4 * 2)
        // No 16-bit truncation in MmSizeOfMdl: 1 GiB aligned on x86 is 28 + 4 * 262144.
        #expect(try x86.sizeOfMdl(base: 0, length: 0x4000_0000) == 1_048_604)
    }

    @Test func mmInitializeMdlTruncatesSizeToACShortAndLeavesProcessAndMappedSystemVa() throws {
        let k = try kernel(.x86, mode: .free)
        let block = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x100))
        try k.env.writeMemory(block, [UInt8](repeating: 0xEE, count: 0x100))
        try k.mm.initializeMdl(block, baseVa: 0, length: 0x4000_0000)
        let header = try #require(k.inspect.mdl(block))
        #expect(header.size == 28)               // 1048604 mod 65536 = 28 (spec §1.4)
        #expect(header.byteCount == 0x4000_0000)
        #expect(header.flags == [])
        #expect(header.next == 0)
        #expect(header.process == 0xEEEE_EEEE)   // untouched
        #expect(header.mappedSystemVa == 0xEEEE_EEEE)
        // 16 KiB + 1 page unaligned: 28 + 4 * 5 = 48.
        try k.mm.initializeMdl(block, baseVa: 0x7001_0010, length: 0x4000)
        let second = try #require(k.inspect.mdl(block))
        #expect(second.size == 48)
        #expect(second.startVa == 0x7001_0000)
        #expect(second.byteOffset == 0x10)
    }

    @Test func sizeCanBecomeNegativeAsACShort() throws {
        let k = try kernel(.x86, mode: .free)
        let block = try #require(try k.env.allocatePool(.nonPagedPool, bytes: 0x40))
        // 8192 pages: 28 + 4 * 8192 = 32796 = 0x801C, a negative CSHORT (−32740).
        try k.mm.initializeMdl(block, baseVa: 0, length: 8192 * 0x1000)
        #expect(k.inspect.mdl(block)?.size == -32740)
    }

    @Test func ioAllocateMdlFieldsAndSizesOnX86() throws {
        let k = try kernel(.x86)
        // SERGE: Length 1 → Size 32; Length 0 → 28 aligned / 32 unaligned.
        let one = try #require(try k.io.allocateMdl(virtualAddress: 0x1234_5678, length: 1, secondaryBuffer: false, chargeQuota: false, irp: 0))
        let header = try #require(k.inspect.mdl(one))
        #expect(header.size == 32)
        #expect(header.startVa == 0x1234_5000)
        #expect(header.byteOffset == 0x678)
        #expect(header.byteCount == 1)
        #expect(header.flags == .allocatedFixedSize)
        #expect(try k.mm.getMdlVirtualAddress(one) == 0x1234_5678)
        #expect(try k.mm.getMdlByteCount(one) == 1)
        #expect(try k.mm.getMdlByteOffset(one) == 0x678)
        let emptyAligned = try #require(try k.io.allocateMdl(virtualAddress: 0x1000, length: 0, secondaryBuffer: false, chargeQuota: false, irp: 0))
        let emptyUnaligned = try #require(try k.io.allocateMdl(virtualAddress: 0x1001, length: 0, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(k.inspect.mdl(emptyAligned)?.size == 28)
        #expect(k.inspect.mdl(emptyUnaligned)?.size == 32)
        // Any VA is accepted, NULL included.
        #expect(try k.io.allocateMdl(virtualAddress: 0, length: 0x10, secondaryBuffer: false, chargeQuota: false, irp: 0) != nil)
        #expect(try k.io.allocateMdl(virtualAddress: 0xFFFF_FFFF, length: 0x10, secondaryBuffer: false, chargeQuota: false, irp: 0) != nil)
    }

    @Test func ioAllocateMdlOnX64UsesTheFortyEightByteHeader() throws {
        let k = try kernel(.x64)
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: 0x1_0010, length: 0x2000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        let header = try #require(k.inspect.mdl(mdl))
        #expect(header.size == 48 + 8 * 3)     // 0x10 + 0x2000 spans 3 pages
        #expect(header.byteOffset == 0x10)
        #expect(header.startVa == 0x1_0000)
    }

    @Test func fixedSizeThresholdIsTwentyThreePagesOnNT5AndSeventeenFromNT6() throws {
        let nt5 = try kernel(.x86, version: .nt5)
        let nt6 = try kernel(.x86, version: .nt60)
        func fixed(_ k: Kernel, pages: UInt32) throws -> Bool {
            let mdl = try #require(try k.io.allocateMdl(virtualAddress: 0x10000, length: pages * 0x1000, secondaryBuffer: false, chargeQuota: false, irp: 0))
            return k.inspect.mdl(mdl)!.flags.contains(.allocatedFixedSize)
        }
        #expect(try fixed(nt5, pages: 23))
        #expect(try !fixed(nt5, pages: 24))
        #expect(try fixed(nt5, pages: 18))
        #expect(try fixed(nt6, pages: 17))
        #expect(try !fixed(nt6, pages: 18))
    }

    @Test func ioAllocateMdlLengthLimitsPerVersion() throws {
        // NT5: fail when 28 + 4 * pages > 0xFFFF: 16376 pages (67,076,096 bytes aligned) is the largest.
        let nt5 = try kernel(.x86, version: .nt5)
        let largest = try #require(try nt5.io.allocateMdl(virtualAddress: 0x10000, length: 67_076_096, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(nt5.inspect.mdl(largest)?.size == -4) // 65532 as a CSHORT
        #expect(try nt5.io.allocateMdl(virtualAddress: 0x10000, length: 67_076_097, secondaryBuffer: false, chargeQuota: false, irp: 0) == nil)
        #expect(try nt5.io.allocateMdl(virtualAddress: 0x10001, length: 67_076_096, secondaryBuffer: false, chargeQuota: false, irp: 0) == nil)
        // NT 6.0: Length >= 2 GiB fails, 2 GiB - 1 succeeds (its Size wraps).
        // (Its PFN array needs 2 MiB of nonpaged pool.)
        let nt60 = try Kernel(MachineConfiguration(architecture: .x86, ramBytes: 64 << 20, nonpagedPoolBytes: 4 << 20, version: .nt60))
        #expect(try nt60.io.allocateMdl(virtualAddress: 0, length: 0x8000_0000, secondaryBuffer: false, chargeQuota: false, irp: 0) == nil)
        let big = try #require(try nt60.io.allocateMdl(virtualAddress: 0, length: 0x7FFF_FFFF, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(nt60.inspect.mdl(big)?.size == 28)   // 28 + 4 * 0x80000 = 0x20001C → 0x001C
        // NT 6.1: any ULONG; at an aligned VA 0xFFFFF001 wraps to 0 pages on x86: a pool MDL, not fixed
        // size ([SERGE]); only 6.2 and later take it from the lookaside.
        let nt61 = try kernel(.x86, version: .nt61)
        let huge = try #require(try nt61.io.allocateMdl(virtualAddress: 0, length: 0xFFFF_F001, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(nt61.inspect.mdl(huge)?.flags == [])
        #expect(nt61.inspect.mdl(huge)?.size == 28)
        let nt62 = try kernel(.x86, version: .nt62)
        let fixed = try #require(try nt62.io.allocateMdl(virtualAddress: 0, length: 0xFFFF_F001, secondaryBuffer: false, chargeQuota: false, irp: 0))
        #expect(nt62.inspect.mdl(fixed)?.flags == .allocatedFixedSize)
    }

    @Test func ioAllocateMdlReturnsNullWhenPoolFails() throws {
        let k = try kernel(.x86)
        k.faultDecider = { $0.kind == .nonpagedPool ? .fail(.insufficientResources) : .proceed }
        #expect(try k.io.allocateMdl(virtualAddress: 0x10000, length: 0x1000, secondaryBuffer: false, chargeQuota: false, irp: 0) == nil)
        #expect(try k.mm.createMdl(nil, base: 0x10000, length: 0x1000) == nil)
        #expect(k.haltedBy == nil)
    }

    @Test func irpChainingReplacesOrAppends() throws {
        let k = try kernel(.x86)
        let irp = try #require(try k.env.allocateIrp())
        let first = try #require(try k.io.allocateMdl(virtualAddress: 0x10000, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == first)
        let second = try #require(try k.io.allocateMdl(virtualAddress: 0x20000, length: 0x100, secondaryBuffer: true, chargeQuota: false, irp: irp))
        let third = try #require(try k.io.allocateMdl(virtualAddress: 0x30000, length: 0x100, secondaryBuffer: true, chargeQuota: false, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == first)
        #expect(k.inspect.mdl(first)?.next == second)
        #expect(k.inspect.mdl(second)?.next == third)
        #expect(k.inspect.mdl(third)?.next == 0)
        // A primary buffer replaces the head; the old chain is simply dropped and Next stays NULL.
        let primary = try #require(try k.io.allocateMdl(virtualAddress: 0x40000, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == primary)
        #expect(k.inspect.mdl(primary)?.next == 0)
    }

    @Test func secondaryBufferOnAnEmptyIrpDereferencesNull() throws {
        let k = try kernel(.x86)
        let irp = try #require(try k.env.allocateIrp())
        #expect(throws: KernelError.bugCheck(BugCheck(0x1E, 0xC000_0005, 0, 0, 0))) {
            try k.io.allocateMdl(virtualAddress: 0x10000, length: 0x100, secondaryBuffer: true, chargeQuota: false, irp: irp)
        }
        #expect(throws: KernelError.machineHalted(BugCheck(0x1E, 0xC000_0005, 0, 0, 0))) { try k.mm.sizeOfMdl(base: 0, length: 1) }
    }
}
