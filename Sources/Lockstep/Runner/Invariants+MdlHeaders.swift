import MemoryManager

/// The `mdl-consistency` rules for one MDL's header and its own system mapping, apart from the
/// checker's records: they read only the engine's state.
extension InvariantChecker {
    /// One MDL's header rules: StartVa page aligned, ByteOffset below PAGE_SIZE, Next NULL or in pool,
    /// Size matching the span (unless partial), no nonpaged-pool MDL marked locked, PARTIAL_HAS_BEEN_MAPPED
    /// only with PARTIAL and MAPPED_TO_SYSTEM_VA; then its own mapping (`mappingViolation`).
    /// `wellFormed`: the header must be one the engine wrote (not memory the program merely passed as
    /// an MDL, whose bytes are whatever they were).
    func checkMdl(_ kernel: Kernel, _ location: MdlLocation, _ header: MdlHeader, wellFormed: Bool) -> InvariantViolation? {
        let c = kernel.constants
        let address = location.address
        let flags = header.flags
        func violation(_ text: String) -> InvariantViolation {
            InvariantViolation(invariant: .mdlConsistency, detail: "MDL \(hex(address)) (\(flags)): \(text)")
        }
        if !wellFormed { return mappingViolation(kernel, location, header) }
        if c.byteOffset(header.startVa) != 0 { return violation("StartVa \(hex(header.startVa)) is not page aligned") }
        if UInt64(header.byteOffset) >= c.pageSize { return violation("ByteOffset \(hex(UInt64(header.byteOffset))) is not below PAGE_SIZE") }
        // Next is NULL or links the MDL into an IRP's chain (another MDL, in pool); anything else is
        // whatever the memory held before MmInitializeMdl should have cleared it.
        if header.next != 0 && !kernel.inspect.isPoolAddress(header.next) { return violation("Next \(hex(header.next)) is neither NULL nor an MDL") }
        let span = c.spanPages(c.add(header.startVa, UInt64(header.byteOffset)), UInt64(header.byteCount))
        if !flags.contains(.partial) {
            let size = Int16(truncatingIfNeeded: c.mdlHeaderSize + c.pfnSize * span)
            if header.size != size { return violation("Size \(header.size), expected \(size) for \(span) pages") }
        }
        if flags.contains(.sourceIsNonpagedPool) && flags.contains(.pagesLocked) { return violation("nonpaged-pool MDL marked locked") }
        if flags.contains(.partialHasBeenMapped) && !flags.isSuperset(of: [.partial, .mappedToSystemVa]) {
            return violation("PARTIAL_HAS_BEEN_MAPPED without PARTIAL and MAPPED_TO_SYSTEM_VA")
        }
        return mappingViolation(kernel, location, header)
    }

    /// An MDL's own system mapping translates, page by page, to its PFN array.
    func mappingViolation(_ kernel: Kernel, _ location: MdlLocation, _ header: MdlHeader) -> InvariantViolation? {
        let c = kernel.constants
        let inspect = kernel.inspect
        let address = location.address
        let flags = header.flags
        let span = c.spanPages(c.add(header.startVa, UInt64(header.byteOffset)), UInt64(header.byteCount))
        let ownMapping = flags.contains(.mappedToSystemVa) && !flags.contains(.sourceIsNonpagedPool)
            && (!flags.contains(.partial) || flags.contains(.partialHasBeenMapped))
        if ownMapping {
            let base = c.pageAlign(header.mappedSystemVa)
            for index in 0..<min(span, 1 << 16) {
                guard let pfn = inspect.pfn(address, index, processId: location.processId), pfn != c.emptyPfn else { break }
                let frame = inspect.pte(c.add(base, index * c.pageSize))?.frame
                if frame != pfn {
                    return InvariantViolation(invariant: .mdlConsistency, detail: "MDL \(hex(address)) (\(flags)): mapping page \(index) at "
                        + "\(hex(c.add(base, index * c.pageSize))) maps \(frame.map(hex) ?? "nothing"), PFN array says \(hex(pfn))")
                }
            }
        }
        return nil
    }
}
