/// Who is touching memory, which decides what a fault becomes.
enum AccessContext {
    /// Driver code inside try/except (environment reads and writes): bad user addresses raise.
    case driver
    /// MmProbeAndLockPages' probe, inside its own exception handler: bad user addresses and in-page errors raise.
    case probe
    /// Kernel code without an exception handler (reading an MDL, an IRP): any fault is fatal.
    case kernel
}

extension Kernel {
    /// The PTE that maps `va` in the current context (the current process for user addresses).
    func pte(_ va: VirtualAddress) -> PageTableEntry? {
        let vpn = constants.pageNumber(va)
        return constants.isUserAddress(va) ? currentProcess.pageTable[vpn] : systemPageTable[vpn]
    }

    func setPte(_ va: VirtualAddress, _ entry: PageTableEntry?) {
        let vpn = constants.pageNumber(va)
        if constants.isUserAddress(va) { currentProcess.pageTable[vpn] = entry } else { systemPageTable[vpn] = entry }
    }

    /// Resolves `va` to a frame the way the page-fault handler would: resident pages translate directly,
    /// demand-zero pages take a zeroed frame, paged-out pages are read back from the pagefile (both
    /// through the fault hook). Invalid accesses become what `context` makes of them.
    func resolve(_ va: VirtualAddress, write: Bool, _ context: AccessContext) throws(KernelError) -> PageFrameNumber {
        let user = constants.isUserAddress(va)
        let vpn = constants.pageNumber(va)
        guard var entry = user ? currentProcess.pageTable[vpn] : systemPageTable[vpn],
              entry.protection != .noAccess, !(write && entry.protection == .readOnly) else {
            throw invalidAccess(va, write: write, context)
        }
        if case .valid(let pfn) = entry.state { return pfn }
        // A page fault on a non-resident page: not allowed at DISPATCH_LEVEL or above.
        if irql >= .dispatchLevel {
            let code = context == .driver ? BugCheck.driverIrqlNotLessOrEqual : BugCheck.irqlNotLessOrEqual
            throw bugCheck(BugCheck(code, va, UInt64(irql.rawValue), write ? 1 : 0, 0))
        }
        let use: FrameUse = user ? .processPage(processId: currentProcess.id, vpn: vpn) : .pagedPool(vpn: vpn)
        let frameDecision = decide(.frame, address: va)
        guard frameDecision == .proceed, let pfn = physical.allocate(for: use) else {
            throw pageFaultFailed(va, status: .insufficientResources, user: user, context)
        }
        if case .pagedOut(let slot) = entry.state {
            if case .fail(let ioStatus) = decide(.pageIn, address: va) {
                physical.release(pfn)
                throw pageFaultFailed(va, status: ioStatus, user: user, context)
            }
            physical.restore(pfn, pagefile.load(slot))
            pagefile.release(slot)
        }
        entry.state = .valid(pfn)
        if user { currentProcess.pageTable[vpn] = entry } else { systemPageTable[vpn] = entry }
        return pfn
    }

    /// An access to an address with no usable PTE.
    private func invalidAccess(_ va: VirtualAddress, write: Bool, _ context: AccessContext) -> KernelError {
        if constants.isUserAddress(va) {
            if context == .kernel {
                return bugCheck(BugCheck(BugCheck.kmodeExceptionNotHandled, UInt64(NTStatus.accessViolation.rawValue), 0, write ? 1 : 0, va))
            }
            return .raised(.accessViolation)
        }
        return bugCheck(BugCheck(BugCheck.pageFaultInNonpagedArea, va, write ? 1 : 0, 0, 0))
    }

    /// A page fault the handler could not resolve (no frame, or the pagefile read failed). The
    /// exception a handler sees is STATUS_IN_PAGE_ERROR; with no handler, a system address is fatal.
    private func pageFaultFailed(_ va: VirtualAddress, status: NTStatus, user: Bool, _ context: AccessContext) -> KernelError {
        if user || context == .probe { return .raised(status == .insufficientResources ? .insufficientResources : .inPageError) }
        return bugCheck(BugCheck(BugCheck.kernelDataInpageError, 0, UInt64(status.rawValue), currentProcess.eprocess, va))
    }

    // MARK: Bytes and integers through virtual addresses

    func readBytes(_ va: VirtualAddress, count: Int, _ context: AccessContext) throws(KernelError) -> [UInt8] {
        var output = [UInt8](repeating: 0, count: count)
        var done = 0
        var address = va
        let pageSize = Int(constants.pageSize)
        while done < count {
            let offset = Int(constants.byteOffset(address))
            let chunk = min(count - done, pageSize - offset)
            let pfn = try resolve(address, write: false, context)
            physical.read(pfn, offset: offset, into: &output, at: done, count: chunk)
            done += chunk
            address = constants.add(address, UInt64(chunk))
        }
        return output
    }

    func writeBytes(_ va: VirtualAddress, _ bytes: [UInt8], _ context: AccessContext) throws(KernelError) {
        var done = 0
        var address = va
        let pageSize = Int(constants.pageSize)
        while done < bytes.count {
            let offset = Int(constants.byteOffset(address))
            let chunk = min(bytes.count - done, pageSize - offset)
            let pfn = try resolve(address, write: true, context)
            physical.write(pfn, offset: offset, from: bytes, at: done, count: chunk)
            done += chunk
            address = constants.add(address, UInt64(chunk))
        }
    }

    /// Reads a little-endian integer (kernel context: a fault is fatal).
    func readInteger(_ va: VirtualAddress, width: Int) throws(KernelError) -> UInt64 {
        let offset = Int(constants.byteOffset(va))
        if offset + width <= Int(constants.pageSize) {
            let pfn = try resolve(va, write: false, .kernel)
            return physical.readInteger(pfn, offset: offset, width: width)
        }
        let bytes = try readBytes(va, count: width, .kernel)
        return bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// Writes a little-endian integer (kernel context: a fault is fatal).
    func writeInteger(_ va: VirtualAddress, width: Int, _ value: UInt64) throws(KernelError) {
        let offset = Int(constants.byteOffset(va))
        if offset + width <= Int(constants.pageSize) {
            let pfn = try resolve(va, write: true, .kernel)
            physical.writeInteger(pfn, offset: offset, width: width, value)
            return
        }
        let bytes = (0..<width).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) }
        try writeBytes(va, bytes, .kernel)
    }
}
