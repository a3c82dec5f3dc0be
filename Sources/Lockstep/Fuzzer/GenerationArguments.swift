import LockstepPrograms

/// Argument values that follow from what the vocabulary says a parameter is. An action names the
/// parameter (`enumeration(.mmMapIoSpace, "cache", …)`); its kind comes from the signature table
/// (`Routine.signature`), and with the kind its symbols in value order, its maximum, its first invalid
/// value (`ParameterEdges`), and for lengths and addresses the machine's edges of the domain
/// (`ParameterDomain`, `EdgeConstants`). A routine added to the vocabulary gets its edges the same way.
///
/// What an action still chooses itself: the ordinary values it favours (a subset of the symbols in its
/// own order, offsets and lengths inside a buffer, pool sizes) and how often it leaves them.
extension ProgramBuilder {
    /// The parameter `label` of `routine`, from the signature table.
    static func parameter(_ routine: Routine, _ label: String) -> Parameter {
        guard let parameter = routine.signature.parameters.first(where: { $0.label == label }) else {
            preconditionFailure("\(routine.name) has no parameter '\(label)'")
        }
        return parameter
    }

    /// The symbols of an enumeration parameter, in value order (minimum first, maximum last).
    func symbols(_ routine: Routine, _ label: String) -> [String] {
        guard let symbols = Self.parameter(routine, label).kind.symbols else { preconditionFailure("\(routine.name).\(label) is not an enumeration") }
        return symbols
    }

    /// An enumeration parameter's first invalid value (one past its maximum), as a number.
    func firstInvalid(_ routine: Routine, _ label: String) -> Argument {
        .literal(ParameterEdges.firstInvalid(Self.parameter(routine, label).kind))
    }

    /// The value of an enumeration parameter: mostly one of `ordinary`, sometimes its maximum or its
    /// minimum, and, when `invalid` allows it, sometimes its first invalid value.
    mutating func enumeration(_ routine: Routine, _ label: String, ordinary: [String], invalid: Bool = false) -> Argument {
        let symbols = symbols(routine, label)
        let roll = random.below(100)
        if roll < 10, let last = symbols.last { return .symbol(last) }
        if roll < 15, let first = symbols.first { return .symbol(first) }
        if roll < 20 && invalid { return firstInvalid(routine, label) }
        return .symbol(random.pick(ordinary))
    }

    /// The machine's edges of a length or address parameter's domain (named as `ParameterEdges` names them).
    func edges(_ routine: Routine, _ label: String) -> [(String, UInt64)] {
        guard let edges = edgeConstants.edges(ParameterDomain(Self.parameter(routine, label))) else {
            preconditionFailure("\(routine.name).\(label) has no numeric edges")
        }
        return edges
    }
}
