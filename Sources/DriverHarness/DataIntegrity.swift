import MemoryManager

/// Data integrity at completion: a read-like request that completed with `information` bytes must have
/// put the device's bytes at [position, position + information) into the caller's buffer; a write-like
/// one must have put the caller's bytes (as they were when it was issued) on the device.
///
/// A request is judged only when nothing else could have changed the same bytes while it was
/// outstanding: no other write-like request to an overlapping device range, no other read-like request
/// into an overlapping user range of the same process, and no program call that wrote or freed its
/// buffer. Those are inconclusive, never findings.
extension DriverRun {
    func checkIntegrity(_ request: Request, information: UInt64) {
        let state = states[request.index]
        guard !state.tainted, !hasConflict(request) else { return }
        if request.readsDevice {
            checkRead(request, information: information)
        } else if request.writesDevice, let snapshot = state.writeSnapshot {
            checkWrite(request, information: information, snapshot: snapshot)
        }
    }

    private func checkRead(_ request: Request, information: UInt64) {
        let expected = device.bytes(at: request.position, count: information)
        guard UInt64(expected.count) == information else {
            return monitor.record(.readDataMismatch, nil, "\(request.name) reports \(hexString(information)) bytes read at position "
                                  + "\(hexString(request.position)) of a \(hexString(device.size))-byte device")
        }
        guard information <= 0x10_0000, kernel.inspect.processes.first(where: { $0.id == request.processId })?.terminated == false,
              let actual = kernel.inspect.peek(request.userBuffer, count: Int(information), processId: request.processId) else { return }
        if actual != expected, let offset = actual.indices.first(where: { actual[$0] != expected[$0] }) {
            monitor.record(.readDataMismatch, nil, "\(request.name) completed with \(hexString(information)) bytes but the user buffer "
                           + "holds \(byteHex(actual[offset])) at offset \(hexString(UInt64(offset))) where the device has \(byteHex(expected[offset]))")
        }
    }

    private func checkWrite(_ request: Request, information: UInt64, snapshot: [UInt8]) {
        let written = device.bytes(at: request.position, count: information)
        guard UInt64(written.count) == information, information <= UInt64(snapshot.count) else {
            return monitor.record(.writeDataMismatch, nil, "\(request.name) reports \(hexString(information)) bytes written at position "
                                  + "\(hexString(request.position)) of a \(hexString(device.size))-byte device from a \(hexString(request.length))-byte buffer")
        }
        if written[...] != snapshot.prefix(written.count), let offset = written.indices.first(where: { written[$0] != snapshot[$0] }) {
            monitor.record(.writeDataMismatch, nil, "\(request.name) completed with \(hexString(information)) bytes written but the device "
                           + "holds \(byteHex(written[offset])) at offset \(hexString(UInt64(offset))) where the caller wrote \(byteHex(snapshot[offset]))")
        }
    }

    /// Another request alive at the same time touched the same device bytes (a write) or the same
    /// user bytes (a read into the same process's memory).
    private func hasConflict(_ request: Request) -> Bool {
        let issued = states[request.index].issueStep
        for other in states where other.request !== request && (other.completedStep ?? Int.max) >= issued {
            let o = other.request
            let deviceOverlap = o.position < request.position &+ request.length && request.position < o.position &+ o.length
            if o.writesDevice && deviceOverlap { return true }
            let userOverlap = o.processId == request.processId
                && o.userBuffer < request.userBuffer &+ request.length && request.userBuffer < o.userBuffer &+ o.length
            if o.readsDevice && userOverlap { return true }
        }
        return false
    }
}

/// `A5`.
func byteHex(_ byte: UInt8) -> String {
    let digits = Array("0123456789ABCDEF")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 0xF)]])
}
