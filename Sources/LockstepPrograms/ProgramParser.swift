/// The line-oriented parser behind ``ProgramText/parse(_:)``.
struct ProgramParser {
    private var lineNumber = 0
    private var bound: [String: ResultKind] = [:]

    mutating func parse(_ text: String) throws(ProgramParseError) -> Program {
        var program = Program()
        var sawVersion = false
        var sawMachine = false
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = Array(rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine)
            let content = stripComment(line)
            if !sawVersion {
                // The version line is the first non-blank line.
                if String(line).trimmingSpaces.isEmpty { continue }
                try parseVersion(line)
                sawVersion = true
                continue
            }
            let trimmed = String(content).trimmingSpaces
            if trimmed.isEmpty { continue }
            let indent = content.prefix { $0 == " " || $0 == "\t" }.count
            if trimmed.hasPrefix("machine ") || trimmed == "machine" {
                guard !sawMachine else { throw error(indent, "a program has one machine line") }
                program.machine = try parseMachine(trimmed, indent)
                sawMachine = true
            } else if trimmed.hasPrefix("fault ") || trimmed == "fault" {
                guard sawMachine else { throw error(indent, "expected the machine line before fault lines") }
                guard program.calls.isEmpty else { throw error(indent, "fault lines come before the first call") }
                program.faults.append(try parseFault(trimmed, indent))
            } else {
                guard sawMachine else { throw error(indent, "expected 'machine <x86|x64|alpha> key=value…' before the first call") }
                program.calls.append(try parseCall(Array(content), from: indent))
            }
        }
        guard sawVersion else { throw ProgramParseError(line: max(1, lineNumber), column: 1, "expected '# lockstep \(Program.formatVersion)' as the first line") }
        guard sawMachine else { throw ProgramParseError(line: max(1, lineNumber), column: 1, "expected a machine line, e.g. 'machine x86'") }
        return program
    }

    private func error(_ column0: Int, _ message: String) -> ProgramParseError {
        ProgramParseError(line: lineNumber, column: column0 + 1, message)
    }

    private func stripComment(_ line: [Character]) -> ArraySlice<Character> {
        if let hash = line.firstIndex(of: "#") { return line[..<hash] }
        return line[...]
    }

    private func parseVersion(_ line: [Character]) throws(ProgramParseError) {
        let words = String(line).split(separator: " ")
        guard words.count == 3, words[0] == "#", words[1] == "lockstep" else {
            throw error(0, "expected '# lockstep \(Program.formatVersion)' as the first line")
        }
        guard let version = Int(words[2]), version == Program.formatVersion else {
            throw error(line.count - words[2].count, "unsupported format version '\(excerpt(words[2]))'; this lockstep reads version \(Program.formatVersion)")
        }
    }

    private func parseSettings(_ words: ArraySlice<Substring>, _ line: String, _ indent: Int) throws(ProgramParseError) -> [Setting] {
        var settings: [Setting] = []
        // Columns counted from the previous word, not from the line's start: linear in the line's length.
        var column = indent, counted = line.startIndex
        for word in words {
            column += line.distance(from: counted, to: word.startIndex)
            counted = word.startIndex
            guard let eq = word.firstIndex(of: "="), eq != word.startIndex, word.index(after: eq) != word.endIndex else {
                throw error(column, "expected key=value, found '\(excerpt(word))'")
            }
            settings.append(Setting(String(word[..<eq]), String(word[word.index(after: eq)...])))
        }
        return settings
    }

    private func parseMachine(_ line: String, _ indent: Int) throws(ProgramParseError) -> MachineLine {
        let words = line.split(separator: " ")
        guard words.count >= 2 else { throw error(indent + line.count, "expected an architecture (x86, x64 or alpha) after 'machine'") }
        return MachineLine(architecture: String(words[1]), settings: try parseSettings(words.dropFirst(2), line, indent))
    }

    private func parseFault(_ line: String, _ indent: Int) throws(ProgramParseError) -> FaultLine {
        let words = line.split(separator: " ")
        guard words.count >= 2 else { throw error(indent + line.count, "expected a fault kind after 'fault', e.g. 'fault pool.nonpaged nth=3'") }
        return FaultLine(kind: String(words[1]), settings: try parseSettings(words.dropFirst(2), line, indent))
    }

    // MARK: Calls

    private mutating func parseCall(_ line: [Character], from start: Int) throws(ProgramParseError) -> Call {
        var cursor = Cursor(characters: line, position: start)
        var result: String?
        let firstWord = cursor.word()
        cursor.skipSpaces()
        var routineName = firstWord
        var routineColumn = start
        if cursor.peek == "=" {
            result = firstWord
            cursor.advance()
            cursor.skipSpaces()
            routineColumn = cursor.position
            routineName = cursor.word()
        }
        guard !routineName.isEmpty else { throw error(cursor.position, "expected a routine name, e.g. IoAllocateMdl") }
        guard let routine = Routine(rawValue: routineName) else {
            throw error(routineColumn, "unknown routine '\(excerpt(routineName))'\(suggestion(routineName))")
        }
        let signature = routine.signature
        if let result {
            guard let kind = signature.result else { throw error(start, "\(routine.name) returns nothing to bind to '\(excerpt(result))'") }
            guard kind.accepts(result) else {
                throw error(start, "\(routine.name) binds \(kind.noun); name it \(kind.prefix)<n>, e.g. \(kind.prefix)0")
            }
            guard bound[result] == nil else { throw error(start, "'\(excerpt(result))' is already bound; every result gets a fresh name") }
        }
        cursor.skipSpaces()
        guard cursor.peek == "(" else { throw error(cursor.position, "expected '(' after \(routine.name)") }
        cursor.advance()
        var arguments: [Argument] = []
        for (index, parameter) in signature.parameters.enumerated() {
            cursor.skipSpaces()
            if index > 0 {
                guard cursor.peek == "," else {
                    throw error(cursor.position, "expected ',' and \(parameter.label) (\(routine.name) takes \(signature.parameters.count) arguments)")
                }
                cursor.advance()
                cursor.skipSpaces()
            }
            arguments.append(try parseArgument(&cursor, parameter, routine))
        }
        cursor.skipSpaces()
        if cursor.peek == "," {
            throw error(cursor.position, "\(routine.name) takes \(signature.parameters.count) argument\(signature.parameters.count == 1 ? "" : "s")")
        }
        guard cursor.peek == ")" else { throw error(cursor.position, "expected ')' after the last argument of \(routine.name)") }
        cursor.advance()
        cursor.skipSpaces()
        guard cursor.atEnd else { throw error(cursor.position, "unexpected text after ')'") }
        if let result, let kind = signature.result { bound[result] = kind }
        return Call(result, routine, arguments)
    }

    private func parseArgument(_ cursor: inout Cursor, _ parameter: Parameter, _ routine: Routine) throws(ProgramParseError) -> Argument {
        let start = cursor.position
        let token = cursor.token()
        var value = token
        var column = start
        if let eq = token.firstIndex(of: "=") {
            let label = String(token[..<eq])
            guard label == parameter.label else {
                throw error(start, "expected \(parameter.label)= (argument \(parameter.label) of \(routine.name)), found '\(excerpt(label))='")
            }
            value = String(token[token.index(after: eq)...])
            column = start + label.count + 1
        }
        guard !value.isEmpty else { throw error(column, "expected a value for \(parameter.label)") }
        switch parameter.kind {
        case .boolean:
            guard value == "true" || value == "false" else { throw error(column, "expected true or false for \(parameter.label)") }
            return .boolean(value == "true")
        case .bytes:
            if value == "\"\"" { return .bytes([]) }
            guard let data = parseHexBytes(value) else { throw error(column, "expected hex bytes for \(parameter.label), e.g. 0102A5FF") }
            return .bytes(data)
        case .handle, .address, .length, .number:
            return .expression(try parseExpression(value, column, parameter))
        default:
            if let symbols = parameter.kind.symbols, symbols.contains(value) { return .symbol(value) }
            if let number = ProgramNumber.parse(value) { return .expression(.literal(number)) }
            let options = parameter.kind.symbols?.joined(separator: ", ") ?? ""
            throw error(column, "unknown \(parameter.label) '\(excerpt(value))'; expected one of \(options)")
        }
    }

    private func parseExpression(_ text: String, _ column: Int, _ parameter: Parameter) throws(ProgramParseError) -> Expression {
        let operatorIndex = text.firstIndex { $0 == "+" || $0 == "-" }
        let name = String(text[..<(operatorIndex ?? text.endIndex)])
        guard let expression = Expression(parsing: text) else {
            if let operatorIndex, name.first?.isLetter == true {
                throw error(column + name.count + 1, "expected a number after '\(text[operatorIndex])'")
            }
            throw error(column, "expected a number, none, or a result name (with an optional +/- offset) for \(parameter.label)")
        }
        if let referenced = expression.referencedName, bound[referenced] == nil {
            throw error(column, "'\(excerpt(referenced))' is not bound by an earlier call")
        }
        return expression
    }

    private func suggestion(_ name: String) -> String {
        // No routine name is this long: a huge token gets no suggestion (searching for it is slow).
        guard name.utf8.count <= excerptLength else { return "" }
        let lowered = name.lowercased()
        if let match = Routine.allCases.first(where: { $0.name.lowercased() == lowered }) { return "; did you mean \(match.name)?" }
        if let match = Routine.allCases.first(where: { $0.name.lowercased().contains(lowered) && !lowered.isEmpty }) {
            return "; did you mean \(match.name)?"
        }
        return ""
    }
}

/// A position in one line of program text.
private struct Cursor {
    let characters: [Character]
    var position: Int

    var atEnd: Bool { position >= characters.count }
    var peek: Character? { atEnd ? nil : characters[position] }

    mutating func advance() { position += 1 }

    mutating func skipSpaces() {
        while let c = peek, c == " " || c == "\t" { advance() }
    }

    /// Letters, digits and underscores.
    mutating func word() -> String {
        let start = position
        while let c = peek, c.isLetter || c.isNumber || c == "_" { advance() }
        return String(characters[start..<position])
    }

    /// Everything up to the next ',' or ')' (trailing spaces dropped).
    mutating func token() -> String {
        let start = position
        while let c = peek, c != ",", c != ")" { advance() }
        return String(characters[start..<position]).trimmingSpaces
    }
}

extension String {
    /// Without leading and trailing blanks. Scans UTF-8 bytes: stepping back one Character at a time
    /// re-runs grapheme breaking and made a line of 64 Ki trailing blanks take seconds.
    var trimmingSpaces: String {
        let bytes = utf8
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = bytes.firstIndex(where: { !isBlank($0) }), let last = bytes.lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[first...last])
    }
}

func parseHexBytes(_ text: String) -> [UInt8]? {
    let digits = Array(text)
    guard digits.count % 2 == 0 else { return nil }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    var index = 0
    while index < digits.count {
        guard let byte = UInt8(String(digits[index...index + 1]), radix: 16) else { return nil }
        bytes.append(byte)
        index += 2
    }
    return bytes
}

/// The longest run of a hostile token an error message quotes.
let excerptLength = 40

/// `text` as an error message quotes it: whole when short, else its start and length (a multi-megabyte
/// token must not be copied into every message that names it).
public func excerpt<Text: StringProtocol>(_ text: Text) -> String {
    guard text.utf8.count > excerptLength else { return String(text) }
    return String(text.prefix(excerptLength)) + "… (\(text.utf8.count) bytes)"
}
