/// What a program can do to itself, shared by the generator, the mutator, the shrinker and campaigns
/// (as syzkaller's prog/ keeps these on Prog): its bound names, the calls one call depends on, removing
/// calls with their dependents, dense renaming, validation, and one "simpler than" order.
extension Program {
    /// Every name a call binds, in program order.
    public var boundNames: [String] { calls.compactMap(\.result) }

    /// The calls `index` depends on through the names it reads, transitively, itself included.
    public func dependencyClosure(of index: Int) -> Set<Int> {
        var needed: Set<Int> = [index]
        var queue = [index]
        let producer = Dictionary(calls.indices.compactMap { i in calls[i].result.map { ($0, i) } }, uniquingKeysWith: { first, _ in first })
        while let next = queue.popLast() {
            for name in calls[next].references {
                if let source = producer[name], needed.insert(source).inserted { queue.append(source) }
            }
        }
        return needed
    }

    /// The program without the calls at `indices` and every call that reads (transitively) what they bound.
    public func removingCalls(_ indices: some Sequence<Int>) -> Program {
        var removed = Set(indices)
        var names = Set(removed.compactMap { calls.indices.contains($0) ? calls[$0].result : nil })
        for index in calls.indices where !removed.contains(index) && calls[index].references.contains(where: names.contains) {
            removed.insert(index)
            if let result = calls[index].result { names.insert(result) }
        }
        var result = self
        result.calls = calls.indices.filter { !removed.contains($0) }.map { calls[$0] }
        // A fault line aimed at a page of a removed result depends on it too.
        result.faults = faults.filter { !$0.pageReferences.contains(where: names.contains) }
        return result
    }

    /// Every name a call reads, and every name a fault line's `page=` aims at.
    public var referencedNames: Set<String> {
        Set(calls.flatMap(\.references)).union(faults.flatMap(\.pageReferences))
    }

    /// Names renumbered in order of appearance (m0, b3, v7 become m0, b1, v2), fault `page=` expressions
    /// included: the canonical naming, so that equal programs print equal.
    public func renamedDensely() -> Program {
        var mapping: [String: String] = [:]
        var result = self
        for index in result.calls.indices {
            if let name = result.calls[index].result {
                let prefix = String(name.prefix { $0.isLetter })
                mapping[name] = "\(prefix)\(mapping.count)"
                result.calls[index].result = mapping[name]
            }
            result.calls[index].arguments = result.calls[index].arguments.map { argument in
                guard case .expression(.reference(let name, let offset)) = argument, let renamed = mapping[name] else { return argument }
                return .expression(.reference(renamed, offset: offset))
            }
        }
        for f in result.faults.indices {
            for s in result.faults[f].settings.indices where result.faults[f].settings[s].key == "page" {
                if case .reference(let name, let offset)? = Expression(parsing: result.faults[f].settings[s].value), let renamed = mapping[name] {
                    result.faults[f].settings[s].value = Expression.reference(renamed, offset: offset).description
                }
            }
        }
        return result
    }

    /// Checks what the parser would check of a program built in memory (by the generator, a mutation or
    /// a shrink move): every call has one argument per parameter, each of the parameter's kind; a result
    /// name only where the routine binds one, with its kind's prefix, never bound twice; every name read
    /// bound by an earlier call; every fault `page=` name bound by some call.
    public func validate() throws(ProgramValidationError) {
        var bound: Set<String> = []
        for (index, call) in calls.enumerated() {
            func fail(_ message: String) -> ProgramValidationError { ProgramValidationError(call: index + 1, message: "\(call.routine.name): \(message)") }
            let signature = call.routine.signature
            guard call.arguments.count == signature.parameters.count else {
                throw fail("\(call.arguments.count) arguments for \(signature.parameters.count) parameters")
            }
            for (argument, parameter) in zip(call.arguments, signature.parameters) {
                guard argument.fits(parameter.kind) else { throw fail("\(parameter.label)=\(argument) is not a \(parameter.kind.rawValue)") }
                if let name = argument.referencedName, !bound.contains(name) { throw fail("'\(name)' is not bound by an earlier call") }
            }
            if let result = call.result {
                guard let kind = signature.result else { throw fail("binds '\(result)' but returns nothing") }
                guard kind.accepts(result) else {
                    throw fail("binds \(kind.noun) to '\(result)', which is not \(kind.prefix)<n>")
                }
                guard bound.insert(result).inserted else { throw fail("'\(result)' is already bound") }
            }
        }
        for fault in faults {
            for name in fault.pageReferences where !bound.contains(name) {
                throw ProgramValidationError(call: 0, message: "\(fault): '\(name)' is not bound by any call")
            }
        }
    }

    /// The order corpus merge and campaign dedup keep the simplest program by: fewer calls, then fewer
    /// fault lines, then shorter text, then the smaller text, so it is total and deterministic. (The
    /// shrinker's moves have their own notion, which also counts a default machine setting as simpler.)
    public func isSimpler(than other: Program) -> Bool {
        if calls.count != other.calls.count { return calls.count < other.calls.count }
        if faults.count != other.faults.count { return faults.count < other.faults.count }
        let mine = ProgramText.encode(self), theirs = ProgramText.encode(other)
        if mine.utf8.count != theirs.utf8.count { return mine.utf8.count < theirs.utf8.count }
        return mine < theirs
    }
}

extension FaultLine {
    /// The result names the line's `page=` expressions read.
    public var pageReferences: [String] {
        settings.filter { $0.key == "page" }.compactMap { Expression(parsing: $0.value)?.referencedName }
    }
}

/// A program that breaks a rule the parser enforces; `call` is 1-based (0: a fault line).
public struct ProgramValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    public let call: Int
    public let message: String
    public init(call: Int, message: String) {
        self.call = call
        self.message = message
    }
    public var description: String { call == 0 ? message : "call \(call): \(message)" }
}

extension Argument {
    /// Whether the argument is a value the parser accepts for a parameter of `kind`.
    func fits(_ kind: ArgumentKind) -> Bool {
        switch (kind, self) {
        case (.boolean, .boolean), (.bytes, .bytes): return true
        case (.handle, .expression), (.address, .expression), (.length, .expression), (.number, .expression): return true
        case (_, .symbol(let name)): return kind.symbols?.contains(name) ?? false
        case (_, .expression(.literal)): return kind.symbols != nil
        default: return false
        }
    }
}
