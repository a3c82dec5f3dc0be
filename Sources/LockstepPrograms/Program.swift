/// A program: the machine it runs on, its fault plan, and an ordered list of calls. Data only;
/// `ProgramText` encodes and parses it.
public struct Program: Hashable, Sendable {
    /// The text format version (`# lockstep 1`).
    public static let formatVersion = 1

    public var machine: MachineLine
    public var faults: [FaultLine]
    public var calls: [Call]

    public init(machine: MachineLine = MachineLine(), faults: [FaultLine] = [], calls: [Call] = []) {
        self.machine = machine
        self.faults = faults
        self.calls = calls
    }
}

/// One call: an optional result name, the routine, and its arguments (one per parameter).
public struct Call: Hashable, Sendable {
    public var result: String?
    public var routine: Routine
    public var arguments: [Argument]

    public init(_ result: String? = nil, _ routine: Routine, _ arguments: [Argument]) {
        self.result = result
        self.routine = routine
        self.arguments = arguments
    }

    /// The result names the call reads, in argument order.
    public var references: [String] { arguments.compactMap(\.referencedName) }
}

/// A `key=value` setting of a machine or fault line, in the order written.
public struct Setting: Hashable, Sendable {
    public var key: String
    public var value: String
    public init(_ key: String, _ value: String) {
        self.key = key
        self.value = value
    }
}

/// The `machine <arch> key=value…` line. Kept as words: the engine and the reference model each
/// interpret it with their own reading of the spec.
public struct MachineLine: Hashable, Sendable, CustomStringConvertible {
    public var architecture: String
    public var settings: [Setting]

    public init(architecture: String = "x86", settings: [Setting] = []) {
        self.architecture = architecture
        self.settings = settings
    }

    /// The value of a key, if set.
    public subscript(key: String) -> String? { settings.last { $0.key == key }?.value }

    /// The page size the architecture names (DESIGN.md, "The simulated machine"): 8 KiB on alpha (NT 4 on
    /// Alpha), 4 KiB on x86 and x64, and on an architecture nothing boots, so arithmetic on it stays
    /// defined. For the programs' writers (generators, mutators); the engine and the model each derive
    /// their own machine from the line.
    public var pageSize: UInt64 { architecture == "alpha" ? 0x2000 : 0x1000 }

    public var description: String {
        (["machine", architecture] + settings.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    }
}

/// A `fault <kind> key=value…` line of the fault plan.
public struct FaultLine: Hashable, Sendable, CustomStringConvertible {
    public var kind: String
    public var settings: [Setting]

    public init(kind: String, settings: [Setting] = []) {
        self.kind = kind
        self.settings = settings
    }

    public var description: String {
        (["fault", kind] + settings.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    }
}
