/// What one call did on the engine, in concrete numbers. The runner records these; traces print them.
public enum Outcome: Hashable, Sendable, CustomStringConvertible {
    /// The call returned (``Value/none`` for VOID routines).
    case returned(Value)
    /// The call raised an exception with this NTSTATUS.
    case raised(status: UInt32)
    /// The call bug-checked the machine.
    case bugCheck(code: UInt32, parameters: [UInt64])
    /// The machine was already halted by an earlier bug check.
    case refused

    public var description: String {
        switch self {
        case .returned(let value): value.description
        case .raised(let status): "raised \(hex(UInt64(status)))"
        case .bugCheck(let code, let parameters): "bug check \(hex(UInt64(code)))(\(parameters.map(hex).joined(separator: ", ")))"
        case .refused: "refused (machine halted)"
        }
    }
}

extension Outcome {
    /// What the call's result name holds afterwards, on either side (the engine adapter and the model
    /// bind alike, each in its own store): the number returned, 1 or 0 for a BOOLEAN, the translated
    /// address for HalTranslateBusAddress's TRUE, the count of the bytes ReadMemory returned; 0 for a
    /// VOID return, a raise, a bug check or a refused call.
    public var boundValue: UInt64 {
        switch self {
        case .returned(.number(let value)): value
        case .returned(.boolean(let value)): value ? 1 : 0
        case .returned(.translated(let address, _)): address
        case .returned(.bytes(let bytes)): UInt64(bytes.count)
        case .returned(.none), .raised, .bugCheck, .refused: 0
        }
    }
}

/// A returned value.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case none
    case number(UInt64)
    case boolean(Bool)
    case bytes([UInt8])
    /// HalTranslateBusAddress' TRUE: the translated address and the AddressSpace written back.
    case translated(address: UInt64, space: UInt32)

    public var description: String {
        switch self {
        case .none: "returned"
        case .number(let n): "returned \(hex(n))"
        case .boolean(let b): "returned \(b ? "TRUE" : "FALSE")"
        case .bytes(let data): "returned \(data.isEmpty ? "\"\"" : data.map(byteHex).joined())"
        case .translated(let address, let space): "returned TRUE \(hex(address)) space=\(space)"
        }
    }
}

/// What the reference model predicts for one call. Where the model abstracts (which pool address, which
/// PFN), it predicts a relation the runner checks against the engine's state instead of a number.
public enum Prediction: Hashable, Sendable, CustomStringConvertible {
    case returns(ValuePrediction)
    case raises(status: UInt32)
    /// Four parameter expectations.
    case bugChecks(code: UInt32, parameters: [ParameterPrediction])
    case refused
    /// The spec leaves this call's outcome undefined here; the runner records the engine's outcome
    /// without comparing it (and the model has said how it updates its own state).
    case unpredictable(reason: String)
    /// One of these, where the choice depends on allocator layout the model deliberately does not
    /// replicate (whether a request fits a fragmented pool, PTE range or user address space). The
    /// runner reports which one matched; nothing else may use it.
    indirect case oneOf([Prediction])

    public var description: String {
        switch self {
        case .returns(let value): "returns \(value)"
        case .raises(let status): "raises \(hex(UInt64(status)))"
        case .bugChecks(let code, let parameters): "bug check \(hex(UInt64(code)))(\(parameters.map(\.description).joined(separator: ", ")))"
        case .refused: "refused"
        case .unpredictable(let reason): "unpredictable (\(reason))"
        case .oneOf(let options): options.map(\.description).joined(separator: " or ")
        }
    }
}

/// A predicted return value.
public enum ValuePrediction: Hashable, Sendable, CustomStringConvertible {
    /// A VOID routine returned.
    case none
    /// NULL (a 0 pointer).
    case null
    case exactly(UInt64)
    case boolean(Bool)
    case bytes([UInt8])
    case translated(address: UInt64, space: UInt32)
    /// A fresh, non-NULL address of a new object of this kind (MDL, pool block, user buffer, IRP,
    /// process id) that no live object of that kind already has.
    case fresh(ResultKind)
    /// A system VA with this byte offset whose pages translate, in order, to the frames in the named
    /// MDL's PFN array.
    case systemMapping(mdl: String, byteOffset: UInt64)
    /// A user VA in the current process with this byte offset whose pages translate to the named MDL's frames.
    case userMapping(mdl: String, byteOffset: UInt64)
    /// A system VA whose first page translates to this physical address's page, with its byte offset.
    case ioSpaceMapping(physical: UInt64)
    /// The value a bound name (plus offset) has.
    case sameAs(name: String, offset: Int64)
    /// The physical address the engine's page tables give for this virtual address right now.
    case physicalAddressOf(Expression)
    /// Any value: the model constrains nothing but the absence of a raise or bug check.
    case any

    public var description: String {
        switch self {
        case .none: "nothing"
        case .null: "NULL"
        case .exactly(let n): hex(n)
        case .boolean(let b): b ? "TRUE" : "FALSE"
        case .bytes(let data): data.map(byteHex).joined()
        case .translated(let address, let space): "TRUE \(hex(address)) space=\(space)"
        case .fresh(let kind): "a new \(kind.noun.split(separator: " ").last ?? "")"
        case .systemMapping(let mdl, let offset): "a system mapping of \(mdl) at offset \(hex(offset))"
        case .userMapping(let mdl, let offset): "a user mapping of \(mdl) at offset \(hex(offset))"
        case .ioSpaceMapping(let physical): "a mapping of physical \(hex(physical))"
        case .sameAs(let name, let offset): Expression.reference(name, offset: offset).description
        case .physicalAddressOf(let e): "the physical address of \(e)"
        case .any: "any value"
        }
    }
}

/// A predicted bug-check parameter.
public enum ParameterPrediction: Hashable, Sendable, CustomStringConvertible {
    case exactly(UInt64)
    /// The value of a bound name plus an offset (an MDL's address, an EPROCESS, a VA).
    case valueOf(name: String, offset: Int64)
    case any

    public var description: String {
        switch self {
        case .exactly(let n): hex(n)
        case .valueOf(let name, let offset): Expression.reference(name, offset: offset).description
        case .any: "*"
        }
    }
}
