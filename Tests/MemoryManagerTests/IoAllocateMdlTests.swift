import MemoryManager
import Testing

/// IoAllocateMdl (§2.4) and the field macros of §2.12 on the MDLs it returns; MmCreateMdl (§2.3) where
/// it shares IoAllocateMdl's pool path.
@Suite struct IoAllocateMdlTests {
    // MARK: Fields (§2.4 step 4, §2.12)

    @Test func fieldsOfAnAllocatedMdlOnX86() throws {
        let k = try Construction.kernel(.x86)
        let mdl = try #require(try Construction.allocate(k, 0x0012_3456, 0x1234))
        let h = try Construction.header(k, mdl)
        #expect(h.byteCount == 0x1234)
        #expect(h.byteOffset == 0x456)
        #expect(h.startVa == 0x0012_3000)
        #expect(h.next == 0)
        #expect(Construction.size(h) == 36)   // 0x456+0x1234+0xFFF = 0x2689 -> 2 pages: 28 + 8
        #expect(h.flags == .allocatedFixedSize)
        #expect(try k.mm.getMdlVirtualAddress(mdl) == 0x0012_3456)
        #expect(try k.mm.getMdlByteCount(mdl) == 0x1234)
        #expect(try k.mm.getMdlByteOffset(mdl) == 0x456)
        // Length 1 ([SERGE]: Size 32).
        let one = try #require(try Construction.allocate(k, 0x1234_5678, 1))
        let header = try Construction.header(k, one)
        #expect(header.size == 32)
        #expect(header.startVa == 0x1234_5000)
        #expect(header.byteOffset == 0x678)
        #expect(header.byteCount == 1)
        #expect(header.flags == .allocatedFixedSize)
        #expect(try k.mm.getMdlVirtualAddress(one) == 0x1234_5678)
        #expect(try k.mm.getMdlByteCount(one) == 1)
        #expect(try k.mm.getMdlByteOffset(one) == 0x678)
    }

    @Test func fieldsOfAnAllocatedMdlOnX64() throws {
        let k = try Construction.kernel(.x64)
        let mdl = try #require(try Construction.allocate(k, 0x7FF_0000_1FFF, 2))
        let h = try Construction.header(k, mdl)
        #expect(h.startVa == 0x7FF_0000_1000)
        #expect(h.byteOffset == 0xFFF)
        #expect(Construction.size(h) == 64)   // 0xFFF+2+0xFFF = 0x2000 -> 2 pages: 48 + 16
        #expect(try k.mm.getMdlVirtualAddress(mdl) == 0x7FF_0000_1FFF)
        // 0x10 + 0x2000 spans 3 pages: 48 + 8*3.
        let three = try #require(try Construction.allocate(k, 0x1_0010, 0x2000))
        let header = try Construction.header(k, three)
        #expect(header.size == 72)
        #expect(header.byteOffset == 0x10)
        #expect(header.startVa == 0x1_0000)
    }

    /// Length 0 is legal on Windows (§2.4, §6 item 1: only ReactOS ASSERTs it), so in every mode.
    @Test(arguments: [CheckingMode.free, .checked, .verifier])
    func sizeExamplesFromTheSpecOnX86(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode)
        let one = try #require(try Construction.allocate(k, 0x1_0000, 1))
        #expect(try Construction.header(k, one).size == 32)            // Length 1 -> 28 + 4
        let zeroAligned = try #require(try Construction.allocate(k, 0x1_0000, 0))
        #expect(try Construction.header(k, zeroAligned).size == 28)    // Length 0, aligned -> 0 pages
        let zeroUnaligned = try #require(try Construction.allocate(k, 0x1_0010, 0))
        #expect(try Construction.header(k, zeroUnaligned).size == 32)  // Length 0, unaligned -> 1 page
        #expect(try Construction.header(k, zeroUnaligned).byteCount == 0)
        #expect(try Construction.header(k, try #require(try Construction.allocate(k, 0x1000, 0))).size == 28)
        #expect(try Construction.header(k, try #require(try Construction.allocate(k, 0x1001, 0))).size == 32)
    }

    @Test func nullAndArbitraryAddressesAreAccepted() throws {
        let k = try Construction.kernel(.x86)
        let null = try #require(try Construction.allocate(k, 0, 0x100))
        var h = try Construction.header(k, null)
        #expect((h.startVa, h.byteOffset, h.byteCount) == (0, 0, 0x100))
        #expect(h.size == 32)
        let one = try #require(try Construction.allocate(k, 1, 0))
        h = try Construction.header(k, one)
        #expect((h.startVa, h.byteOffset, h.byteCount) == (0, 1, 0))
        let top = try #require(try Construction.allocate(k, 0xFFFF_FFFF, 1))
        h = try Construction.header(k, top)
        #expect((h.startVa, h.byteOffset) == (0xFFFF_F000, 0xFFF))
        #expect(h.size == 32)                  // 0xFFF + 1 + 0xFFF = 0x1FFF -> 1 page
        #expect(try k.mm.getMdlVirtualAddress(top) == 0xFFFF_FFFF)
        #expect(try Construction.allocate(k, 0, 0x10) != nil)
        #expect(try Construction.allocate(k, 0xFFFF_FFFF, 0x10) != nil)
    }

    @Test func chargeQuotaTrueIsAccepted() throws {
        let k = try Construction.kernel(.x86)
        let mdl = try k.io.allocateMdl(virtualAddress: 0x1_0000, length: 0x1000, secondaryBuffer: false, chargeQuota: true, irp: 0)
        #expect(mdl != nil)
    }

    // MARK: MDL_ALLOCATED_FIXED_SIZE threshold (§2.4 step 2)

    @Test(arguments: [CheckingMode.free, .verifier])
    func fixedSizeThresholdOnNT5Is23Pages(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: .nt5)
        let p17 = try #require(try Construction.allocate(k, 0x1_0000, 17 * 0x1000))
        let p18 = try #require(try Construction.allocate(k, 0x1_0000, 18 * 0x1000))
        let p23 = try #require(try Construction.allocate(k, 0x1_0000, 23 * 0x1000))    // 92 KiB
        let p24 = try #require(try Construction.allocate(k, 0x1_0000, 24 * 0x1000))
        let u23 = try #require(try Construction.allocate(k, 0x1_0001, 23 * 0x1000))    // 24 pages when unaligned
        #expect(try Construction.header(k, p17).flags.contains(.allocatedFixedSize))
        #expect(try Construction.header(k, p18).flags.contains(.allocatedFixedSize))    // only on NT5
        #expect(try Construction.header(k, p23).flags.contains(.allocatedFixedSize))
        #expect(try Construction.header(k, p24).flags == [])
        #expect(try Construction.header(k, u23).flags == [])
        #expect(try Construction.header(k, p24).size == 124)   // 28 + 4*24: the needed size
        #expect(try Construction.header(k, p17).size == 96)    // 28 + 4*17: needed, not the lookaside block size
    }

    @Test(arguments: [WindowsVersion.nt60, .nt61])
    func fixedSizeThresholdOnNT6Is17Pages(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, version: version)
        let p17 = try #require(try Construction.allocate(k, 0x1_0000, 17 * 0x1000))    // 68 KiB
        let p18 = try #require(try Construction.allocate(k, 0x1_0000, 18 * 0x1000))
        let p23 = try #require(try Construction.allocate(k, 0x1_0000, 23 * 0x1000))
        let u17 = try #require(try Construction.allocate(k, 0x1_0800, 17 * 0x1000))    // 18 pages when unaligned
        #expect(try Construction.header(k, p17).flags == .allocatedFixedSize)
        #expect(try Construction.header(k, p18).flags == [])
        #expect(try Construction.header(k, p23).flags == [])
        #expect(try Construction.header(k, u17).flags == [])
    }

    @Test func fixedSizeThresholdIsInPagesOnX64Too() throws {
        let k = try Construction.kernel(.x64)
        let p23 = try #require(try Construction.allocate(k, 0x1_0000, 23 * 0x1000))
        let p24 = try #require(try Construction.allocate(k, 0x1_0000, 24 * 0x1000))
        #expect(try Construction.header(k, p23).flags == .allocatedFixedSize)
        #expect(try Construction.header(k, p24).flags == [])
        #expect(try Construction.header(k, p24).size == 240)   // 48 + 8*24
    }

    // MARK: Length limits (§2.4)

    @Test func nt5LimitIsASixteenBitSize() throws {
        let k = try Construction.kernel(.x86, version: .nt5)
        // 67,076,096 = 16376 pages aligned: 28 + 4*16376 = 65532 <= 0xFFFF.
        let ok = try #require(try Construction.allocate(k, 0x1_0000, 67_076_096))
        #expect(Construction.size(try Construction.header(k, ok)) == 65532)
        #expect(try Construction.header(k, ok).flags == [])
        // One more byte -> 16377 pages -> 65536 > 0xFFFF -> NULL.
        #expect(try Construction.allocate(k, 0x1_0000, 67_076_097) == nil)
        // The same length at an unaligned VA also spans 16377 pages -> NULL.
        #expect(try Construction.allocate(k, 0x1_0004, 67_076_096) == nil)
        #expect(try Construction.allocate(k, 0x1_0001, 67_076_096) == nil)
        // [KT-IoMdl]: (0x10000-28)/4*4096 = 67,080,192 -> NULL.
        #expect(try Construction.allocate(k, 0x1_0000, 67_080_192) == nil)
    }

    /// §2.4: "x86 numbers; the rule is what matters": header + pages * PFN must not exceed 0xFFFF.
    @Test func nt5LimitOnX64AndAlpha() throws {
        let k64 = try Construction.kernel(.x64, version: .nt5)
        // x64: 48 + 8*8185 = 65528 fits; 48 + 8*8186 = 65536 does not.
        let ok64 = try #require(try Construction.allocate(k64, 0x1_0000, 8185 * 0x1000))
        #expect(Construction.size(try Construction.header(k64, ok64)) == 65528)
        #expect(try Construction.allocate(k64, 0x1_0000, 8185 * 0x1000 + 1) == nil)
        let ka = try Construction.kernel(.alpha, version: .nt5)
        // alpha: 16376 pages of 8 KiB = 134,152,192 bytes -> 28 + 4*16376 = 65532; one byte more -> NULL.
        let okA = try #require(try Construction.allocate(ka, 0x1_0000, 134_152_192))
        #expect(Construction.size(try Construction.header(ka, okA)) == 65532)
        #expect(try Construction.allocate(ka, 0x1_0000, 134_152_193) == nil)
        #expect(try Construction.header(ka, try #require(try Construction.allocate(ka, 0x1_0000, 1))).size == 32)
    }

    /// §7: NT 4.0's threshold and maximum were not measured; the spec says to assume the NT5 values.
    @Test(arguments: [WindowsVersion.nt40, .nt40sp3])
    func nt40AssumedLikeNT5SpecUnsure(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, version: version)
        let p23 = try #require(try Construction.allocate(k, 0x1_0000, 23 * 0x1000))
        let p24 = try #require(try Construction.allocate(k, 0x1_0000, 24 * 0x1000))
        #expect(try Construction.header(k, p23).flags == .allocatedFixedSize)
        #expect(try Construction.header(k, p24).flags == [])
        #expect(try Construction.allocate(k, 0x1_0000, 67_076_096) != nil)
        #expect(try Construction.allocate(k, 0x1_0000, 67_076_097) == nil)
    }

    @Test func nt60RefusesTwoGigabytesAndMore() throws {
        let k = try Construction.kernel(.x86, version: .nt60, nonpaged: 4 << 20)
        #expect(try Construction.allocate(k, 0x1_0000, 0x8000_0000) == nil)
        #expect(try Construction.allocate(k, 0x1_0000, 0xFFFF_FFFF) == nil)
        // 2 GiB - 1: (0x7FFFFFFF + 0xFFF) >> 12 = 0x80000 pages; 28 + 4*0x80000 = 0x20001C -> Size wraps to 28.
        let ok = try #require(try Construction.allocate(k, 0x1_0000, 0x7FFF_FFFF))
        let h = try Construction.header(k, ok)
        #expect(h.size == 28)
        #expect(h.byteCount == 0x7FFF_FFFF)
        // A length whose needed size exceeds 0xFFFF is fine on 6.0: 16377 pages -> 65536 -> Size 0.
        let big = try #require(try Construction.allocate(k, 0x1_0000, 16377 * 0x1000))
        #expect(try Construction.header(k, big).size == 0)
        // The same at VA 0 (the 2 MiB PFN array of `ok` is given back first: the pool holds one).
        try k.io.freeMdl(ok)
        #expect(try Construction.allocate(k, 0, 0x8000_0000) == nil)
        let atZero = try #require(try Construction.allocate(k, 0, 0x7FFF_FFFF))
        #expect(try Construction.header(k, atZero).size == 28)
    }

    @Test func nt61AcceptsAnyLengthWithAWrappedSize() throws {
        let k = try Construction.kernel(.x86, version: .nt61, nonpaged: 4 << 20)
        // 0x80001000 aligned: 0x80001 pages; 28 + 4*0x80001 = 0x200020 -> Size 0x20.
        let a = try #require(try Construction.allocate(k, 0x1_0000, 0x8000_1000))
        #expect(try Construction.header(k, a).size == 32)
        #expect(try Construction.header(k, a).byteCount == 0x8000_1000)
        // MAXULONG at an aligned VA: 0xFFFFFFFF + 0xFFF wraps to 0xFFE -> 0 pages -> Size 28.
        let max = try #require(try Construction.allocate(k, 0x1_0000, 0xFFFF_FFFF))
        #expect(try Construction.header(k, max).size == 28)
        #expect(try Construction.header(k, max).byteCount == 0xFFFF_FFFF)
    }

    /// §2.4 / [SERGE]: "NT 6.2+ on x86: when the span wraps to a small number (Length 0xFFFFF001 aligned
    /// -> 0 pages) the MDL is taken from the lookaside"; Windows 7 (6.1) gives it a pool block of the
    /// wrapped size, without MDL_ALLOCATED_FIXED_SIZE.
    @Test(arguments: [WindowsVersion.nt61, .nt62, .nt100], [CheckingMode.free, .verifier])
    func wrappedSpanComesFromTheLookasideFrom62(version: WindowsVersion, mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode, version: version)
        let mdl = try #require(try Construction.allocate(k, 0x1_0000, 0xFFFF_F001))
        let h = try Construction.header(k, mdl)
        #expect(h.size == 28)
        #expect(h.flags == (version == .nt61 ? [] : .allocatedFixedSize))
        // 6.1's pool block is what the wrapped span needs (28 bytes, rounded to the pool granularity).
        if version == .nt61 && mode == .free { #expect(k.inspect.poolBlock(containing: mdl)?.size == 32) }
        // The same at VA 0.
        let atNull = try #require(try Construction.allocate(k, 0, 0xFFFF_F001))
        #expect(try Construction.header(k, atNull).size == 28)
        #expect(try Construction.header(k, atNull).flags == (version == .nt61 ? [] : .allocatedFixedSize))
    }

    /// [SERGE] rows 0xFFFFF000-0xFFFFFFFF: NT 4/5 refuse a Length of 2 GiB or more even where the span
    /// wraps to a size that would fit (ReactOS's `Length & 0x80000000` check).
    @Test(arguments: [WindowsVersion.nt40sp3, .nt40, .nt5])
    func nt5RefusesTwoGigabytesEvenWhenTheSpanWraps(version: WindowsVersion) throws {
        let k = try Construction.kernel(.x86, mode: .free, version: version)
        #expect(try Construction.allocate(k, 0x1_0001, 0xFFFF_F000) == nil)   // 0 pages after the wrap
        #expect(try Construction.allocate(k, 0x1_0000, 0xFFFF_FFFF) == nil)   // 0 pages after the wrap
        #expect(try Construction.allocate(k, 0x1_0000, 0x8000_0000) == nil)
        #expect(try Construction.allocate(k, 0x1_0000, 0x7FFF_FFFF) == nil)   // Size rule: 0x80000 pages
    }

    // MARK: Failures (§2.4 "Failures")

    @Test(arguments: [CheckingMode.free, .verifier])
    func poolExhaustionReturnsNullFromIoAllocateMdlAndMmCreateMdl(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode)
        k.faultDecider = { site in site.kind == .nonpagedPool ? .fail(.insufficientResources) : .proceed }
        #expect(try Construction.allocate(k, 0x1_0000, 0x1000) == nil)          // fixed-size path
        #expect(try Construction.allocate(k, 0x1_0000, 40 * 0x1000) == nil)     // pool path
        #expect(try k.mm.createMdl(nil, base: 0x1_0000, length: 0x1000) == nil)
        #expect(k.haltedBy == nil)
        k.faultDecider = nil
        #expect(try Construction.allocate(k, 0x1_0000, 0x1000) != nil)
    }

    // MARK: IRP linkage (§2.4 step 5)

    @Test func primaryBufferReplacesAndSecondaryAppends() throws {
        let k = try Construction.kernel(.x86)
        let irp = try #require(try k.env.allocateIrp())
        #expect(try k.env.irpMdlAddress(irp) == 0)
        let m1 = try #require(try k.io.allocateMdl(virtualAddress: 0x1_0000, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == m1)
        let m2 = try #require(try k.io.allocateMdl(virtualAddress: 0x2_0000, length: 0x100, secondaryBuffer: true, chargeQuota: false, irp: irp))
        let m3 = try #require(try k.io.allocateMdl(virtualAddress: 0x3_0000, length: 0x100, secondaryBuffer: true, chargeQuota: false, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == m1)
        #expect(try Construction.header(k, m1).next == m2)
        #expect(try Construction.header(k, m2).next == m3)
        #expect(try Construction.header(k, m3).next == 0)
        // A second primary buffer simply overwrites Irp->MdlAddress; its Next stays NULL and the old
        // chain is left as it was (not freed, not relinked).
        let m4 = try #require(try k.io.allocateMdl(virtualAddress: 0x4_0000, length: 0x100, secondaryBuffer: false, chargeQuota: false, irp: irp))
        #expect(try k.env.irpMdlAddress(irp) == m4)
        #expect(try Construction.header(k, m4).next == 0)
        #expect(try Construction.header(k, m1).next == m2)
    }

    @Test func secondaryBufferWithoutAnIrpIsHarmless() throws {
        let k = try Construction.kernel(.x86)
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: 0x1_0000, length: 0x100, secondaryBuffer: true, chargeQuota: false, irp: 0))
        #expect(try Construction.header(k, mdl).next == 0)
    }

    /// §2.4: SecondaryBuffer TRUE with Irp->MdlAddress NULL dereferences NULL ("Crashes (all) Windows"):
    /// 0x1E with STATUS_ACCESS_VIOLATION, and the halted machine refuses every later call.
    @Test(arguments: [CheckingMode.free, .verifier])
    func secondaryBufferOnAnEmptyChainBugChecks(mode: CheckingMode) throws {
        let k = try Construction.kernel(.x86, mode: mode)
        let irp = try #require(try k.env.allocateIrp())
        #expect(throws: KernelError.bugCheck(BugCheck(0x1E, 0xC000_0005, 0, 0, 0))) {
            try k.io.allocateMdl(virtualAddress: 0x1_0000, length: 0x100, secondaryBuffer: true, chargeQuota: false, irp: irp)
        }
        #expect(k.haltedBy != nil)
        #expect(throws: KernelError.machineHalted(BugCheck(0x1E, 0xC000_0005, 0, 0, 0))) { try k.mm.sizeOfMdl(base: 0, length: 1) }
    }
}
