import LockstepPrograms

/// Why the model cannot follow a program at all.
public struct ModelError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The machine as the model reads the `machine` line (its own reading of the spec's §1.1 and the
/// conventions page; nothing here comes from the engine).
struct ModelMachine {
    enum Mode: String { case free, checked, verifier }

    let pointer64: Bool
    let pageSize: UInt64
    let headerSize: UInt64
    let pfnSize: UInt64
    let highestUser: UInt64
    let probeAddress: UInt64
    let highestVad: UInt64
    let lowestUser: UInt64 = 0x1_0000
    let mode: Mode
    /// 0 = 4.0sp3, 1 = 4.0, 2 = 5.1, 3 = 6.0, 4 = 6.1, 5 = 6.2, 6 = 10.0.
    let version: Int
    let ramBytes: UInt64
    let nonpagedBytes: UInt64
    let pagedBytes: UInt64
    let ptes: UInt64
    let lockLimit: UInt64
    let pciBuses: UInt64
    let strictMap: Bool
    /// Verifier's policy stops (0x6F; 0x81/0x82 with strictmap); `policystops=0` turns them off.
    let policyStops: Bool
    let devices: [(type: String, bus: UInt64, busAddress: UInt64, length: UInt64, physical: UInt64)]
    let nonpagedBase: UInt64
    let pagedBase: UInt64
    let pteBase: UInt64

    var mask: UInt64 { pointer64 ? .max : 0xFFFF_FFFF }
    var emptyPfn: UInt64 { pfnSize == 4 ? 0xFFFF_FFFF : .max }
    var verifier: Bool { mode == .verifier }
    var checked: Bool { mode == .checked }
    var highestRamPfn: UInt64 { ramBytes / pageSize &- 1 }

    init(_ line: MachineLine) throws(ModelError) {
        switch line.architecture {
        case "x86", "alpha":
            pointer64 = false
            pageSize = line.architecture == "x86" ? 0x1000 : 0x2000
            headerSize = 28; pfnSize = 4
            highestUser = 0x7FFE_FFFF; probeAddress = 0x7FFF_0000
            nonpagedBase = 0x8100_0000; pagedBase = 0xE100_0000; pteBase = 0xC100_0000
        case "x64":
            pointer64 = true
            pageSize = 0x1000
            headerSize = 48; pfnSize = 8
            highestUser = 0x7FF_FFFE_FFFF; probeAddress = 0x7FF_FFFF_0000
            nonpagedBase = 0xFFFF_FA80_0000_0000; pagedBase = 0xFFFF_F8A0_0000_0000; pteBase = 0xFFFF_F880_0000_0000
        default: throw ModelError(message: "unknown architecture \(line.architecture)")
        }
        highestVad = highestUser - 16 * pageSize
        func size(_ key: String, _ fallback: UInt64) throws(ModelError) -> UInt64 {
            guard let text = line[key] else { return fallback }
            guard let value = ProgramNumber.parseSize(text) else { throw ModelError(message: "bad \(key)=\(excerpt(text))") }
            guard value <= 1 << 48 else { throw ModelError(message: "\(key)=\(excerpt(text)) is larger than the model follows") }
            return value
        }
        ramBytes = try size("ram", 16 << 20)
        nonpagedBytes = try size("nonpaged", 256 << 10)
        pagedBytes = try size("paged", 1 << 20)
        ptes = try size("ptes", 512)
        lockLimit = try size("locklimit", 0)
        pciBuses = try size("pcibuses", 2)
        strictMap = (try size("strictmap", 0)) != 0
        policyStops = (try size("policystops", 1)) != 0
        guard let mode = Mode(rawValue: line["mode"] ?? "verifier") else { throw ModelError(message: "bad mode") }
        self.mode = mode
        let versions = ["4.0sp3", "4.0", "5.1", "6.0", "6.1", "6.2", "10.0"]
        guard let version = versions.firstIndex(of: line["version"] ?? "5.1") else { throw ModelError(message: "bad version") }
        self.version = version
        var devices: [(String, UInt64, UInt64, UInt64, UInt64)] = []
        let explicit = line.settings.filter { $0.key == "device" || $0.key == "devices" }
        if explicit.isEmpty {
            devices = [("PCIBus", 0, 0xF000_0000, 0x10_0000, 0xF000_0000), ("PCIBus", 1, 0x4000_0000, 0x1_0000, 0xF010_0000),
                       ("Isa", 0, 0xD_0000, 0x1_0000, 0xD_0000)]
        } else {
            for setting in explicit where setting.key == "device" {
                // Bus.N:busAddress+length@physical
                let v = setting.value
                guard let colon = v.firstIndex(of: ":"), let plus = v.firstIndex(of: "+"), let at = v.firstIndex(of: "@") else {
                    throw ModelError(message: "bad device \(excerpt(v))")
                }
                let bus = v[..<colon].split(separator: ".")
                // A number the model cannot read refuses the machine: read as 0, it would put the device
                // somewhere the engine does not and make a false divergence.
                func number(_ s: Substring) throws(ModelError) -> UInt64 {
                    guard let value = ProgramNumber.parse(s) else { throw ModelError(message: "bad device \(excerpt(v))") }
                    return value
                }
                devices.append((String(bus.first ?? ""), UInt64(bus.last ?? "0") ?? 0, try number(v[v.index(after: colon)..<plus]),
                                try number(v[v.index(after: plus)..<at]), try number(v[v.index(after: at)...])))
            }
        }
        self.devices = devices.map { (type: $0.0, bus: $0.1, busAddress: $0.2, length: $0.3, physical: $0.4) }
    }

    /// The size a pool block really takes (conventions): whole pages from a page up, else the pool
    /// granularity (8 bytes on 32-bit, 16 on x64).
    func poolBlockSize(_ bytes: UInt64) -> UInt64 {
        if bytes >= pageSize {
            let pages = bytes / pageSize + (bytes % pageSize != 0 ? 1 : 0)
            let (rounded, overflow) = pages.multipliedReportingOverflow(by: pageSize)
            return overflow ? .max : rounded
        }
        let granularity: UInt64 = pointer64 ? 16 : 8
        return max(granularity, (bytes + granularity - 1) / granularity * granularity)
    }

    func byteOffset(_ va: UInt64) -> UInt64 { va & (pageSize - 1) }
    func pageAlign(_ va: UInt64) -> UInt64 { va & ~(pageSize - 1) & mask }
    /// ADDRESS_AND_SIZE_TO_SPAN_PAGES in ULONG_PTR arithmetic, cast to ULONG.
    func span(_ va: UInt64, _ length: UInt64) -> UInt64 {
        (((byteOffset(va) &+ (length & mask) &+ (pageSize - 1)) & mask) / pageSize) & 0xFFFF_FFFF
    }
    func mdlBytes(_ va: UInt64, _ length: UInt64) -> UInt64 { (headerSize &+ pfnSize &* span(va, length)) & mask }
    func isUser(_ va: UInt64) -> Bool { (va & mask) <= highestUser }
    func isRam(_ physical: UInt64) -> Bool {
        let page = physical / pageSize
        return page < ramBytes / pageSize && !(physical >= 0xA_0000 && physical < 0x10_0000)
    }
    /// True when a device window (or the legacy hole) covers some byte of physical page `pfn`: only such
    /// pages keep what is written; a page nothing decodes reads 0xFF and drops writes (conventions).
    func decodes(pfn: UInt64) -> Bool {
        let (first, overflow) = pfn.multipliedReportingOverflow(by: pageSize)
        guard !overflow else { return false }
        let last = first + (pageSize - 1)
        return devices.contains { last >= $0.physical && first - min(first, $0.physical) < $0.length }
            || (last >= 0xA_0000 && first < 0x10_0000)
    }
    func isDevice(_ physical: UInt64) -> Bool {
        devices.contains { physical >= $0.physical && physical - $0.physical < $0.length } || (physical >= 0xA_0000 && physical < 0x10_0000)
    }
}
