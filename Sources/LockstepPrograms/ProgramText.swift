/// The program text format: a version line, a machine line, fault lines, then one call per line.
///
/// ```
/// # lockstep 1
/// machine x86 ram=16M nonpaged=256K ptes=512
/// fault pool.nonpaged nth=3
/// b0 = AllocateUserBuffer(size=0x3000, protect=ReadWrite)
/// m0 = IoAllocateMdl(va=b0+0x10, length=0x2000, secondary=false, quota=false, irp=none)
/// MmProbeAndLockPages(m0, KernelMode, IoWriteAccess)
/// ```
///
/// `#` starts a comment anywhere. `encode` writes the canonical form; `parse` accepts it and also
/// unlabeled arguments, decimal numbers and extra spaces, so `parse(encode(p)) == p` for every program.
public enum ProgramText {
    /// The canonical text of a program.
    public static func encode(_ program: Program) -> String {
        var lines = ["# lockstep \(Program.formatVersion)", program.machine.description]
        lines += program.faults.map(\.description)
        lines += program.calls.map(encode)
        return lines.joined(separator: "\n") + "\n"
    }

    /// The canonical text of one call.
    public static func encode(_ call: Call) -> String {
        let parameters = call.routine.signature.parameters
        let arguments = call.arguments.enumerated().map { index, argument in
            index < parameters.count && parameters[index].labeled ? "\(parameters[index].label)=\(argument)" : "\(argument)"
        }
        let text = "\(call.routine.name)(\(arguments.joined(separator: ", ")))"
        return call.result.map { "\($0) = \(text)" } ?? text
    }

    /// Parses a program. Errors name the line and column and what was expected there.
    public static func parse(_ text: String) throws(ProgramParseError) -> Program {
        var parser = ProgramParser()
        return try parser.parse(text)
    }
}

/// Why a program text did not parse: the 1-based line and column and what was expected.
public struct ProgramParseError: Error, Hashable, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let message: String

    public init(line: Int, column: Int, _ message: String) {
        self.line = line
        self.column = column
        self.message = message
    }

    /// `line 3, column 14: expected ')' after the last argument`.
    public var description: String { "line \(line), column \(column): \(message)" }
}
