/// An MDL header as it sits in memory (spec §1.2), decoded from the architecture's layout.
public struct MdlHeader: Hashable, Sendable {
    /// `Next`: the IRP MDL chain link (NULL after MmInitializeMdl).
    public var next: VirtualAddress
    /// `Size` as stored: a CSHORT, so anything above 0x7FFF reads back negative.
    public var size: Int16
    /// `MdlFlags`.
    public var flags: MdlFlags
    /// `Process`: the EPROCESS whose user pages are locked, or NULL for a system buffer.
    public var process: VirtualAddress
    /// `MappedSystemVa`: the system mapping including the byte offset (stale after an unmap).
    public var mappedSystemVa: VirtualAddress
    /// `StartVa`: PAGE_ALIGN of the buffer's address.
    public var startVa: VirtualAddress
    /// `ByteCount`: the buffer's length.
    public var byteCount: UInt32
    /// `ByteOffset`: BYTE_OFFSET of the buffer's address.
    public var byteOffset: UInt32
}

/// An MDL the engine is about to read or write, with the end of the memory it may touch: in verifier
/// mode special pool bounds every MDL by its pool block, so touching freed pool bug-checks 0xD5 and
/// running past the block bug-checks 0xD6; otherwise the bound is the top of the address space.
struct MdlRef {
    let address: VirtualAddress
    let limit: VirtualAddress
}

extension Kernel {
    /// Prepares access to the MDL at `mdl`. In verifier mode an MDL in pool that is not inside a live
    /// block has been freed: 0xD5 DRIVER_PAGE_FAULT_IN_FREED_SPECIAL_POOL (VA, read, 0, 0).
    func openMdl(_ mdl: VirtualAddress) throws(KernelError) -> MdlRef {
        guard isVerifier, isPoolAddress(mdl) else { return MdlRef(address: mdl, limit: .max) }
        guard let block = poolBlock(containing: mdl) else {
            throw bugCheck(BugCheck(BugCheck.driverPageFaultInFreedSpecialPool, mdl, 0, 0, 0))
        }
        return MdlRef(address: mdl, limit: block.start + block.size)
    }

    @inline(__always) private func fieldAddress(_ m: MdlRef, _ offset: UInt64, _ width: UInt64, write: Bool) throws(KernelError) -> VirtualAddress {
        let va = constants.add(m.address, offset)
        if m.limit != .max && (va < m.address || va &+ width > m.limit) {
            throw bugCheck(BugCheck(BugCheck.driverPageFaultBeyondEndOfAllocation, va, write ? 1 : 0, 0, 0))
        }
        return va
    }

    private func readField(_ m: MdlRef, _ offset: UInt64, _ width: UInt64) throws(KernelError) -> UInt64 {
        try readInteger(try fieldAddress(m, offset, width, write: false), width: Int(width))
    }

    private func writeField(_ m: MdlRef, _ offset: UInt64, _ width: UInt64, _ value: UInt64) throws(KernelError) {
        try writeInteger(try fieldAddress(m, offset, width, write: true), width: Int(width), value)
    }

    /// Reads the whole header.
    func header(_ m: MdlRef) throws(KernelError) -> MdlHeader {
        let layout = constants.mdlLayout
        let p = layout.pointerBytes
        return MdlHeader(
            next: try readField(m, layout.next, p),
            size: Int16(truncatingIfNeeded: try readField(m, layout.size, 2)),
            flags: MdlFlags(rawValue: UInt16(truncatingIfNeeded: try readField(m, layout.mdlFlags, 2))),
            process: try readField(m, layout.process, p),
            mappedSystemVa: try readField(m, layout.mappedSystemVa, p),
            startVa: try readField(m, layout.startVa, p),
            byteCount: UInt32(truncatingIfNeeded: try readField(m, layout.byteCount, 4)),
            byteOffset: UInt32(truncatingIfNeeded: try readField(m, layout.byteOffset, 4)))
    }

    func flags(_ m: MdlRef) throws(KernelError) -> MdlFlags {
        MdlFlags(rawValue: UInt16(truncatingIfNeeded: try readField(m, constants.mdlLayout.mdlFlags, 2)))
    }

    func setFlags(_ m: MdlRef, _ flags: MdlFlags) throws(KernelError) {
        try writeField(m, constants.mdlLayout.mdlFlags, 2, UInt64(flags.rawValue))
    }

    func setNext(_ m: MdlRef, _ value: VirtualAddress) throws(KernelError) {
        try writeField(m, constants.mdlLayout.next, constants.pointerBytes, value)
    }

    func setSize(_ m: MdlRef, _ value: UInt64) throws(KernelError) {
        try writeField(m, constants.mdlLayout.size, 2, value & 0xFFFF)
    }

    func setProcess(_ m: MdlRef, _ value: VirtualAddress) throws(KernelError) {
        try writeField(m, constants.mdlLayout.process, constants.pointerBytes, value)
    }

    func setMappedSystemVa(_ m: MdlRef, _ value: VirtualAddress) throws(KernelError) {
        try writeField(m, constants.mdlLayout.mappedSystemVa, constants.pointerBytes, value & constants.pointerMask)
    }

    func setStartVa(_ m: MdlRef, _ value: VirtualAddress) throws(KernelError) {
        try writeField(m, constants.mdlLayout.startVa, constants.pointerBytes, value & constants.pointerMask)
    }

    func setByteCount(_ m: MdlRef, _ value: UInt64) throws(KernelError) {
        try writeField(m, constants.mdlLayout.byteCount, 4, value & 0xFFFF_FFFF)
    }

    func setByteOffset(_ m: MdlRef, _ value: UInt64) throws(KernelError) {
        try writeField(m, constants.mdlLayout.byteOffset, 4, value & 0xFFFF_FFFF)
    }

    /// Address of PFN slot `index` (the array right after the header).
    func pfnSlotAddress(_ m: MdlRef, _ index: UInt64) -> VirtualAddress {
        constants.add(m.address, constants.mdlHeaderSize &+ index &* constants.pfnSize)
    }

    func pfn(_ m: MdlRef, _ index: UInt64) throws(KernelError) -> PageFrameNumber {
        try readField(m, constants.mdlHeaderSize &+ index &* constants.pfnSize, constants.pfnSize)
    }

    func setPfn(_ m: MdlRef, _ index: UInt64, _ value: PageFrameNumber) throws(KernelError) {
        try writeField(m, constants.mdlHeaderSize &+ index &* constants.pfnSize, constants.pfnSize, value & (constants.pfnSize == 4 ? 0xFFFF_FFFF : .max))
    }

    /// `MmGetMdlVirtualAddress`: StartVa + ByteOffset.
    func virtualAddress(of header: MdlHeader) -> VirtualAddress {
        constants.add(header.startVa, UInt64(header.byteOffset))
    }

    /// `ADDRESS_AND_SIZE_TO_SPAN_PAGES(MmGetMdlVirtualAddress(Mdl), ByteCount)`.
    func span(of header: MdlHeader) -> UInt64 {
        constants.spanPages(virtualAddress(of: header), UInt64(header.byteCount))
    }

    /// The process an MDL's Process field names, if it is a known EPROCESS.
    func process(named eprocess: VirtualAddress) -> Process? {
        guard eprocess != 0, let id = processByEprocess[eprocess] else { return nil }
        return processes[id]
    }
}
