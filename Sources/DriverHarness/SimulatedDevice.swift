import MemoryManager

/// The device behind the driver: `size` bytes of storage the driver moves to and from memory with
/// programmed I/O (``read(at:count:into:)``, ``write(at:count:from:)``). Initial contents are a fixed
/// pattern with no zero bytes, so a read that never transferred anything shows.
///
/// Transfers go through the engine (`kernel.env` reads and writes in the current context at the current
/// IRQL), so a bad address faults as it would on Windows. Two faults the harness reports itself, because
/// Windows would bug-check where the engine's driver-context access only raises: an address in the
/// never-mapped first 64 KiB (a NULL mapping used: ``DriverRule/uncheckedNullMapping``), and any raise
/// at DISPATCH_LEVEL or above (``DriverRule/pageFaultAtRaisedIrql``).
public final class SimulatedDevice {
    /// Bytes of storage.
    public let size: UInt64
    private(set) var storage: [UInt8]
    let kernel: Kernel
    let monitor: RunMonitor

    init(size: UInt64, kernel: Kernel, monitor: RunMonitor) {
        self.size = size
        self.kernel = kernel
        self.monitor = monitor
        // Built once and shared copy-on-write: a run copies it only when the driver writes to the device.
        storage = size == Self.standardContents.count ? Self.standardContents : (0..<Int(size)).map { Self.initialByte($0) }
    }

    private static let standardContents: [UInt8] = (0..<Int(DriverRunner.deviceSize)).map { initialByte($0) }

    /// The initial content of device byte `offset`: never 0.
    static func initialByte(_ offset: Int) -> UInt8 {
        let mixed = (offset &* 0x9E37) ^ (offset >> 8) ^ 0x5A
        return UInt8(truncatingIfNeeded: mixed) | 0x01
    }

    /// Device bytes [position, position + count), cut at the end of the device.
    public func bytes(at position: UInt64, count: UInt64) -> [UInt8] {
        let range = clamp(position, count)
        return Array(storage[range])
    }

    private func clamp(_ position: UInt64, _ count: UInt64) -> Range<Int> {
        guard position < size else { return 0..<0 }
        let end = position + min(count, size - position)
        return Int(position)..<Int(end)
    }

    /// Copies device bytes [position, position + count) to memory at `va` (the device's read
    /// direction). Returns the bytes transferred: fewer than `count` at the end of the device.
    @discardableResult
    public func read(at position: UInt64, count: UInt64, into va: VirtualAddress) throws(KernelError) -> UInt64 {
        let range = clamp(position, count)
        guard !range.isEmpty else { return 0 }
        try checkAddress(va, write: true)
        do {
            try kernel.env.writeMemory(va, Array(storage[range]))
        } catch {
            throw escalate(error, va: va, write: true)
        }
        return UInt64(range.count)
    }

    /// Copies memory at `va` to the device at [position, position + count) (the device's write
    /// direction). Returns the bytes transferred: fewer than `count` at the end of the device.
    @discardableResult
    public func write(at position: UInt64, count: UInt64, from va: VirtualAddress) throws(KernelError) -> UInt64 {
        let range = clamp(position, count)
        guard !range.isEmpty else { return 0 }
        try checkAddress(va, write: false)
        let bytes: [UInt8]
        do {
            bytes = try kernel.env.readMemory(va, count: range.count)
        } catch {
            throw escalate(error, va: va, write: false)
        }
        storage.replaceSubrange(range, with: bytes)
        return UInt64(range.count)
    }

    /// Windows never maps the first 64 KiB: an address there is a NULL pointer plus an offset.
    private func checkAddress(_ va: VirtualAddress, write: Bool) throws(KernelError) {
        guard va < 0x1_0000 else { return }
        let irql = kernel.irql
        let check = irql >= .dispatchLevel
            ? BugCheck(BugCheck.driverIrqlNotLessOrEqual, va, UInt64(irql.rawValue), write ? 1 : 0, 0)
            : BugCheck(BugCheck.kmodeExceptionNotHandled, UInt64(NTStatus.accessViolation.rawValue), 0, write ? 1 : 0, va)
        throw monitor.report(.uncheckedNullMapping, check, "device transfer through \(hexString(va)) at \(irql): a NULL mapping used without a check")
    }

    /// A raise at DISPATCH_LEVEL or above would have been a page fault Windows cannot take there.
    private func escalate(_ error: KernelError, va: VirtualAddress, write: Bool) -> KernelError {
        guard case .raised(let status) = error, kernel.irql >= .dispatchLevel else { return error }
        let check = BugCheck(BugCheck.driverIrqlNotLessOrEqual, va, UInt64(kernel.irql.rawValue), write ? 1 : 0, 0)
        return monitor.report(.pageFaultAtRaisedIrql, check, "device transfer through \(hexString(va)) at \(kernel.irql) faulted (\(status))")
    }
}

/// `0x1F00`.
func hexString(_ value: UInt64) -> String { "0x" + String(value, radix: 16, uppercase: true) }
