/// How strictly the simulated kernel checks its callers (spec §6 item 7).
public enum CheckingMode: String, Sendable, CaseIterable, Codable {
    /// A free build: misuse does what the algorithm does, including silent corruption.
    case free
    /// A checked build: the routines' ASSERTs become bug checks (see ``AssertionSite``).
    case checked
    /// A free build with Driver Verifier on: the 0xC4 codes of spec §4.2 and the bug checks of §4.3.
    case verifier
}

/// The Windows version whose behaviour the engine follows where the spec records differences.
public enum WindowsVersion: String, Sendable, CaseIterable, Codable, Comparable {
    /// NT 4.0 before SP4: MmMapLockedPages returns the first page's address, without the byte offset;
    /// MmMapIoSpace and IoBuildPartialMdl are PASSIVE_LEVEL routines.
    case nt40sp3 = "4.0sp3"
    /// NT 4.0 SP4 and later service packs.
    case nt40 = "4.0"
    /// Windows 2000/XP/2003 (NT 5.x): the baseline. IoAllocateMdl uses the lookaside up to 23 pages and
    /// refuses a Size above 0xFFFF or a Length of 2 GiB or more; MmBuildMdlForNonPagedPool does not check
    /// residency; Driver Verifier has no locked-page tracking (process exit with locked pages is 0x76).
    case nt5 = "5.1"
    /// Windows Vista: lookaside up to 17 pages; Size unchecked (wraps) but Length >= 2 GiB fails;
    /// Verifier's locked-page tracking (0xCB) from here on.
    case nt60 = "6.0"
    /// Windows 7: any ULONG length is accepted; a span that wraps in 32 bits is a pool block, never the
    /// lookaside.
    case nt61 = "6.1"
    /// Windows 8 and 8.1 (NT 6.2/6.3): a wrapped span small enough comes from the lookaside
    /// (MDL_ALLOCATED_FIXED_SIZE); checked builds ASSERT when MmBuildMdlForNonPagedPool meets a page
    /// that is not resident.
    case nt62 = "6.2"
    /// Windows 10 and later: MmBuildMdlForNonPagedPool bug-checks 0x1A/0x1240 on a page that is not
    /// resident.
    case nt100 = "10.0"

    static let order: [WindowsVersion] = [.nt40sp3, .nt40, .nt5, .nt60, .nt61, .nt62, .nt100]
    public static func < (a: Self, b: Self) -> Bool { order.firstIndex(of: a)! < order.firstIndex(of: b)! }
}

/// A device's memory window: bus-relative memory the device decodes, and the physical (I/O space)
/// address range it appears at after HalTranslateBusAddress. Device memory is not RAM: it has no
/// PFN database entry, so MDLs that describe it carry MDL_IO_SPACE.
public struct DeviceWindow: Hashable, Sendable, CustomStringConvertible {
    public var interfaceType: InterfaceType
    public var busNumber: UInt32
    public var busAddress: UInt64
    public var length: UInt64
    public var physicalAddress: PhysicalAddress

    public init(_ interfaceType: InterfaceType, bus: UInt32, busAddress: UInt64, length: UInt64, physicalAddress: PhysicalAddress) {
        self.interfaceType = interfaceType
        self.busNumber = bus
        self.busAddress = busAddress
        self.length = length
        self.physicalAddress = physicalAddress
    }

    /// `PCIBus.1:0x40000000+0x10000@0xF0100000`.
    public var description: String {
        "\(interfaceType).\(busNumber):\(hex(busAddress))+\(hex(length))@\(hex(physicalAddress))"
    }

    init?(parsing text: Substring) {
        guard let colon = text.firstIndex(of: ":"), let plus = text.firstIndex(of: "+"),
              let at = text.firstIndex(of: "@"), colon < plus, plus < at else { return nil }
        let busPart = text[..<colon].split(separator: ".")
        guard busPart.count == 2, let type = InterfaceType(name: String(busPart[0])),
              let number = UInt32(busPart[1]),
              let base = parseNumber(text[text.index(after: colon)..<plus]),
              let length = parseNumber(text[text.index(after: plus)..<at]), length > 0,
              let physical = parseNumber(text[text.index(after: at)...]) else { return nil }
        self.init(type, bus: number, busAddress: base, length: length, physicalAddress: physical)
    }
}

/// The simulated machine: architecture, memory sizes, buses, devices and checking mode.
/// Printable and parseable: it is the `machine` line at the top of every program.
public struct MachineConfiguration: Hashable, Sendable, CustomStringConvertible {
    public var architecture: Architecture
    /// Installed RAM in bytes (a multiple of the page size).
    public var ramBytes: UInt64
    /// Bytes of nonpaged pool (backed by frames at boot).
    public var nonpagedPoolBytes: UInt64
    /// Bytes of paged pool (demand-zero, pageable).
    public var pagedPoolBytes: UInt64
    /// Number of system PTEs available for MDL and I/O space mappings.
    public var systemPtes: UInt64
    public var checking: CheckingMode
    public var version: WindowsVersion
    /// `IoPageLockLimit` in pages: MmProbeAndLockPages raises STATUS_WORKING_SET_QUOTA past it. 0 = no limit.
    public var lockLimitPages: UInt64
    /// Number of PCI buses (PCIBus 0 … n-1).
    public var pciBuses: UInt32
    /// Device memory windows (I/O space).
    public var devices: [DeviceWindow]
    /// Driver Verifier's 0xC4/0x81 and 0x82 (any MmMapLockedPages, or SpecifyCache with BugCheckOnFailure).
    /// Off by default: applied to every call it would make MmGetSystemAddressForMdl unusable. [spec unsure]
    public var strictMappingChecks: Bool
    /// Driver Verifier's policy stops: practices it refuses although a free build defines them (0x6F
    /// probe-locking device memory; 0x81/0x82 with `strictmap`). On by default; `policystops=0` turns
    /// them off, so a Verifier run stops only at corruption (how campaigns tell misuse from engine
    /// findings on free builds).
    public var verifierPolicyStops: Bool

    public init(architecture: Architecture = .x86, ramBytes: UInt64 = 16 << 20, nonpagedPoolBytes: UInt64 = 256 << 10,
                pagedPoolBytes: UInt64 = 1 << 20, systemPtes: UInt64 = 512, checking: CheckingMode = .verifier,
                version: WindowsVersion = .nt5, lockLimitPages: UInt64 = 0, pciBuses: UInt32 = 2,
                devices: [DeviceWindow]? = nil, strictMappingChecks: Bool = false, verifierPolicyStops: Bool = true) {
        self.architecture = architecture
        self.ramBytes = ramBytes
        self.nonpagedPoolBytes = nonpagedPoolBytes
        self.pagedPoolBytes = pagedPoolBytes
        self.systemPtes = systemPtes
        self.checking = checking
        self.version = version
        self.lockLimitPages = lockLimitPages
        self.pciBuses = pciBuses
        self.devices = devices ?? Self.standardDevices
        self.strictMappingChecks = strictMappingChecks
        self.verifierPolicyStops = verifierPolicyStops
    }

    /// A frame buffer on PCI bus 0 (identity-translated), a window behind a bridge on PCI bus 1 (bus
    /// address 0x40000000 appears at physical 0xF0100000, so the bus number matters), and an ISA
    /// adapter's memory in the legacy hole below 1 MiB.
    public static let standardDevices: [DeviceWindow] = [
        DeviceWindow(.pciBus, bus: 0, busAddress: 0xF000_0000, length: 0x10_0000, physicalAddress: 0xF000_0000),
        DeviceWindow(.pciBus, bus: 1, busAddress: 0x4000_0000, length: 0x1_0000, physicalAddress: 0xF010_0000),
        DeviceWindow(.isa, bus: 0, busAddress: 0xD_0000, length: 0x1_0000, physicalAddress: 0xD_0000),
    ]

    /// The default machine: x86, 16 MiB, Driver Verifier on, NT 5.x behaviour.
    public static let standard = MachineConfiguration()

    public var constants: PlatformConstants { PlatformConstants(architecture) }

    /// `machine x86 ram=16M nonpaged=256K paged=1M ptes=512 mode=verifier version=5.1` (+ non-default extras).
    public var description: String {
        var parts = ["machine", architecture.rawValue, "ram=\(formatSize(ramBytes))",
                     "nonpaged=\(formatSize(nonpagedPoolBytes))", "paged=\(formatSize(pagedPoolBytes))",
                     "ptes=\(systemPtes)", "mode=\(checking.rawValue)", "version=\(version.rawValue)"]
        if lockLimitPages != 0 { parts.append("locklimit=\(lockLimitPages)") }
        if pciBuses != 2 { parts.append("pcibuses=\(pciBuses)") }
        if strictMappingChecks { parts.append("strictmap=1") }
        if !verifierPolicyStops { parts.append("policystops=0") }
        if devices != Self.standardDevices {
            parts.append(contentsOf: devices.isEmpty ? ["devices=none"] : devices.map { "device=\($0)" })
        }
        return parts.joined(separator: " ")
    }

    /// Parses the `machine …` line. Unknown keys and bad values are errors that say what is accepted.
    public init(parsing line: String) throws(ConfigurationError) {
        let words = line.split(separator: " ", omittingEmptySubsequences: true)
        guard words.first == "machine" else { throw ConfigurationError("expected 'machine <arch> key=value…'") }
        guard words.count >= 2, let arch = Architecture(rawValue: String(words[1])) else {
            throw ConfigurationError("unknown architecture '\(excerpt(words.count > 1 ? String(words[1]) : ""))'; use x86, x64 or alpha")
        }
        self.init(architecture: arch)
        var parsedDevices: [DeviceWindow] = []
        var sawDevices = false
        for word in words.dropFirst(2) {
            guard let eq = word.firstIndex(of: "=") else { throw ConfigurationError("expected key=value, found '\(excerpt(word))'") }
            let key = word[..<eq], value = word[word.index(after: eq)...]
            func number() throws(ConfigurationError) -> UInt64 {
                guard let n = parseSize(value) else { throw ConfigurationError("bad number '\(excerpt(value))' for \(key)") }
                return n
            }
            switch key {
            case "ram": ramBytes = try number()
            case "nonpaged": nonpagedPoolBytes = try number()
            case "paged": pagedPoolBytes = try number()
            case "ptes": systemPtes = try number()
            case "locklimit": lockLimitPages = try number()
            case "pcibuses": pciBuses = UInt32(truncatingIfNeeded: try number())
            case "strictmap": strictMappingChecks = try number() != 0
            case "policystops": verifierPolicyStops = try number() != 0
            case "mode":
                guard let mode = CheckingMode(rawValue: String(value)) else {
                    throw ConfigurationError("unknown mode '\(excerpt(value))'; use free, checked or verifier")
                }
                checking = mode
            case "version":
                guard let v = WindowsVersion(rawValue: String(value)) else {
                    throw ConfigurationError("unknown version '\(excerpt(value))'; use 4.0sp3, 4.0, 5.1, 6.0, 6.1, 6.2 or 10.0")
                }
                version = v
            case "devices":
                guard value == "none" else { throw ConfigurationError("devices= takes only 'none'") }
                sawDevices = true
            case "device":
                guard let device = DeviceWindow(parsing: value) else {
                    throw ConfigurationError("bad device '\(excerpt(value))'; expected e.g. PCIBus.1:0x40000000+0x10000@0xF0100000")
                }
                parsedDevices.append(device)
                sawDevices = true
            default:
                throw ConfigurationError("unknown machine key '\(excerpt(key))'; keys: ram nonpaged paged ptes mode version locklimit pcibuses strictmap policystops device devices")
            }
        }
        if sawDevices { devices = parsedDevices }
        try validate()
    }

    /// Checks the sizes make a machine that can boot.
    public func validate() throws(ConfigurationError) {
        let page = constants.pageSize
        guard ramBytes % page == 0, ramBytes >= 64 * page, ramBytes <= 4 << 30 else {
            throw ConfigurationError("ram must be a multiple of the page size between 64 pages and 4G")
        }
        guard nonpagedPoolBytes % page == 0, nonpagedPoolBytes >= 4 * page, nonpagedPoolBytes <= 64 << 20 else {
            throw ConfigurationError("nonpaged must be a page multiple between 4 pages and 64M")
        }
        guard nonpagedPoolBytes / page + 64 < ramBytes / page else {
            throw ConfigurationError("nonpaged pool must leave at least 64 frames of RAM")
        }
        guard pagedPoolBytes % page == 0, pagedPoolBytes <= 256 << 20 else {
            throw ConfigurationError("paged must be a page multiple up to 256M")
        }
        guard systemPtes >= 1, systemPtes <= 1 << 20 else { throw ConfigurationError("ptes must be between 1 and 1048576") }
        guard pciBuses <= 256 else { throw ConfigurationError("pcibuses must be at most 256") }
        let ramTop = ramBytes
        for device in devices where device.length == 0 || device.physicalAddress &+ device.length < device.physicalAddress {
            throw ConfigurationError("device \(excerpt(device.description)) has no length or runs past the end of physical memory")
        }
        for device in devices where device.physicalAddress < ramTop && !isLegacyHole(device.physicalAddress, length: device.length) {
            throw ConfigurationError("device \(device) overlaps RAM; put device memory above ram or in 0xA0000-0xFFFFF")
        }
    }

    func isLegacyHole(_ address: UInt64, length: UInt64) -> Bool {
        address >= 0xA_0000 && address &+ length <= 0x10_0000
    }
}

/// A machine line that does not parse or describes a machine that cannot boot.
public struct ConfigurationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16, uppercase: true) }

func parseNumber(_ text: Substring) -> UInt64? {
    if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
    return UInt64(text)
}

/// `16M`, `256K`, `1G`, `0x1000` or a decimal number.
func parseSize(_ text: Substring) -> UInt64? {
    guard let last = text.last else { return nil }
    let shift: UInt64? = switch last { case "K": 10; case "M": 20; case "G": 30; default: nil }
    if let shift {
        guard let n = UInt64(text.dropLast()), n < (1 << (63 - shift)) else { return nil }
        return n << shift
    }
    return parseNumber(text)
}

func formatSize(_ bytes: UInt64) -> String {
    if bytes != 0 && bytes % (1 << 30) == 0 { return "\(bytes >> 30)G" }
    if bytes != 0 && bytes % (1 << 20) == 0 { return "\(bytes >> 20)M" }
    if bytes != 0 && bytes % (1 << 10) == 0 { return "\(bytes >> 10)K" }
    return "\(bytes)"
}

/// `text` as a configuration error quotes it: whole when short, else its first 40 characters and length.
func excerpt<Text: StringProtocol>(_ text: Text) -> String {
    guard text.utf8.count > 40 else { return String(text) }
    return String(text.prefix(40)) + "… (\(text.utf8.count) bytes)"
}
