// Bare engine throughput: NT routine calls per second on a representative MDL mix.
//
//   swift run -c release engine-throughput [iterations] [architecture]
//
// Each iteration: IoAllocateMdl over a 1-4 page user buffer range, MmProbeAndLockPages,
// MmGetSystemAddressForMdlSafe (a kernel mapping), a 16-byte write through the mapping,
// MmUnmapLockedPages, MmUnlockPages, IoFreeMdl. The buffer rotates through offsets and lengths so
// spans of 1 to 4 pages and unaligned starts all occur. Deterministic; only the clock is measured.
import Foundation
import MemoryManager

let arguments = CommandLine.arguments
let iterations = arguments.count > 1 ? Int(arguments[1]) ?? 200_000 : 200_000
let architecture = arguments.count > 2 ? Architecture(rawValue: arguments[2]) ?? .x86 : .x86

do {
    let kernel = try Kernel(MachineConfiguration(architecture: architecture))
    let page = kernel.constants.pageSize
    guard let buffer = try kernel.env.allocateUserBuffer(size: 8 * page, protection: .readWrite) else {
        fatalError("could not allocate the benchmark buffer")
    }
    let payload = [UInt8](repeating: 0x5A, count: 16)
    var calls = 0
    var checksum: UInt64 = 0
    let clock = ContinuousClock()
    let elapsed = try clock.measure {
        for i in 0..<iterations {
            let offset = UInt64(i % 7) * 0x1F0
            let length = UInt32(1 + (i % 4)) * UInt32(page) - UInt32(offset % page) - 1
            guard let mdl = try kernel.io.allocateMdl(virtualAddress: buffer + offset, length: length, secondaryBuffer: false,
                                                      chargeQuota: false, irp: 0) else { fatalError("IoAllocateMdl failed") }
            try kernel.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
            guard let system = try kernel.mm.getSystemAddressForMdlSafe(mdl, priority: .normalPagePriority) else {
                fatalError("mapping failed")
            }
            try kernel.env.writeMemory(system, payload)
            checksum &+= system
            try kernel.mm.unmapLockedPages(system, mdl)
            try kernel.mm.unlockPages(mdl)
            try kernel.io.freeMdl(mdl)
            calls += 6
        }
    }
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    let rate = Double(calls) / seconds
    print("engine-throughput: \(architecture.rawValue), \(iterations) iterations, \(calls) NT calls (+\(iterations) writes)")
    print("  elapsed \(String(format: "%.3f", seconds)) s, \(Int(rate)) calls/s, checksum \(checksum & 0xFFFF)")
} catch {
    print("engine-throughput: engine error \(error)")
    exit(1)
}
