/// A virtual address, held in 64 bits and masked to the architecture's pointer width.
public typealias VirtualAddress = UInt64
/// A physical address (`PHYSICAL_ADDRESS`, a 64-bit LARGE_INTEGER on every platform).
public typealias PhysicalAddress = UInt64
/// A page frame number (`PFN_NUMBER`: ULONG on 32-bit targets, ULONG_PTR on x64).
public typealias PageFrameNumber = UInt64

/// The processor architectures the simulated machine can be.
public enum Architecture: String, Sendable, CaseIterable, Codable {
    /// 32-bit pointers, 4 KiB pages, 28-byte MDL header, 4-byte PFN_NUMBER (the NT 4.0 target).
    case x86
    /// 64-bit pointers, 4 KiB pages, 48-byte MDL header, 8-byte PFN_NUMBER.
    case x64
    /// 32-bit pointers with 8 KiB pages, as NT 4.0 ran on the Alpha AXP.
    case alpha
}

/// Every constant and macro that depends on the architecture: page size, pointer width, MDL layout,
/// the user/system split. Spec §1.1, §1.2, §1.4. Computed once per machine.
public struct PlatformConstants: Sendable, Equatable {
    public let architecture: Architecture
    /// `PAGE_SIZE`.
    public let pageSize: UInt64
    /// `PAGE_SHIFT`.
    public let pageShift: UInt64
    /// Size of a pointer (and of `ULONG_PTR`) in bytes.
    public let pointerBytes: UInt64
    /// All-ones in the pointer width: `ULONG_PTR` arithmetic wraps modulo `pointerMask + 1`.
    public let pointerMask: UInt64
    /// `sizeof(MDL)`: 28 on 32-bit targets, 48 on x64.
    public let mdlHeaderSize: UInt64
    /// `sizeof(PFN_NUMBER)`.
    public let pfnSize: UInt64
    /// `MM_LOWEST_USER_ADDRESS`.
    public let lowestUserAddress: VirtualAddress
    /// `MmHighestUserAddress`.
    public let highestUserAddress: VirtualAddress
    /// `MmUserProbeAddress`.
    public let userProbeAddress: VirtualAddress
    /// `MmSystemRangeStart`.
    public let systemRangeStart: VirtualAddress
    /// `MM_HIGHEST_VAD_ADDRESS`: the highest address a user VAD may end at (16 pages below the top).
    public let highestVadAddress: VirtualAddress
    /// Field offsets of the MDL header (spec §1.1 table).
    public let mdlLayout: MdlLayout

    public init(_ architecture: Architecture) {
        self.architecture = architecture
        switch architecture {
        case .x86, .alpha:
            pageShift = architecture == .x86 ? 12 : 13
            pointerBytes = 4
            pointerMask = 0xFFFF_FFFF
            mdlHeaderSize = 28
            pfnSize = 4
            lowestUserAddress = 0x0001_0000
            highestUserAddress = 0x7FFE_FFFF
            userProbeAddress = 0x7FFF_0000
            systemRangeStart = 0x8000_0000
            mdlLayout = MdlLayout(next: 0, size: 4, mdlFlags: 6, process: 8, mappedSystemVa: 12,
                                  startVa: 16, byteCount: 20, byteOffset: 24, pointerBytes: 4)
        case .x64:
            pageShift = 12
            pointerBytes = 8
            pointerMask = 0xFFFF_FFFF_FFFF_FFFF
            mdlHeaderSize = 48
            pfnSize = 8
            lowestUserAddress = 0x1_0000
            highestUserAddress = 0x0000_07FF_FFFE_FFFF
            userProbeAddress = 0x0000_07FF_FFFF_0000
            systemRangeStart = 0xFFFF_0800_0000_0000
            mdlLayout = MdlLayout(next: 0, size: 8, mdlFlags: 10, process: 16, mappedSystemVa: 24,
                                  startVa: 32, byteCount: 40, byteOffset: 44, pointerBytes: 8)
        }
        pageSize = 1 << pageShift
        highestVadAddress = highestUserAddress &- 16 * pageSize
    }

    /// The all-ones PFN_NUMBER (`(PFN_NUMBER)-1`, ReactOS's LIST_HEAD sentinel) that marks an unfilled slot.
    public var emptyPfn: PageFrameNumber { pfnSize == 4 ? 0xFFFF_FFFF : 0xFFFF_FFFF_FFFF_FFFF }

    // MARK: Macros of spec §1.4, in the architecture's arithmetic.

    /// `BYTE_OFFSET(Va)`.
    @inline(__always) public func byteOffset(_ va: VirtualAddress) -> UInt64 { va & (pageSize - 1) }

    /// `PAGE_ALIGN(Va)`.
    @inline(__always) public func pageAlign(_ va: VirtualAddress) -> VirtualAddress { va & ~(pageSize - 1) & pointerMask }

    /// `ADDRESS_AND_SIZE_TO_SPAN_PAGES(Va, Size)`: summed in `ULONG_PTR` (wrapping modulo 2^32 on
    /// 32-bit targets, so offset 1 and size 0xFFFFF000 give 0 pages on x86) and cast to `ULONG`.
    @inline(__always) public func spanPages(_ va: VirtualAddress, _ size: UInt64) -> UInt64 {
        let sum = (byteOffset(va) &+ (size & pointerMask) &+ (pageSize - 1)) & pointerMask
        return (sum >> pageShift) & 0xFFFF_FFFF
    }

    /// `BYTES_TO_PAGES(Size)`.
    public func bytesToPages(_ size: UInt64) -> UInt64 {
        ((size & pointerMask) >> pageShift) + ((size & (pageSize - 1)) != 0 ? 1 : 0)
    }

    /// `ROUND_TO_PAGES(Size)`, wrapping in `ULONG_PTR` like the macro (a size in the last page rounds to 0).
    public func roundToPages(_ size: UInt64) -> UInt64 { ((size &+ (pageSize - 1)) & ~(pageSize - 1)) & pointerMask }

    /// Pointer-width addition (`(PCHAR)p + n`), wrapping like the real pointer arithmetic.
    @inline(__always) public func add(_ va: VirtualAddress, _ delta: UInt64) -> VirtualAddress { (va &+ delta) & pointerMask }

    /// Pointer-width subtraction.
    @inline(__always) public func subtract(_ a: VirtualAddress, _ b: UInt64) -> VirtualAddress { (a &- b) & pointerMask }

    /// Virtual page number of an address.
    @inline(__always) public func pageNumber(_ va: VirtualAddress) -> UInt64 { (va & pointerMask) >> pageShift }

    /// True when `va` lies at or below `MmHighestUserAddress`.
    @inline(__always) public func isUserAddress(_ va: VirtualAddress) -> Bool { (va & pointerMask) <= highestUserAddress }

    /// `MmSizeOfMdl`'s formula: header plus one PFN_NUMBER per spanned page, no truncation.
    public func mdlBytes(for va: VirtualAddress, length: UInt64) -> UInt64 {
        (mdlHeaderSize &+ pfnSize &* spanPages(va, length)) & pointerMask
    }
}

/// Byte offsets of the MDL header fields for one architecture (spec §1.1 / §1.2).
public struct MdlLayout: Sendable, Equatable {
    public let next: UInt64
    public let size: UInt64
    public let mdlFlags: UInt64
    public let process: UInt64
    public let mappedSystemVa: UInt64
    public let startVa: UInt64
    public let byteCount: UInt64
    public let byteOffset: UInt64
    public let pointerBytes: UInt64
}
