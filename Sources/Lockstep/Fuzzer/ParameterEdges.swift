import LockstepPrograms
import MemoryManager

/// What a parameter's values mean, which fixes the edges of its domain. Derived from the vocabulary
/// alone (the argument kind and the parameter's label), so a new routine gets its edges for free.
package enum ParameterDomain: String, Sendable, CaseIterable {
    /// A virtual address (a buffer, a pool block, a mapping, or a raw address).
    case virtualAddress
    /// A physical (or bus) address: `pa`, `low`, `high`, HalTranslateBusAddress's `address`.
    case physicalAddress
    /// An optional address (MmMapLockedPagesSpecifyCache's `requested`): NULL or not.
    case optionalAddress
    case length
    case number
    case boolean
    /// A handle that must name something (an MDL, a pool block, an IRP).
    case handle
    /// A handle that may be NULL (`irp=`, MmCreateMdl's `mdl=`): the labeled handles.
    case optionalHandle
    case bytes
    /// Every kind with symbols (processor mode, cache type, lock operation, pool type, …).
    case enumeration

    static let physicalLabels: Set<String> = ["pa", "low", "high", "address"]

    package init(_ parameter: Parameter) {
        switch parameter.kind {
        case .address:
            if Self.physicalLabels.contains(parameter.label) { self = .physicalAddress }
            else if parameter.label == "requested" { self = .optionalAddress }
            else { self = .virtualAddress }
        case .length: self = .length
        case .number: self = .number
        case .boolean: self = .boolean
        case .handle: self = parameter.labeled ? .optionalHandle : .handle
        case .bytes: self = .bytes
        default: self = .enumeration
        }
    }
}

/// The edges of every parameter domain: the table the generator draws edge values from, the mutator's
/// boundary moves read, and the campaign counts as reached (routine × parameter × edge).
package enum ParameterEdges {
    /// Where a named value came from, for the edges that depend on the memory behind an address.
    static let memoryKinds = ["user-buffer", "pool", "system-mapping", "user-mapping", "io-mapping"]

    /// The edge names of one parameter of a signature (machine independent).
    package static func names(_ parameters: [Parameter], _ index: Int) -> [String] {
        let parameter = parameters[index]
        let next = index + 1 < parameters.count ? parameters[index + 1] : nil
        let previous = index > 0 ? parameters[index - 1] : nil
        switch ParameterDomain(parameter) {
        case .virtualAddress:
            var names = ["null"] + memoryKinds + ["offset-0", "offset-1", "offset-last", "highest-user-page", "probe-limit", "kernel-half"]
            if next?.kind == .length { names += ["ends-at-probe-limit", "straddles-probe-limit"] }
            return names
        case .physicalAddress:
            var names = ["zero", "translated", "in-ram", "last-ram-page", "ram-end", "above-ram"]
            // A range is an address and the length after it (MmMapIoSpace), or two addresses (Low, High).
            if let previous, ParameterDomain(previous) == .physicalAddress {
                names += ["range-one-page", "range-below-ram-end", "range-covers-ram", "range-outside-ram", "range-low-above-zero"]
            } else if next?.kind == .length {
                names += ["range-in-ram", "range-clips-ram-end", "range-outside-ram"]
            }
            return names
        case .optionalAddress: return ["null", "non-null"]
        case .length:
            return ["zero", "one", "page-minus-1", "page", "page-plus-1", "fixed-size-limit", "past-fixed-size-limit", "size-field-limit",
                    "past-size-field-limit", "2g-minus-1", "2g", "4g-minus-page", "4g-minus-1"]
        case .number: return ["zero", "one", "all-ones"]
        case .boolean: return ["false", "true"]
        case .handle: return ["named"]
        case .optionalHandle: return ["null", "named"]
        case .bytes: return ["one-byte", "several-bytes"]
        case .enumeration:
            var names = ["min", "max", "first-invalid"]
            // Buffers of every kind passed with every access mode: the memory behind the call's MDL.
            if parameter.kind == .processorMode, parameters.contains(where: { $0.kind == .handle && !$0.labeled && $0.label == "mdl" }) {
                for mode in ["kernel", "user"] { for kind in ["user-buffer", "pool", "system-mapping", "io-mapping"] { names.append("\(mode)-over-\(kind)") } }
            }
            return names
        }
    }

    /// Every edge of every parameter of every routine the engine fuzzer generates, sorted:
    /// `Routine.parameter=edge`.
    package static let all: [String] = {
        var edges: [String] = []
        for routine in Routine.allCases where !routine.isDriverRequest {
            let parameters = routine.signature.parameters
            for index in parameters.indices {
                for name in names(parameters, index) { edges.append("\(routine.rawValue).\(parameters[index].label)=\(name)") }
            }
        }
        return edges.sorted()
    }()

    /// Index of each edge in `all`.
    static let indexOf: [String: Int] = Dictionary(uniqueKeysWithValues: all.enumerated().map { ($1, $0) })

    /// Per routine and parameter: edge name → index in `all` (no string building per call).
    static let table: [Routine: [[String: Int]]] = {
        var table: [Routine: [[String: Int]]] = [:]
        for routine in Routine.allCases where !routine.isDriverRequest {
            let parameters = routine.signature.parameters
            table[routine] = parameters.indices.map { index in
                Dictionary(uniqueKeysWithValues: names(parameters, index).map { ($0, indexOf["\(routine.rawValue).\(parameters[index].label)=\($0)"]!) })
            }
        }
        return table
    }()

    /// Each enumeration kind's first and last symbol (computed once).
    static let symbolRange: [ArgumentKind: (String, String)] = {
        var range: [ArgumentKind: (String, String)] = [:]
        for kind in ArgumentKind.allCases { if let symbols = kind.symbols { range[kind] = (symbols.first!, symbols.last!) } }
        return range
    }()

    /// Per routine: each parameter's domain (computed once, not per call).
    static let domains: [Routine: [ParameterDomain]] = {
        var domains: [Routine: [ParameterDomain]] = [:]
        for routine in Routine.allCases { domains[routine] = routine.signature.parameters.map(ParameterDomain.init) }
        return domains
    }()

    /// The numeric value of an enumeration symbol (NT's values; symbols are listed in value order).
    static func enumValues(_ kind: ArgumentKind) -> [UInt64] { kind.symbolValues ?? [] }

    /// The first invalid numeric value of an enumeration (one past its maximum).
    package static func firstInvalid(_ kind: ArgumentKind) -> UInt64 { (enumValues(kind).last ?? 0) &+ 1 }
}

/// The numbers of one machine the edges are measured against.
package struct EdgeConstants: Sendable {
    package let pageSize: UInt64
    package let pointerMask: UInt64
    package let userProbeAddress: UInt64
    package let systemRangeStart: UInt64
    package let ramEnd: UInt64
    /// The physical address of the lowest frame boot leaves free: PFN 0 is reserved and nonpaged pool
    /// takes the next RAM frames, skipping the legacy hole (docs/ENGINE_CONVENTIONS.md, "The machine").
    package let firstFreeAtBoot: UInt64
    /// IoAllocateMdl's fixed-size (lookaside) threshold in pages: 23 before NT 6.0, 17 from it.
    package let fixedSizePages: UInt64
    /// The largest page-aligned length whose MDL Size still fits 0xFFFF.
    package let sizeFieldLimit: UInt64

    let version: WindowsVersion
    let headerSize: UInt64
    let pfnSize: UInt64
    let verifier: Bool

    package init(_ machine: MachineLine) {
        let configuration = (try? MachineConfiguration(parsing: machine.description)) ?? MachineConfiguration()
        let c = configuration.constants
        version = configuration.version
        headerSize = c.mdlHeaderSize
        pfnSize = c.pfnSize
        verifier = configuration.checking == .verifier
        pageSize = c.pageSize
        pointerMask = c.pointerMask
        userProbeAddress = c.userProbeAddress
        systemRangeStart = c.systemRangeStart
        ramEnd = configuration.ramBytes
        let poolFrames = (configuration.nonpagedPoolBytes + c.pageSize - 1) / c.pageSize
        let holeStart = 0xA_0000 / c.pageSize, holeEnd = 0x10_0000 / c.pageSize
        firstFreeAtBoot = (poolFrames < holeStart ? 1 + poolFrames : holeEnd + poolFrames + 1 - holeStart) * c.pageSize
        fixedSizePages = configuration.version >= .nt60 ? 17 : 23
        sizeFieldLimit = (0xFFFF - c.mdlHeaderSize) / c.pfnSize * c.pageSize
        lengthEdges = Self.lengthEdges(pageSize: pageSize, fixedSizePages: fixedSizePages, sizeFieldLimit: sizeFieldLimit)
    }

    /// Whether IoAllocateMdl (or MmCreateMdl) of `length` bytes at byte offset `offset` surely returns an
    /// MDL (true), surely returns NULL (false) or may do either (nil), by spec §2.4's per-version limits and
    /// the MDL's pool block size (at most 68 KiB is taken as surely available, more than 1 MiB never is).
    package func mdlAllocation(offset: UInt64, length: UInt64, create: Bool = false) -> Bool? {
        let length = length & 0xFFFF_FFFF
        let sum = (offset + length + pageSize - 1) & pointerMask
        let pages = (sum / pageSize) & 0xFFFF_FFFF
        let needed = headerSize + pages * pfnSize
        if create && (needed > 0xFFFF || length >= 0x8000_0000) { return nil }
        switch version {
        case .nt40sp3, .nt40, .nt5: if needed > 0xFFFF || length >= 0x8000_0000 { return false }
        case .nt60: if length >= 0x8000_0000 { return false }
        default: break
        }
        let block = pages <= fixedSizePages ? headerSize + fixedSizePages * pfnSize : needed
        if block <= 0x11000 { return true }
        return block > 0x10_0000 ? false : nil
    }

    /// The value each length edge names.
    package var lengths: [(String, UInt64)] { lengthEdges }

    /// `lengths`, computed once (the classifier reads it for every length argument).
    private var lengthEdges: [(String, UInt64)] = []

    private static func lengthEdges(pageSize: UInt64, fixedSizePages: UInt64, sizeFieldLimit: UInt64) -> [(String, UInt64)] {
        [("zero", 0), ("one", 1), ("page-minus-1", pageSize - 1), ("page", pageSize), ("page-plus-1", pageSize + 1),
         ("fixed-size-limit", fixedSizePages * pageSize), ("past-fixed-size-limit", fixedSizePages * pageSize + 1),
         ("size-field-limit", sizeFieldLimit), ("past-size-field-limit", sizeFieldLimit + 1),
         ("2g-minus-1", 0x7FFF_FFFF), ("2g", 0x8000_0000), ("4g-minus-page", 0x1_0000_0000 - pageSize), ("4g-minus-1", 0xFFFF_FFFF)]
    }

    /// Raw virtual addresses at the probe limit and in the other half.
    package var addresses: [(String, UInt64)] {
        [("highest-user-page", userProbeAddress - pageSize), ("probe-limit", userProbeAddress), ("kernel-half", systemRangeStart + 0x10_0000)]
    }

    /// Physical addresses at the edges of RAM.
    package var physicalAddresses: [(String, UInt64)] {
        [("zero", 0), ("in-ram", pageSize), ("last-ram-page", ramEnd - pageSize), ("ram-end", ramEnd), ("above-ram", 0xF000_0000)]
    }

    /// The edge values of a numeric domain (lengths, virtual and physical addresses); nil for the others.
    package func edges(_ domain: ParameterDomain) -> [(String, UInt64)]? {
        switch domain {
        case .length: lengths
        case .virtualAddress: addresses
        case .physicalAddress: physicalAddresses
        default: nil
        }
    }
}

/// Classifies each argument of each call of a program by the edge it sits at. Names are resolved
/// statically (what bound them), so the classification needs no run.
package struct EdgeClassifier {
    let constants: EdgeConstants
    /// What bound each name: the memory kind behind it (`user-buffer`, …, `mdl`, `physical`).
    private var kinds: [String: String] = [:]
    /// For an MDL name, the memory kind it describes.
    private var described: [String: String] = [:]

    package init(machine: MachineLine) { constants = EdgeConstants(machine) }

    package init(constants: EdgeConstants) { self.constants = constants }

    /// The edges the executed steps of a run reached (indices in `ParameterEdges.all`).
    package static func edges(of report: RunReport, constants: EdgeConstants) -> [Int] {
        var classifier = EdgeClassifier(constants: constants)
        return report.steps.flatMap { classifier.edges(of: $0.call) }
    }

    /// The indices (in `ParameterEdges.all`) of the edges `call` reaches; then records what it binds.
    package mutating func edges(of call: Call) -> [Int] {
        guard let table = ParameterEdges.table[call.routine], let domains = ParameterEdges.domains[call.routine] else { return [] }
        let parameters = call.routine.signature.parameters
        var found: [Int] = []
        func add(_ index: Int, _ name: String) { if let edge = table[index][name] { found.append(edge) } }
        for index in parameters.indices where index < call.arguments.count {
            let argument = call.arguments[index]
            let parameter = parameters[index]
            let nextLength = index + 1 < parameters.count && parameters[index + 1].kind == .length && index + 1 < call.arguments.count
                ? literal(call.arguments[index + 1]) : nil
            switch domains[index] {
            case .virtualAddress:
                switch argument {
                case .expression(.null), .expression(.literal(0)): add(index, "null"); add(index, "offset-0")
                case .expression(.literal(let value)):
                    let va = value & constants.pointerMask
                    addOffset(index, va, add)
                    if va >= constants.userProbeAddress - constants.pageSize && va < constants.userProbeAddress { add(index, "highest-user-page") }
                    if va == constants.userProbeAddress { add(index, "probe-limit") }
                    if va >= constants.systemRangeStart { add(index, "kernel-half") }
                    if let length = nextLength, length > 0 {
                        let end = va &+ length
                        if end == constants.userProbeAddress { add(index, "ends-at-probe-limit") }
                        if va < constants.userProbeAddress && end > constants.userProbeAddress { add(index, "straddles-probe-limit") }
                    }
                case .expression(.reference(let name, let offset)):
                    if let kind = kinds[name] { add(index, kind == "mdl" ? described[name] ?? "" : kind) }
                    addOffset(index, UInt64(bitPattern: offset), add)
                default: break
                }
            case .physicalAddress:
                switch argument {
                case .expression(.null): add(index, "zero")
                case .expression(.reference): add(index, "translated")
                case .expression(.literal(let pa)):
                    if pa == 0 { add(index, "zero") }
                    if pa > 0 && pa < constants.ramEnd { add(index, "in-ram") }
                    if pa >= constants.ramEnd - constants.pageSize && pa < constants.ramEnd { add(index, "last-ram-page") }
                    if pa == constants.ramEnd { add(index, "ram-end") }
                    if pa > constants.ramEnd { add(index, "above-ram") }
                    let pair = index > 0 && domains[index - 1] == .physicalAddress
                    if !pair, let length = nextLength, length > 0 {
                        let end = pa &+ length
                        if end <= constants.ramEnd { add(index, "range-in-ram") }
                        else if pa < constants.ramEnd { add(index, "range-clips-ram-end") }
                        else { add(index, "range-outside-ram") }
                    }
                    if pair, let low = literal(call.arguments[index - 1]) {
                        if low <= pa && pa &- low &+ 1 == constants.pageSize { add(index, "range-one-page") }
                        if low < pa && pa < constants.ramEnd - 1 { add(index, "range-below-ram-end") }
                        if low == 0 && pa >= constants.ramEnd - 1 { add(index, "range-covers-ram") }
                        if low >= constants.ramEnd { add(index, "range-outside-ram") }
                        if low > 0 && low <= pa { add(index, "range-low-above-zero") }
                    }
                default: break
                }
            case .optionalAddress:
                add(index, literal(argument) == 0 ? "null" : "non-null")
            case .length:
                if let value = literal(argument), let name = constants.lengths.first(where: { $0.1 == value })?.0 { add(index, name) }
            case .number:
                if let value = literal(argument) {
                    if value == 0 { add(index, "zero") } else if value == 1 { add(index, "one") } else if value & 0xFFFF_FFFF == 0xFFFF_FFFF { add(index, "all-ones") }
                }
            case .boolean:
                if case .boolean(let value) = argument { add(index, value ? "true" : "false") }
            case .handle:
                if argument.referencedName != nil { add(index, "named") }
            case .optionalHandle:
                if argument.referencedName != nil { add(index, "named") } else if literal(argument) == 0 { add(index, "null") }
            case .bytes:
                if case .bytes(let data) = argument { if data.count == 1 { add(index, "one-byte") } else if data.count > 1 { add(index, "several-bytes") } }
            case .enumeration:
                switch argument {
                case .symbol(let symbol):
                    let (first, last) = ParameterEdges.symbolRange[parameter.kind] ?? ("", "")
                    if symbol == first { add(index, "min") }
                    if symbol == last { add(index, "max") }
                    if parameter.kind == .processorMode, let mdl = mdlArgument(call, parameters), let kind = described[mdl] {
                        add(index, "\(symbol == "UserMode" ? "user" : "kernel")-over-\(kind)")
                    }
                case .expression(.literal(let value)):
                    let values = ParameterEdges.enumValues(parameter.kind)
                    if value == values.first { add(index, "min") }
                    if value == values.last { add(index, "max") }
                    if value == ParameterEdges.firstInvalid(parameter.kind) { add(index, "first-invalid") }
                default: break
                }
            }
        }
        record(call)
        return found
    }

    private func literal(_ argument: Argument) -> UInt64? {
        switch argument {
        case .expression(.literal(let value)): value
        case .expression(.null): 0
        case .boolean(let value): value ? 1 : 0
        default: nil
        }
    }

    private func addOffset(_ index: Int, _ value: UInt64, _ add: (Int, String) -> Void) {
        switch value & (constants.pageSize - 1) {
        case 0: add(index, "offset-0")
        case 1: add(index, "offset-1")
        case constants.pageSize - 1: add(index, "offset-last")
        default: break
        }
    }

    private func mdlArgument(_ call: Call, _ parameters: [Parameter]) -> String? {
        guard let index = parameters.firstIndex(where: { $0.kind == .handle && !$0.labeled && $0.label == "mdl" }), index < call.arguments.count else { return nil }
        return call.arguments[index].referencedName
    }

    /// The memory kind an address argument names (through its binder), if any.
    private func memoryKind(_ argument: Argument) -> String? {
        guard let name = argument.referencedName, let kind = kinds[name] else { return nil }
        return kind == "mdl" ? described[name] : kind
    }

    private mutating func record(_ call: Call) {
        switch call.routine {
        case .mmInitializeMdl:
            // A caller-allocated MDL: the pool block now describes the memory at `va`.
            if let block = call.arguments.first?.referencedName, call.arguments.count > 1, let kind = memoryKind(call.arguments[1]) { described[block] = kind }
        default: break
        }
        guard let name = call.result else { return }
        switch call.routine {
        case .allocateUserBuffer: kinds[name] = "user-buffer"
        case .exAllocatePoolWithTag: kinds[name] = "pool"
        case .mmMapIoSpace: kinds[name] = "io-mapping"
        case .mmMapLockedPages: kinds[name] = symbolIs(call, 1, "UserMode") ? "user-mapping" : "system-mapping"
        case .mmMapLockedPagesSpecifyCache: kinds[name] = symbolIs(call, 1, "UserMode") ? "user-mapping" : "system-mapping"
        case .mmGetSystemAddressForMdl, .mmGetSystemAddressForMdlSafe: kinds[name] = "system-mapping"
        case .mmGetMdlVirtualAddress:
            if let mdl = call.arguments.first?.referencedName, let kind = described[mdl] { kinds[name] = kind }
        case .ioAllocateMdl, .mmCreateMdl:
            kinds[name] = "mdl"
            let va = call.routine == .ioAllocateMdl ? call.arguments.first : (call.arguments.count > 1 ? call.arguments[1] : nil)
            if let va, let kind = memoryKind(va) { described[name] = kind }
        case .mmAllocatePagesForMdl: kinds[name] = "mdl"
        default: break
        }
    }

    private func symbolIs(_ call: Call, _ index: Int, _ symbol: String) -> Bool {
        index < call.arguments.count && call.arguments[index] == .symbol(symbol)
    }
}
