/// What a parameter accepts.
public enum ArgumentKind: String, Sendable, CaseIterable {
    /// An MDL, pool block, user buffer, IRP or process: a name, `none`, or a raw address.
    case handle
    /// A virtual or physical address: an expression such as `b0+0x10`, `0x7FFE0000` or `none`.
    case address
    /// A byte count: a number or an expression.
    case length
    /// A small number (bus number, address space).
    case number
    case boolean
    /// Hex bytes, e.g. `0102A5FF`.
    case bytes
    case processorMode
    case lockOperation
    case cachingType
    case pagePriority
    case interfaceType
    case poolType
    case protection
    case irql
    /// A driver request's transfer method: METHOD_BUFFERED, direct I/O (an MDL), METHOD_NEITHER.
    case transferMethod

    /// The symbols an enumeration kind accepts, as NT spells them; nil for non-enumeration kinds.
    /// Numbers are accepted too (for out-of-range values such as a cache type of 7).
    public var symbols: [String]? {
        switch self {
        case .processorMode: ["KernelMode", "UserMode"]
        case .lockOperation: ["IoReadAccess", "IoWriteAccess", "IoModifyAccess"]
        case .cachingType: ["MmNonCached", "MmCached", "MmWriteCombined", "MmHardwareCoherentCached",
                            "MmNonCachedUnordered", "MmUSWCCached"]
        case .pagePriority: ["LowPagePriority", "NormalPagePriority", "HighPagePriority"]
        case .interfaceType: ["InterfaceTypeUndefined", "Internal", "Isa", "Eisa", "MicroChannel", "TurboChannel", "PCIBus",
                              "VMEBus", "NuBus", "PCMCIABus", "CBus", "MPIBus", "MPSABus", "ProcessorInternal",
                              "InternalPowerBus", "PNPISABus", "PNPBus", "Vmcs", "ACPIBus"]
        case .poolType: ["NonPagedPool", "PagedPool"]
        case .protection: ["ReadWrite", "ReadOnly", "NoAccess"]
        case .irql: ["PASSIVE_LEVEL", "APC_LEVEL", "DISPATCH_LEVEL", "HIGH_LEVEL"]
        case .transferMethod: ["Buffered", "Direct", "Neither"]
        default: nil
        }
    }

    /// The number each of ``symbols`` stands for (NT's values, in the same order); nil for
    /// non-enumeration kinds. InterfaceTypeUndefined is -1 (all ones).
    public var symbolValues: [UInt64]? {
        switch self {
        case .pagePriority: [0, 16, 32]
        case .interfaceType: (0..<19).map { UInt64($0) &- 1 }
        case .irql: [0, 1, 2, 31]
        default: symbols.map { (0..<UInt64($0.count)).map { $0 } }
        }
    }

    /// The number `symbol` stands for in this kind, if it is one of its symbols.
    public func value(of symbol: String) -> UInt64? {
        guard let index = symbols?.firstIndex(of: symbol) else { return nil }
        return symbolValues?[index]
    }
}

/// A numeric argument: a literal, NULL, or an earlier result plus an offset. Expressions keep programs
/// valid on another machine, where the same buffer lands at another address.
public enum Expression: Hashable, Sendable, CustomStringConvertible {
    case literal(UInt64)
    /// `none`: NULL.
    case null
    /// An earlier result name plus a signed byte offset (`b0+0x10`, `v1-0x1`).
    case reference(String, offset: Int64)

    public var description: String {
        switch self {
        case .literal(let value): return hex(value)
        case .null: return "none"
        case .reference(let name, let offset):
            if offset == 0 { return name }
            return offset > 0 ? "\(name)+\(hex(UInt64(offset)))" : "\(name)-\(hex(offset.magnitude))"
        }
    }

    /// The result name this expression reads, if any.
    public var referencedName: String? {
        if case .reference(let name, _) = self { return name }
        return nil
    }

    /// Parses `0x1000`, `4096`, `none`, `b0`, `b0+0x10` or `v1-0x1` (no check that the name is bound).
    public init?(parsing text: String) {
        if text == "none" || text == "NULL" { self = .null; return }
        if let number = ProgramNumber.parse(text) { self = .literal(number); return }
        let operatorIndex = text.firstIndex { $0 == "+" || $0 == "-" }
        let name = String(text[..<(operatorIndex ?? text.endIndex)])
        guard name.first?.isLetter == true, name.allSatisfy({ $0.isLetter || $0.isNumber }) else { return nil }
        guard let operatorIndex else { self = .reference(name, offset: 0); return }
        guard let magnitude = ProgramNumber.parse(text[text.index(after: operatorIndex)...]), magnitude <= UInt64(Int64.max) else { return nil }
        self = .reference(name, offset: text[operatorIndex] == "+" ? Int64(magnitude) : -Int64(magnitude))
    }

    /// The value under `bindings` (unbound names are 0), wrapped to the pointer width `mask`.
    public func value(in bindings: [String: UInt64], mask: UInt64) -> UInt64 {
        switch self {
        case .literal(let value): value
        case .null: 0
        case .reference(let name, let offset): (bindings[name, default: 0] &+ UInt64(bitPattern: offset)) & mask
        }
    }
}

/// One argument of a call.
public enum Argument: Hashable, Sendable, CustomStringConvertible {
    case expression(Expression)
    case symbol(String)
    case boolean(Bool)
    case bytes([UInt8])

    public var description: String {
        switch self {
        case .expression(let e): e.description
        case .symbol(let s): s
        case .boolean(let b): b ? "true" : "false"
        case .bytes(let data): data.isEmpty ? "\"\"" : data.map { byteHex($0) }.joined()
        }
    }

    /// The result name this argument reads, if any.
    public var referencedName: String? {
        if case .expression(let e) = self { return e.referencedName }
        return nil
    }
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16, uppercase: true) }

private let hexDigits = Array("0123456789ABCDEF")
func byteHex(_ byte: UInt8) -> String { String([hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]]) }
