/// The HAL's bus handlers: for each (InterfaceType, BusNumber) the address ranges the bus decodes and
/// where each lands in system physical address space (spec §2.19, ReactOS legacy-HAL model).
struct BusTranslator {
    struct Range {
        /// 0 = memory, 1 = I/O port space (the `AddressSpace` input value it matches).
        var space: UInt32
        var base: UInt64
        var limit: UInt64
        var systemBase: UInt64
        var systemSpace: UInt32
    }

    struct BusKey: Hashable {
        var type: InterfaceType
        var number: UInt32
    }

    private var buses: [BusKey: [Range]] = [:]

    init(configuration: MachineConfiguration) {
        let memoryLimit: UInt64 = configuration.architecture == .x64 ? 0xFFFF_FFFF_FFFF : 0xFFFF_FFFF
        let standardMemory = Range(space: 0, base: 0, limit: memoryLimit, systemBase: 0, systemSpace: 0)
        let standardPorts = Range(space: 1, base: 0, limit: 0xFFFF, systemBase: 0, systemSpace: 1)
        buses[BusKey(type: .internal_, number: 0)] = [standardMemory, standardPorts]
        buses[BusKey(type: .eisa, number: 0)] = [standardMemory, standardPorts]
        // ISA decodes 24 address bits of memory.
        buses[BusKey(type: .isa, number: 0)] = [Range(space: 0, base: 0, limit: 0xFF_FFFF, systemBase: 0, systemSpace: 0), standardPorts]
        for number in 0..<configuration.pciBuses {
            buses[BusKey(type: .pciBus, number: number)] = [standardMemory, standardPorts]
        }
        // Device windows come first: the first matching range wins.
        for device in configuration.devices.reversed() {
            let key = BusKey(type: device.interfaceType, number: device.busNumber)
            let window = Range(space: 0, base: device.busAddress, limit: device.busAddress &+ device.length &- 1,
                               systemBase: device.physicalAddress &- device.busAddress, systemSpace: 0)
            buses[key, default: []].insert(window, at: 0)
        }
    }

    /// Translates like HalTranslateBusAddress: nil when the bus does not exist or decodes no range
    /// containing the address in that space. ISA memory that ISA does not decode falls back to EISA.
    func translate(_ type: InterfaceType, bus: UInt32, address: UInt64, space: UInt32) -> (address: UInt64, space: UInt32)? {
        if let result = lookup(BusKey(type: type, number: bus), address, space) { return result }
        if type == .isa && space == 0, buses[BusKey(type: .isa, number: bus)] != nil {
            return lookup(BusKey(type: .eisa, number: bus), address, space)
        }
        return nil
    }

    private func lookup(_ key: BusKey, _ address: UInt64, _ space: UInt32) -> (address: UInt64, space: UInt32)? {
        guard let ranges = buses[key] else { return nil }
        for range in ranges where range.space == space && address >= range.base && address <= range.limit {
            return (address &+ range.systemBase, range.systemSpace)
        }
        return nil
    }
}
