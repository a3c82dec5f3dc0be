import MemoryManager
import Testing

/// `Kernel.copy()`: a booted machine copied for each program must be the machine itself, field for
/// field, and share nothing mutable with it (campaigns boot each configuration once and copy it).
struct KernelCopyTests {
    /// Every stored value reachable from `subject`, one line each, descending into class instances
    /// (each once): a field the copy forgets or shares shows up as a difference.
    static func dump(_ subject: Any) -> [String] {
        var lines: [String] = []
        var seen: Set<ObjectIdentifier> = []
        func walk(_ value: Any, _ path: String) {
            let mirror = Mirror(reflecting: value)
            if mirror.displayStyle == .class {
                let id = ObjectIdentifier(value as AnyObject)
                guard seen.insert(id).inserted else { return }
            }
            if mirror.children.isEmpty || mirror.displayStyle == .enum {
                lines.append("\(path) = \(value)")
                return
            }
            // Dictionaries and sets: named by element, not position (their order depends on the storage).
            let unordered = mirror.displayStyle == .dictionary || mirror.displayStyle == .set
            for (index, child) in mirror.children.enumerated() {
                walk(child.value, path + (unordered ? "[\(Self.key(child.value))]" : "." + (child.label ?? "\(index)")))
            }
            if let superclass = mirror.superclassMirror { for child in superclass.children { walk(child.value, path + "." + (child.label ?? "?")) } }
        }
        walk(subject, "kernel")
        return lines.sorted()
    }

    /// A dictionary element's key (or a set element) as text.
    private static func key(_ element: Any) -> String {
        let mirror = Mirror(reflecting: element)
        if mirror.displayStyle == .tuple, let first = mirror.children.first { return "\(first.value)" }
        return "\(element)"
    }

    /// The first line where two dumps differ (nil: none), so a failure names the field.
    static func firstDifference(_ a: [String], _ b: [String]) -> String? {
        for (x, y) in zip(a, b) where x != y { return "\(x)  vs  \(y)" }
        return a.count == b.count ? nil : "\(a.count) lines vs \(b.count)"
    }

    /// A machine with something in every structure: pool blocks, a user buffer, a locked MDL mapped into
    /// system space, an I/O-space mapping, a paged-out page, a second process, a raised IRQL count.
    static func busyKernel() throws -> (Kernel, mdl: VirtualAddress, buffer: VirtualAddress) {
        let k = try Kernel(MachineConfiguration(architecture: .x86, ramBytes: 16 << 20))
        _ = try k.env.allocatePool(.nonPagedPool, bytes: 0x40)
        _ = try k.env.allocatePool(.pagedPool, bytes: 0x1800)
        let buffer = try #require(try k.env.allocateUserBuffer(size: 0x4000, protection: .readWrite))
        try k.env.writeMemory(buffer + 0x10, [1, 2, 3, 4])
        let mdl = try #require(try k.io.allocateMdl(virtualAddress: buffer, length: 0x3000, secondaryBuffer: false, chargeQuota: false, irp: 0))
        try k.mm.probeAndLockPages(mdl, accessMode: .kernelMode, operation: .ioWriteAccess)
        _ = try k.env.pageOut(buffer + 0x3000)
        _ = try k.env.createProcess()
        return (k, mdl, buffer)
    }

    @Test func aCopyIsTheMachineFieldForField() throws {
        let (k, _, _) = try Self.busyKernel()
        let copy = k.copy()
        #expect(Self.firstDifference(Self.dump(copy), Self.dump(k)) == nil)
        #expect(Self.dump(k).count > 50)   // the dump does see the machine's state
    }

    @Test func runningOnACopyLeavesTheOriginalAsItWas() throws {
        let (k, mdl, buffer) = try Self.busyKernel()
        let before = Self.dump(k)
        let copy = k.copy()
        // Change every structure of the copy.
        try copy.env.writeMemory(buffer + 0x20, [9, 9, 9])
        try copy.mm.unlockPages(mdl)
        try copy.io.freeMdl(mdl)
        _ = try copy.env.allocatePool(.nonPagedPool, bytes: 0x2000)
        _ = try copy.env.trimWorkingSet(copy.currentProcessId)
        _ = try copy.env.createProcess()
        #expect(Self.firstDifference(Self.dump(k), before) == nil)
        // And the original, given the same calls, ends where the copy did.
        try k.env.writeMemory(buffer + 0x20, [9, 9, 9])
        try k.mm.unlockPages(mdl)
        try k.io.freeMdl(mdl)
        _ = try k.env.allocatePool(.nonPagedPool, bytes: 0x2000)
        _ = try k.env.trimWorkingSet(k.currentProcessId)
        _ = try k.env.createProcess()
        #expect(Self.firstDifference(Self.dump(k), Self.dump(copy)) == nil)
    }
}
