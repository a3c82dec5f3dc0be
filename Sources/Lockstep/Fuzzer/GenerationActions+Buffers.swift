import LockstepPrograms

/// The actions on user buffers and the environment: allocate, read, write, protect, page out and free
/// buffers, the queries that read no MDL, and the IRQL and working-set calls around them.
extension ProgramBuilder {
    mutating func allocateBuffer() {
        let size = random.pick([pageSize, 2 * pageSize, 3 * pageSize, 4 * pageSize, pageSize + 1, 8 * pageSize])
        let readOnly = random.chance(15)
        let name = bind(.allocateUserBuffer, [.literal(size), .symbol(readOnly ? "ReadOnly" : "ReadWrite")])
        buffers.append(Buffer(name: name, size: size, readOnly: readOnly))
    }

    mutating func writeBuffer(_ index: Int) {
        let (offset, length) = offsetAndLength(within: buffers[index].size)
        let data = (0..<min(length, 8)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        call(.writeMemory, [ref(buffers[index].name, offset), .bytes(data)])
    }

    mutating func readBuffer(_ index: Int) {
        let (offset, length) = offsetAndLength(within: buffers[index].size)
        call(.readMemory, [ref(buffers[index].name, offset), .literal(min(length, 16))])
    }

    mutating func sizeOf(_ index: Int) {
        var (offset, length) = offsetAndLength(within: buffers[index].size)
        // MmSizeOfMdl reads no memory: lengths past the buffer, at the 16-bit Size limits and the wrap points.
        if random.chance(30) { length = random.pick(longLengths + [0x7FFF_FFFF, 0xFFFF_FFFF, 0xFFFF_F001, 0x1_0000_0000]) }
        call(.mmSizeOfMdl, [ref(buffers[index].name, offset), .literal(length)])
    }

    mutating func physicalAddress(_ index: Int) {
        let (offset, _) = offsetAndLength(within: buffers[index].size)
        physical.append(bind(.mmGetPhysicalAddress, [ref(buffers[index].name, offset)]))
    }

    mutating func isValid(_ index: Int) {
        let (offset, _) = offsetAndLength(within: buffers[index].size)
        call(.mmIsAddressValid, [ref(buffers[index].name, offset)])
    }

    mutating func trim() {
        call(.trimWorkingSet, [.literal(Self.bootProcess)])
    }

    mutating func pageOut(_ index: Int) {
        call(.pageOut, [ref(buffers[index].name, UInt64(random.below(Int(buffers[index].size / pageSize))) * pageSize)])
    }

    mutating func protect(_ index: Int) {
        call(.protectUserBuffer, [ref(buffers[index].name), .literal(pageSize), .symbol("ReadOnly")])
        buffers[index].readOnly = true
    }

    mutating func freeBuffer(_ index: Int) {
        call(.freeUserBuffer, [ref(buffers[index].name)])
        buffers[index].alive = false
    }

    /// A short stretch at DISPATCH_LEVEL with calls that are legal there on resident memory.
    mutating func dispatchInterlude() {
        call(.keRaiseIrql, [.symbol("DISPATCH_LEVEL")])
        if let index = liveMdls.randomElement(using: &random) {
            call(.mmGetMdlByteCount, [ref(mdls[index].name)])
        }
        call(.keLowerIrql, [.symbol("PASSIVE_LEVEL")])
    }
}
