import MemoryManager
import Testing

/// HalTranslateBusAddress (§2.19): identity translation on x86 for the standard buses, FALSE for absent
/// buses and undecoded addresses, and the out parameters left alone on FALSE.
@Suite struct HalTranslationTests {
    private static let sentinel: PhysicalAddress = 0xDEAD_BEEF_0BAD_F00D

    private func translate(_ k: Kernel, _ type: InterfaceType, bus: UInt32, _ address: UInt64, space: UInt32)
        throws -> (ok: Bool, space: UInt32, translated: PhysicalAddress) {
        var addressSpace = space
        var translated = Self.sentinel
        let ok = try k.hal.translateBusAddress(type, busNumber: bus, busAddress: address, addressSpace: &addressSpace,
                                               translatedAddress: &translated)
        return (ok, addressSpace, translated)
    }

    @Test(arguments: [InterfaceType.internal_, .isa, .eisa, .pciBus])
    func memoryOnBusZeroIsIdentity(type: InterfaceType) throws {
        let k = try Construction.kernel(.x86)
        for address: UInt64 in [0, 0x1000, 0x000D_0000, 0x00AB_C123, 0x00FF_FFFF] {
            let r = try translate(k, type, bus: 0, address, space: 0)
            #expect(r.ok, "\(type) 0x\(String(address, radix: 16))")
            #expect(r.translated == address)
            #expect(r.space == 0)
        }
    }

    @Test(arguments: [InterfaceType.internal_, .eisa, .pciBus])
    func memoryAbove16MiBOnNonIsaBusesIsIdentity(type: InterfaceType) throws {
        let k = try Construction.kernel(.x86)
        for address: UInt64 in [0x1234_5678, 0x8765_4321] {
            let r = try translate(k, type, bus: 0, address, space: 0)
            #expect(r.ok)
            #expect(r.translated == address)
            #expect(r.space == 0)
        }
    }

    @Test(arguments: [InterfaceType.internal_, .isa, .eisa, .pciBus])
    func ioPortsOnBusZeroAreIdentityInIoSpace(type: InterfaceType) throws {
        let k = try Construction.kernel(.x86)
        for port: UInt64 in [0, 0x3F8, 0xCF8, 0xFFFF] {
            let r = try translate(k, type, bus: 0, port, space: 1)
            #expect(r.ok)
            #expect(r.translated == port)
            #expect(r.space == 1)       // translated address lives in I/O port space
        }
    }

    @Test(arguments: [InterfaceType.internal_, .isa, .eisa, .pciBus])
    func ioPortAboveFFFFIsFalseAndLeavesOutParameters(type: InterfaceType) throws {
        let k = try Construction.kernel(.x86)
        let r = try translate(k, type, bus: 0, 0x1_0000, space: 1)
        #expect(!r.ok)
        #expect(r.translated == Self.sentinel)
        #expect(r.space == 1)
    }

    @Test func isaMemoryAbove24BitsFallsBackToEisa() throws {
        let k = try Construction.kernel(.x86)
        for address: UInt64 in [0x0100_0000, 0x0200_0000] {
            let r = try translate(k, .isa, bus: 0, address, space: 0)
            #expect(r.ok)
            #expect(r.translated == address)
            #expect(r.space == 0)
        }
    }

    @Test(arguments: [InterfaceType.microChannel, .turboChannel, .interfaceTypeUndefined, InterfaceType(rawValue: 6)])
    func absentBusTypesReturnFalseAndLeaveOutParameters(type: InterfaceType) throws {
        let k = try Construction.kernel(.x86)
        for space: UInt32 in [0, 1] {
            let r = try translate(k, type, bus: 0, 0x1000, space: space)
            #expect(!r.ok)
            #expect(r.translated == Self.sentinel)
            #expect(r.space == space)
        }
    }

    /// §2.19: only bus 0 of Internal/Isa/Eisa exists on a standard PC (PCI has pcibuses buses).
    @Test(arguments: [InterfaceType.internal_, .isa, .eisa])
    func busOneOfTheSystemBusesDoesNotExist(type: InterfaceType) throws {
        let k = try Construction.kernel(.x86)
        for space: UInt32 in [0, 1] {
            let r = try translate(k, type, bus: 1, 0x1000, space: space)
            #expect(!r.ok)
            #expect(r.translated == Self.sentinel)
            #expect(r.space == space)
        }
    }

    @Test func pciBusNumberAtOrAboveTheBusCountIsFalse() throws {
        let k = try Construction.kernel(.x86)                      // pcibuses = 2: PCI 0 and 1
        #expect(try translate(k, .pciBus, bus: 1, 0x1000, space: 0).ok)
        let r = try translate(k, .pciBus, bus: 2, 0x1000, space: 0)
        #expect(!r.ok)
        #expect(r.translated == Self.sentinel)
        #expect(r.space == 0)
        #expect(!(try translate(k, .pciBus, bus: 7, 0x3F8, space: 1).ok))

        let four = try Construction.kernel(.x86, pciBuses: 4)
        #expect(try translate(four, .pciBus, bus: 3, 0x1000, space: 0).ok)
        #expect(!(try translate(four, .pciBus, bus: 4, 0x1000, space: 0).ok))
        let none = try Construction.kernel(.x86, pciBuses: 0)
        #expect(!(try translate(none, .pciBus, bus: 0, 0x1000, space: 0).ok))
    }

    @Test func standardDeviceWindowBehindTheBridgeOnPciBusOne() throws {
        let k = try Construction.kernel(.x86)
        var r = try translate(k, .pciBus, bus: 1, 0x4000_0000, space: 0)
        #expect(r.ok)
        #expect(r.translated == 0xF010_0000)
        #expect(r.space == 0)
        r = try translate(k, .pciBus, bus: 1, 0x4000_0010, space: 0)
        #expect(r.ok)
        #expect(r.translated == 0xF010_0010)
        #expect(r.space == 0)
        r = try translate(k, .pciBus, bus: 1, 0x4000_FFFF, space: 0)     // last byte of the 64 KiB window
        #expect(r.translated == 0xF010_FFFF)
        // The bus number matters: PCI bus 0 does not have that window.
        r = try translate(k, .pciBus, bus: 0, 0x4000_0000, space: 0)
        #expect(r.ok)
        #expect(r.translated == 0x4000_0000)
        // The PCI bus 0 frame buffer window is identity-translated.
        r = try translate(k, .pciBus, bus: 0, 0xF000_1234, space: 0)
        #expect(r.translated == 0xF000_1234)
        r = try translate(k, .pciBus, bus: 0, 0xF000_0000, space: 0)
        #expect(r.ok)
        #expect(r.translated == 0xF000_0000)
        #expect(r.space == 0)
    }

    @Test func addressSpaceOtherThanMemoryOrPortMatchesNothing() throws {
        let k = try Construction.kernel(.x86)
        for space: UInt32 in [2, 7] {
            let r = try translate(k, .internal_, bus: 0, 0x1000, space: space)
            #expect(!r.ok)
            #expect(r.translated == Self.sentinel)
            #expect(r.space == space)
        }
    }

    /// §2.19 default ranges (ReactOS legacy HAL): Memory 0..0xFFFFFFFF, so a 64-bit bus address above
    /// 4 GiB matches no range on an x86 Internal bus.
    @Test func x86MemoryAbove4GiBIsNotDecoded() throws {
        let k = try Construction.kernel(.x86)
        let r = try translate(k, .internal_, bus: 0, 0x1_0000_0000, space: 0)
        #expect(!r.ok)
        #expect(r.translated == Self.sentinel)
        #expect(try translate(k, .internal_, bus: 0, 0xFFFF_FFFF, space: 0).translated == 0xFFFF_FFFF)
    }
}
