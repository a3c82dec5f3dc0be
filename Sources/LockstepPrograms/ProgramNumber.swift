/// How program text writes a number. One rule for every reader of program text (the call parser and
/// expressions, fault lines, the reference model's machine line, the text mutator), so no two of them
/// can read `0X10`, `+3` or `16M` differently. The engine keeps its own machine-line parser (it imports
/// nothing of ours).
public enum ProgramNumber {
    /// A decimal number (`4096`, leading zeros allowed) or hex after `0x` or `0X` (`0x1000`, `0XfF`);
    /// nil for anything else: a sign, separators, a suffix, blanks, an empty string or a value past
    /// `UInt64.max`. One quirk is kept so no program text changes meaning: Swift's `UInt64(_:radix:)`
    /// takes a sign, so `0x+10` reads 16 and `0x-0` reads 0.
    public static func parse(_ text: Substring) -> UInt64? {
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt64(text.dropFirst(2), radix: 16) }
        // `UInt64("+5")` is 5: a leading digit keeps the sign out.
        guard text.first?.isNumber == true else { return nil }
        return UInt64(text)
    }

    public static func parse(_ text: String) -> UInt64? { parse(Substring(text)) }

    /// A size on a machine line: decimal digits with a `K`, `M` or `G` suffix (2^10, 2^20, 2^30 bytes:
    /// `256K`, `16M`, `1G`), or a number as ``parse(_:)`` reads it. Nil when the product does not fit
    /// 64 bits. Hex takes no suffix (`0x10M` is not a size), as the engine reads machine lines.
    public static func parseSize(_ text: Substring) -> UInt64? {
        let shift: UInt64? = switch text.last { case "K": 10; case "M": 20; case "G": 30; default: nil }
        guard let shift else { return parse(text) }
        let digits = text.dropLast()
        guard !digits.hasPrefix("0x"), !digits.hasPrefix("0X"), let value = parse(digits) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : product
    }

    public static func parseSize(_ text: String) -> UInt64? { parseSize(Substring(text)) }
}
