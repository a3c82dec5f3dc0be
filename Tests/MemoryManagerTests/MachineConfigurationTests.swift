import MemoryManager
import Testing

/// MachineConfiguration: the printed `machine …` line, parsing it back, and errors that name the problem.
@Suite struct MachineConfigurationTests {
    @Test func standardDescription() {
        #expect(MachineConfiguration.standard.description
                == "machine x86 ram=16M nonpaged=256K paged=1M ptes=512 mode=verifier version=5.1")
    }

    static let configurations: [MachineConfiguration] = [
        .standard,
        MachineConfiguration(architecture: .x64, ramBytes: 64 << 20, checking: .free, version: .nt61),
        MachineConfiguration(architecture: .x64, ramBytes: 64 << 20, checking: .free, version: .nt61, lockLimitPages: 100),
        MachineConfiguration(architecture: .alpha, ramBytes: 32 << 20, nonpagedPoolBytes: 512 << 10, pagedPoolBytes: 2 << 20,
                             systemPtes: 1024, checking: .checked, version: .nt40sp3),
        MachineConfiguration(architecture: .alpha, systemPtes: 64, checking: .checked, version: .nt40sp3, pciBuses: 4,
                             devices: [DeviceWindow(.pciBus, bus: 3, busAddress: 0x1000_0000, length: 0x2000, physicalAddress: 0xE000_0000)],
                             strictMappingChecks: true),
        MachineConfiguration(lockLimitPages: 100, pciBuses: 4, strictMappingChecks: true),
        MachineConfiguration(version: .nt60, devices: []),
        MachineConfiguration(devices: []),
        MachineConfiguration(architecture: .x64, version: .nt40, devices: [
            DeviceWindow(.pciBus, bus: 3, busAddress: 0x8000_0000, length: 0x2_0000, physicalAddress: 0xE000_0000),
            DeviceWindow(.eisa, bus: 0, busAddress: 0xC_0000, length: 0x8000, physicalAddress: 0xC_0000),
        ]),
        MachineConfiguration(ramBytes: 4 << 30, nonpagedPoolBytes: 64 << 20, pagedPoolBytes: 0, systemPtes: 65536,
                             pciBuses: 0, devices: []),
    ]

    @Test(arguments: configurations)
    func descriptionParsesBackToTheSameConfiguration(configuration: MachineConfiguration) throws {
        let parsed = try MachineConfiguration(parsing: configuration.description)
        #expect(parsed == configuration)
        #expect(parsed.description == configuration.description)
    }

    @Test func parseOfAHandWrittenLine() throws {
        let c = try MachineConfiguration(parsing:
            "machine x64 ram=64M nonpaged=1M paged=0x200000 ptes=2048 mode=free version=6.0 locklimit=300 pcibuses=3 strictmap=1 device=PCIBus.1:0x40000000+0x10000@0xF0100000")
        #expect(c.architecture == .x64)
        #expect(c.ramBytes == 64 << 20)
        #expect(c.nonpagedPoolBytes == 1 << 20)
        #expect(c.pagedPoolBytes == 0x20_0000)
        #expect(c.systemPtes == 2048)
        #expect(c.checking == .free)
        #expect(c.version == .nt60)
        #expect(c.lockLimitPages == 300)
        #expect(c.pciBuses == 3)
        #expect(c.strictMappingChecks)
        #expect(c.devices == [DeviceWindow(.pciBus, bus: 1, busAddress: 0x4000_0000, length: 0x1_0000, physicalAddress: 0xF010_0000)])
    }

    @Test func omittedKeysTakeTheDefaults() throws {
        let c = try MachineConfiguration(parsing: "machine alpha")
        #expect(c == MachineConfiguration(architecture: .alpha))
        #expect(c.checking == .verifier)
        #expect(c.version == .nt5)
        #expect(c.devices == MachineConfiguration.standardDevices)
    }

    @Test func nonDefaultKeysAppearInTheDescription() {
        let c = MachineConfiguration(lockLimitPages: 7, pciBuses: 1, devices: [], strictMappingChecks: true, verifierPolicyStops: false)
        let words = c.description.split(separator: " ").map(String.init)
        #expect(words.contains("policystops=0"))
        #expect(!MachineConfiguration().description.contains("policystops"))
        #expect(words.contains("locklimit=7"))
        #expect(words.contains("pcibuses=1"))
        #expect(words.contains("strictmap=1"))
        #expect(words.contains("devices=none"))
        let device = MachineConfiguration(devices: [DeviceWindow(.isa, bus: 0, busAddress: 0xD_0000, length: 0x1000, physicalAddress: 0xD_0000)])
        #expect(device.description.hasSuffix("device=Isa.0:0xD0000+0x1000@0xD0000"))
    }

    @Test func deviceWindowDescription() {
        let d = DeviceWindow(.pciBus, bus: 1, busAddress: 0x4000_0000, length: 0x1_0000, physicalAddress: 0xF010_0000)
        #expect(d.description == "PCIBus.1:0x40000000+0x10000@0xF0100000")
    }

    /// Each bad line, and a word the error message must contain.
    static let badLines: [(String, String)] = [
        ("", "machine"),
        ("mach x86", "machine"),
        ("machine", "architecture"),
        ("machine sparc", "sparc"),
        ("machine x86 ram", "ram"),
        ("machine x86 ram=lots", "lots"),
        ("machine x86 ram=16Q", "16Q"),
        ("machine x86 flavour=vanilla", "flavour"),
        ("machine x86 colour=blue", "colour"),
        ("machine x86 mode=paranoid", "paranoid"),
        ("machine x86 version=3.51", "3.51"),
        ("machine x86 devices=some", "devices"),
        ("machine x86 device=PCIBus.1:0x40000000", "PCIBus.1:0x40000000"),
        ("machine x86 device=NoSuchBus.0:0x1000+0x1000@0xF0000000", "NoSuchBus"),
        ("machine x86 device=PCIBus.0:0x1000+0@0xF0000000", "device"),
        ("machine x86 ram=1000", "ram"),                 // not a page multiple
        ("machine x86 ram=12345", "ram"),
        ("machine x86 ram=8G", "ram"),                   // above 4G
        ("machine x86 ram=64K", "ram"),                  // below 64 pages
        ("machine alpha ram=0x1001000", "ram"),         // a 4 KiB multiple but not an 8 KiB one
        ("machine x86 nonpaged=4K", "nonpaged"),         // below 4 pages
        ("machine x86 ram=1M nonpaged=1M", "nonpaged"),  // leaves no RAM
        ("machine x86 paged=1001", "paged"),
        ("machine x86 ptes=0", "ptes"),
        ("machine x86 pcibuses=300", "pcibuses"),
        ("machine x86 device=PCIBus.0:0x1000+0x1000@0x100000", "overlaps"),   // inside 16 MiB of RAM
    ]

    @Test(arguments: badLines)
    func badLinesAreRejectedWithAMessageNamingTheProblem(line: String, mentions: String) {
        do {
            let c = try MachineConfiguration(parsing: line)
            Issue.record("'\(line)' parsed as \(c)")
        } catch {
            #expect(error.message.contains(mentions), "'\(line)': \(error.message)")
        }
    }

    @Test func unknownArchitectureAndModeErrorsListTheChoices() {
        #expect(throws: ConfigurationError("unknown architecture 'arm'; use x86, x64 or alpha")) { try MachineConfiguration(parsing: "machine arm") }
        #expect(throws: ConfigurationError("unknown mode 'fast'; use free, checked or verifier")) { try MachineConfiguration(parsing: "machine x86 mode=fast") }
    }

    @Test func deviceInTheLegacyHoleIsAccepted() throws {
        let c = try MachineConfiguration(parsing: "machine x86 device=Isa.0:0xA0000+0x20000@0xA0000")
        #expect(c.devices.count == 1)
        #expect(throws: ConfigurationError.self) {
            try MachineConfiguration(parsing: "machine x86 device=Isa.0:0xA0000+0x60001@0xA0000")   // runs past 1 MiB
        }
    }

    @Test func tooManyPtesForA32BitMachineDoNotBoot() throws {
        let ok = MachineConfiguration(systemPtes: 65536)
        _ = try Kernel(ok)
        let big = MachineConfiguration(systemPtes: 65537)
        #expect(throws: ConfigurationError.self) { _ = try Kernel(big) }
        _ = try Kernel(MachineConfiguration(architecture: .x64, systemPtes: 65537))
    }
}
