import MemoryManager
import Testing

/// MDL layout: the platform constants (§1.1), the page macros (§1.4), MmSizeOfMdl (§2.2) and
/// MmInitializeMdl (§2.1), on x86 (28-byte header, 4-byte PFN), x64 (48, 8) and alpha (8 KiB pages,
/// 28, 4). Every expected number is worked out by hand from the spec's formulas in the comments, never
/// by calling the engine's own.
@Suite struct MdlLayoutTests {
    // MARK: Platform constants (§1.1)

    @Test func platformConstantsPerArchitecture() {
        let x86 = PlatformConstants(.x86), x64 = PlatformConstants(.x64), alpha = PlatformConstants(.alpha)
        #expect((x86.pageSize, x86.pageShift, x86.mdlHeaderSize, x86.pfnSize) == (0x1000, 12, 28, 4))
        #expect((x64.pageSize, x64.pageShift, x64.mdlHeaderSize, x64.pfnSize) == (0x1000, 12, 48, 8))
        #expect((alpha.pageSize, alpha.pageShift, alpha.mdlHeaderSize, alpha.pfnSize) == (0x2000, 13, 28, 4))
    }

    // MARK: Macros (§1.4)

    @Test func macrosOnX86WithConcreteNumbers() {
        let c = PlatformConstants(.x86)
        #expect(c.byteOffset(0x8123_4FFF) == 0xFFF)
        #expect(c.byteOffset(0x8123_4000) == 0)
        #expect(c.byteOffset(0x1234_5678) == 0x678)
        #expect(c.pageAlign(0x8123_4FFF) == 0x8123_4000)
        #expect(c.pageAlign(0xFFFF_FFFF) == 0xFFFF_F000)
        #expect(c.pageAlign(0x1234_5678) == 0x1234_5000)
        #expect(c.bytesToPages(0) == 0)
        #expect(c.bytesToPages(1) == 1)
        #expect(c.bytesToPages(0x1000) == 1)
        #expect(c.bytesToPages(0x1001) == 2)
        #expect(c.bytesToPages(0xFFFF_FFFF) == 0x10_0000)   // 0xFFFFF + 1
        #expect(c.roundToPages(0) == 0)
        #expect(c.roundToPages(1) == 0x1000)
        #expect(c.roundToPages(0x1000) == 0x1000)
        #expect(c.roundToPages(0x1001) == 0x2000)
        #expect(c.roundToPages(0xFFFF_F001) == 0)          // 0xFFFFF001 + 0xFFF = 2^32 wraps in a 32-bit ULONG_PTR
        #expect(c.spanPages(0x1000, 0) == 0)               // §1.4: span(va, 0) = 0 when aligned
        #expect(c.spanPages(0x1001, 0) == 1)               //        and 1 when not
        #expect(c.spanPages(0x8123_4FFF, 1) == 1)          // 0xFFF + 1 + 0xFFF = 0x1FFF -> 1
        #expect(c.spanPages(0x8123_4FFF, 2) == 2)          // 0xFFF + 2 + 0xFFF = 0x2000 -> 2
        #expect(c.spanPages(0x1FFF, 2) == 2)               // straddles one boundary
        #expect(c.spanPages(0x1000, 0x3000) == 3)
        #expect(c.spanPages(0x1010, 0x3000) == 4)          // 0x10 + 0x3000 + 0xFFF = 0x400F -> 4
        #expect(c.spanPages(0x1001, 0xFFFF_F000) == 0)     // §1.4: ByteOffset 1, Size 0xFFFFF000 -> 0 pages
        #expect(c.spanPages(0x1000, 0xFFFF_F001) == 0)     // §2.4: 0xFFFFF001 at an aligned VA -> 0 pages
        #expect(c.spanPages(0x1000, 0xFFFF_F000) == 0xF_FFFF) // 0xFFFFF000 + 0xFFF = 0xFFFFFFFF, no wrap
    }

    @Test func macrosOnX64WithConcreteNumbers() {
        let c = PlatformConstants(.x64)
        #expect(c.byteOffset(0xFFFF_FA80_0000_1234) == 0x234)
        #expect(c.pageAlign(0xFFFF_FA80_0000_1234) == 0xFFFF_FA80_0000_1000)
        #expect(c.bytesToPages(0xFFFF_FFFF) == 0x10_0000)
        #expect(c.roundToPages(0xFFFF_F001) == 0x1_0000_0000)   // no wrap in a 64-bit ULONG_PTR
        #expect(c.spanPages(0x1001, 0xFFFF_F000) == 0x10_0000)  // 1 + 0xFFFFF000 + 0xFFF = 2^32 -> 2^20 pages
        #expect(c.spanPages(0x1_0000, 0) == 0)
        #expect(c.spanPages(0x1_0008, 0) == 1)
    }

    @Test func macrosOnAlphaUseEightKilobytePages() {
        let c = PlatformConstants(.alpha)
        #expect(c.byteOffset(0x1234_5678) == 0x1678)      // 0x5678 & 0x1FFF
        #expect(c.byteOffset(0x1_2345) == 0x345)          // 0x12345 & 0x1FFF
        #expect(c.pageAlign(0x1234_5678) == 0x1234_4000)
        #expect(c.bytesToPages(0x2000) == 1)
        #expect(c.bytesToPages(0x2001) == 2)
        #expect(c.roundToPages(0x2001) == 0x4000)
        #expect(c.roundToPages(0x1000) == 0x2000)
        #expect(c.spanPages(0x2000, 0) == 0)
        #expect(c.spanPages(0x2000, 0x2000) == 1)
        #expect(c.spanPages(0x1000, 0) == 1)               // 4 KiB aligned is not 8 KiB aligned
        #expect(c.spanPages(0x1000, 0x1000) == 1)          // 0x1000 + 0x1000 + 0x1FFF = 0x3FFF -> 1
        #expect(c.spanPages(0x1000, 0x1001) == 2)          // 0x1000 + 0x1001 + 0x1FFF = 0x4000 -> 2
        #expect(c.spanPages(0x1FFF, 2) == 2)
        #expect(c.spanPages(0x2001, 0xFFFF_E000) == 0)     // 1 + 0xFFFFE000 + 0x1FFF = 2^32 wraps (32-bit)
    }

    // MARK: MmSizeOfMdl (§2.2): sizeof(MDL) + sizeof(PFN) * span, no truncation, never fails

    @Test func sizeOfMdlOnX86() throws {
        let k = try Construction.kernel(.x86)
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0x3000) == 40)     // 28 + 4*3
        #expect(try k.mm.sizeOfMdl(base: 0x1_0010, length: 0x3000) == 44)     // 28 + 4*4
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0) == 28)          // span 0
        #expect(try k.mm.sizeOfMdl(base: 0x1_0010, length: 0) == 32)          // span 1
        #expect(try k.mm.sizeOfMdl(base: 0x1_0FFF, length: 2) == 36)          // 0xFFF+2+0xFFF = 0x2000 -> 2 pages
        #expect(try k.mm.sizeOfMdl(base: 0xDEAD_BEEF, length: 1) == 32)       // Base need not be valid
        #expect(try k.mm.sizeOfMdl(base: 0x8000_0000, length: 1 << 30) == 1_048_604) // 28 + 4*262144, not truncated
        #expect(try k.mm.sizeOfMdl(base: 0, length: 1 << 30) == 1_048_604)
        #expect(try k.mm.sizeOfMdl(base: 0x1001, length: 0xFFFF_F000) == 28)  // span wraps to 0 on x86
    }

    @Test func sizeOfMdlOnX64() throws {
        let k = try Construction.kernel(.x64)
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0x3000) == 72)     // 48 + 8*3
        #expect(try k.mm.sizeOfMdl(base: 0x1_0010, length: 0x3000) == 80)     // 48 + 8*4
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0) == 48)
        #expect(try k.mm.sizeOfMdl(base: 0x1_0010, length: 0) == 56)
        #expect(try k.mm.sizeOfMdl(base: 0x1_0FFF, length: 2) == 64)          // 0xFFF+2+0xFFF = 0x2000 -> 2 pages: 48 + 16
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 1 << 30) == 2_097_200) // 48 + 8*262144
        #expect(try k.mm.sizeOfMdl(base: 0x1001, length: 0xFFFF_F000) == 8_388_656) // 48 + 8*2^20, no wrap on x64
    }

    @Test func sizeOfMdlOnAlpha() throws {
        let k = try Construction.kernel(.alpha)
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0x3000) == 36)     // (0x3000+0x1FFF)>>13 = 2 -> 28 + 8
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0x2000) == 32)     // exactly one 8 KiB page
        #expect(try k.mm.sizeOfMdl(base: 0x1_1000, length: 0x1000) == 32)     // 0x1000+0x1000+0x1FFF -> 1
        #expect(try k.mm.sizeOfMdl(base: 0x1_1000, length: 0x1001) == 36)     // -> 2
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0) == 28)
        #expect(try k.mm.sizeOfMdl(base: 0x1_1000, length: 0) == 32)
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 1 << 30) == 524_316) // 28 + 4*131072
    }

    // MARK: MmInitializeMdl (§2.1)

    @Test func initializeMdlSetsTheMacroFieldsOnX86AndLeavesTheRest() throws {
        let k = try Construction.kernel(.x86)
        let mdl = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(mdl, baseVa: 0x1234_5678, length: 0x2100)
        let h = try Construction.header(k, mdl)
        #expect(h.next == 0)
        #expect(Construction.size(h) == 40)            // 0x678+0x2100+0xFFF = 0x3777 -> 3 pages: 28 + 12
        #expect(h.flags == [])
        #expect(h.startVa == 0x1234_5000)
        #expect(h.byteOffset == 0x678)
        #expect(h.byteCount == 0x2100)
        #expect(h.process == 0xABAB_ABAB)              // untouched
        #expect(h.mappedSystemVa == 0xABAB_ABAB)       // untouched
        #expect(k.inspect.pfn(mdl, 0) == 0xABAB_ABAB)  // PFN array not initialised
        #expect(try k.mm.getMdlVirtualAddress(mdl) == 0x1234_5678)
        // Initialised again: 16 KiB at offset 0x10 spans 5 pages: 28 + 4*5 = 48.
        try k.mm.initializeMdl(mdl, baseVa: 0x7001_0010, length: 0x4000)
        let again = try Construction.header(k, mdl)
        #expect(again.size == 48)
        #expect(again.startVa == 0x7001_0000)
        #expect(again.byteOffset == 0x10)
    }

    @Test func initializeMdlOnX64UsesTheWideLayout() throws {
        let k = try Construction.kernel(.x64)
        let mdl = try Construction.garbageBlock(k, bytes: 96)
        try k.mm.initializeMdl(mdl, baseVa: 0x7FF_1234_5ABC, length: 0x10)
        let h = try Construction.header(k, mdl)
        #expect(h.next == 0)
        #expect(Construction.size(h) == 56)            // 0xABC+0x10+0xFFF -> 1 page: 48 + 8
        #expect(h.flags == [])
        #expect(h.startVa == 0x7FF_1234_5000)
        #expect(h.byteOffset == 0xABC)
        #expect(h.byteCount == 0x10)
        #expect(h.process == 0xABAB_ABAB_ABAB_ABAB)
        #expect(h.mappedSystemVa == 0xABAB_ABAB_ABAB_ABAB)
        // Raw bytes: Size at offset 8, MdlFlags at 10 (§1.1 x64 offsets).
        #expect(k.inspect.peek(mdl + 8, count: 4) == [56, 0, 0, 0])
    }

    @Test func initializeMdlOnAlphaUsesEightKilobytePages() throws {
        let k = try Construction.kernel(.alpha)
        let mdl = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(mdl, baseVa: 0x1234_5678, length: 0x1000)
        let h = try Construction.header(k, mdl)
        #expect(h.startVa == 0x1234_4000)
        #expect(h.byteOffset == 0x1678)
        #expect(Construction.size(h) == 36)            // 0x1678+0x1000+0x1FFF = 0x4677 -> 2 pages: 28 + 8
        #expect(h.process == 0xABAB_ABAB)
    }

    @Test func initializeMdlTruncatesSizeToSixteenBits() throws {
        let k = try Construction.kernel(.x86)
        let mdl = try Construction.garbageBlock(k, bytes: 64)
        // §1.4: 1 GiB aligned: 28 + 4*262144 = 1048604 = 0x10001C -> stored 28; the rest of the header
        // is still MmInitializeMdl's (Process and MappedSystemVa untouched).
        try k.mm.initializeMdl(mdl, baseVa: 0, length: 1 << 30)
        var h = try Construction.header(k, mdl)
        #expect(h.size == 28)
        #expect(h.byteCount == 0x4000_0000)
        #expect(h.flags == [])
        #expect(h.next == 0)
        #expect(h.process == 0xABAB_ABAB)
        #expect(h.mappedSystemVa == 0xABAB_ABAB)
        try k.mm.initializeMdl(mdl, baseVa: 0x8000_0000, length: 1 << 30)
        h = try Construction.header(k, mdl)
        #expect(h.size == 28)
        #expect(h.byteCount == 0x4000_0000)
        // 8185 pages: 28 + 32740 = 32768 = 0x8000 -> negative as a CSHORT.
        try k.mm.initializeMdl(mdl, baseVa: 0x8000_0000, length: 8185 * 0x1000)
        h = try Construction.header(k, mdl)
        #expect(h.size == -32768)
        // 8192 pages: 28 + 4*8192 = 32796 = 0x801C -> -32740.
        try k.mm.initializeMdl(mdl, baseVa: 0, length: 8192 * 0x1000)
        #expect(try Construction.header(k, mdl).size == -32740)
        // 16377 pages: 28 + 65508 = 65536 -> 0.
        try k.mm.initializeMdl(mdl, baseVa: 0x8000_0000, length: 16377 * 0x1000)
        h = try Construction.header(k, mdl)
        #expect(h.size == 0)
        // 16376 pages: 28 + 65504 = 65532 (fits in 16 bits, reads back as -4).
        try k.mm.initializeMdl(mdl, baseVa: 0x8000_0000, length: 16376 * 0x1000)
        h = try Construction.header(k, mdl)
        #expect(Construction.size(h) == 65532)
        #expect(h.size == -4)
    }

    @Test func initializeMdlTruncationOnX64AndAlpha() throws {
        let k64 = try Construction.kernel(.x64)
        let m64 = try Construction.garbageBlock(k64, bytes: 96)
        try k64.mm.initializeMdl(m64, baseVa: 0x1_0000, length: 1 << 30)
        #expect(try Construction.header(k64, m64).size == 48)   // 48 + 8*262144 = 2097200 = 0x200030 -> 0x30
        let ka = try Construction.kernel(.alpha)
        let ma = try Construction.garbageBlock(ka, bytes: 64)
        try ka.mm.initializeMdl(ma, baseVa: 0x1_0000, length: 1 << 30)
        #expect(try Construction.header(ka, ma).size == 28)     // 28 + 4*131072 = 524316 = 0x8001C -> 0x1C
    }

    /// §2.1: current headers take a SIZE_T Length; the macro computes the span from the full Length and
    /// stores ByteCount = (ULONG)Length. x64, 0x1_0000_1000 aligned: span 0x100001 pages;
    /// 48 + 8*0x100001 = 0x30 + 0x800008 = 0x800038 -> Size 0x38 = 56; ByteCount 0x1000.
    @Test func initializeMdlOnX64WithASizeTLengthAbove4GiB() throws {
        let k = try Construction.kernel(.x64)
        let mdl = try Construction.garbageBlock(k, bytes: 96)
        try k.mm.initializeMdl(mdl, baseVa: 0x1_0000, length: 0x1_0000_1000)
        let h = try Construction.header(k, mdl)
        #expect(h.size == 56)
        #expect(h.byteCount == 0x1000)
        #expect(try k.mm.sizeOfMdl(base: 0x1_0000, length: 0x1_0000_1000) == 8_388_664)   // 48 + 8*1048577
    }

    @Test func initializeMdlSpanWrapOnX86() throws {
        let k = try Construction.kernel(.x86)
        let mdl = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(mdl, baseVa: 0x1001, length: 0xFFFF_F000)
        let h = try Construction.header(k, mdl)
        #expect(h.size == 28)                  // span wraps to 0 pages (§1.4)
        #expect(h.byteCount == 0xFFFF_F000)
        #expect(h.byteOffset == 1)
        #expect(h.startVa == 0x1000)
    }

    @Test func initializeMdlWithZeroLength() throws {
        let k = try Construction.kernel(.x86)
        let mdl = try Construction.garbageBlock(k, bytes: 64)
        try k.mm.initializeMdl(mdl, baseVa: 0x2_0000, length: 0)
        #expect(try Construction.header(k, mdl).size == 28)
        try k.mm.initializeMdl(mdl, baseVa: 0x2_0004, length: 0)
        #expect(try Construction.header(k, mdl).size == 32)
    }
}
