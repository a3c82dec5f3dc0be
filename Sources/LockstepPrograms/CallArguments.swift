extension Call {
    /// The argument passed for the parameter labelled `name` in the routine's signature
    /// (``Routine/signature``); nil when the routine has no parameter of that name, or the call carries
    /// fewer arguments than its signature has parameters.
    public func argument(named name: String) -> Argument? {
        guard let index = routine.signature.parameters.firstIndex(where: { $0.label == name }), index < arguments.count else { return nil }
        return arguments[index]
    }

    /// `call["length"]`: ``argument(named:)``.
    public subscript(name: String) -> Argument? { argument(named: name) }
}

/// A call's arguments read by parameter name, the way the engine adapter and the reference model both
/// read them: what a number, a flag or an enumeration argument means is the program's vocabulary, not
/// NT semantics, so it is written once. Each side brings its own bindings (the values it bound result
/// names to); what the routine then does with the values each side decides for itself.
///
/// A parameter the call does not carry reads as NULL, 0, FALSE, the first symbol or nil, as an argument
/// of another kind does (a number where bytes belong, bytes where a number belongs). The parser never
/// makes such calls; hand-built calls may.
public struct CallArguments {
    public let call: Call
    /// Result name → value, as this side bound them (``Outcome/boundValue``).
    public let bindings: [String: UInt64]
    /// The machine's pointer width: expressions wrap to it.
    public let mask: UInt64
    /// The routine's parameters, looked up once per call rather than once per argument.
    private let parameters: [Parameter]

    public init(_ call: Call, bindings: [String: UInt64], mask: UInt64) {
        self.call = call
        self.bindings = bindings
        self.mask = mask
        parameters = call.routine.signature.parameters
    }

    /// The argument for parameter `name` (``Call/argument(named:)``).
    public subscript(name: String) -> Argument? {
        assert(parameters.contains { $0.label == name }, "\(call.routine.name) has no parameter '\(name)'")
        guard let index = parameters.firstIndex(where: { $0.label == name }), index < call.arguments.count else { return nil }
        return call.arguments[index]
    }

    /// The expression written for `name`; NULL when it is not an expression.
    public func expression(_ name: String) -> Expression {
        if case .expression(let expression) = self[name] { return expression }
        return .null
    }

    /// A numeric argument's value under the bindings; a boolean is 1 or 0, a symbol or bytes 0.
    public func number(_ name: String) -> UInt64 {
        switch self[name] {
        case .expression(let expression): expression.value(in: bindings, mask: mask)
        case .boolean(let value): value ? 1 : 0
        case .symbol, .bytes, nil: 0
        }
    }

    /// A BOOLEAN argument: any nonzero value is TRUE.
    public func flag(_ name: String) -> Bool { number(name) != 0 }

    /// The enumeration symbol written for `name`, if a symbol was written.
    public func symbol(_ name: String) -> String? {
        if case .symbol(let symbol) = self[name] { return symbol }
        return nil
    }

    /// The bytes written for `name`; nil when the argument is not bytes.
    public func bytes(_ name: String) -> [UInt8]? {
        if case .bytes(let data) = self[name] { return data }
        return nil
    }

    /// A KPROCESSOR_MODE. NT tests `AccessMode != KernelMode`, so any nonzero number is UserMode.
    public func processorMode(_ name: String) -> ProcessorMode {
        if let symbol = symbol(name) { return symbol == "UserMode" ? .userMode : .kernelMode }
        return number(name) != 0 ? .userMode : .kernelMode
    }

    /// A LOCK_OPERATION. It is an int: 0 reads, 1 writes, and every other value (0x100 too) modifies;
    /// a symbol the vocabulary does not know reads as 0.
    public func lockOperation(_ name: String) -> LockOperation {
        switch symbol(name) {
        case "IoReadAccess": return .ioReadAccess
        case "IoWriteAccess": return .ioWriteAccess
        case "IoModifyAccess": return .ioModifyAccess
        default:
            switch number(name) {
            case 0: return .ioReadAccess
            case 1: return .ioWriteAccess
            default: return .ioModifyAccess
            }
        }
    }

    /// A MEMORY_CACHING_TYPE: a C enum, so a number keeps its low 32 bits (MmMaximumCacheType, 6, and
    /// above are invalid; what an invalid value does is the routine's business).
    public func cachingType(_ name: String) -> UInt32 { UInt32(truncatingIfNeeded: enumeration(name, .cachingType)) }

    /// An INTERFACE_TYPE: a C enum, so a number keeps its low 32 bits (InterfaceTypeUndefined is -1).
    public func interfaceType(_ name: String) -> Int32 { Int32(truncatingIfNeeded: enumeration(name, .interfaceType)) }

    /// A KIRQL: a UCHAR, so a number keeps its low byte, and levels above HIGH_LEVEL (31) are HIGH_LEVEL.
    public func irql(_ name: String) -> UInt8 {
        if let symbol = symbol(name), let level = ArgumentKind.irql.value(of: symbol) { return UInt8(level) }
        return min(UInt8(truncatingIfNeeded: number(name)), 31)
    }

    /// MM_PAGE_PRIORITY by symbol; a number reads as NormalPagePriority.
    public func pagePriority(_ name: String) -> PagePriority {
        switch symbol(name) {
        case "LowPagePriority": .lowPagePriority
        case "HighPagePriority": .highPagePriority
        default: .normalPagePriority
        }
    }

    /// A POOL_TYPE: PagedPool by name or as 1; anything else is NonPagedPool.
    public func poolType(_ name: String) -> PoolType {
        if let symbol = symbol(name) { return symbol == "PagedPool" ? .pagedPool : .nonPagedPool }
        return number(name) == 1 ? .pagedPool : .nonPagedPool
    }

    /// A user buffer's protection by symbol; a number reads as ReadWrite.
    public func protection(_ name: String) -> Protection {
        symbol(name).flatMap(Protection.init(rawValue:)) ?? .readWrite
    }

    /// An enumeration argument as a number: a known symbol's value, else the number written.
    private func enumeration(_ name: String, _ kind: ArgumentKind) -> UInt64 {
        if let symbol = symbol(name), let value = kind.value(of: symbol) { return value }
        return number(name)
    }

    // The enumerations' values as the vocabulary names them (each side converts to its own types).

    public enum ProcessorMode: Sendable { case kernelMode, userMode }
    public enum LockOperation: Sendable { case ioReadAccess, ioWriteAccess, ioModifyAccess }
    public enum PagePriority: Sendable { case lowPagePriority, normalPagePriority, highPagePriority }
    public enum PoolType: Sendable { case nonPagedPool, pagedPool }
    public enum Protection: String, Sendable { case readWrite = "ReadWrite", readOnly = "ReadOnly", noAccess = "NoAccess" }
}
