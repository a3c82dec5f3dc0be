import LockstepPrograms
import MemoryManager

/// The relevant parts of both states at a divergence: for every name the failing call reads, what the
/// engine holds there and what the oracle believes.
enum StateDiff {
    static func describe(_ call: Call, adapter: EngineAdapter, oracle: Oracle) -> String {
        var lines: [String] = []
        var seen = Set<String>()
        for name in call.references where seen.insert(name).inserted {
            let engine = engineView(name, adapter: adapter)
            let model = oracle.describe(name) ?? "no record"
            lines.append("  \(name) engine: \(engine)")
            lines.append("  \(name) model:  \(model)")
        }
        return lines.joined(separator: "\n")
    }

    private static func engineView(_ name: String, adapter: EngineAdapter) -> String {
        let value = adapter.bindings[name, default: 0]
        let inspect = adapter.kernel.inspect
        var parts = ["= \(hex(value))"]
        if name.hasPrefix("m") || name.hasPrefix("p"), let header = inspect.mdl(value) {
            parts.append("MDL StartVa=\(hex(header.startVa)) ByteOffset=\(hex(UInt64(header.byteOffset))) ByteCount=\(hex(UInt64(header.byteCount)))")
            parts.append("Size=\(header.size) MdlFlags=\(header.flags) Process=\(hex(header.process)) MappedSystemVa=\(hex(header.mappedSystemVa))")
        } else if let pte = inspect.pte(value) {
            parts.append("PTE \(pte.state) \(pte.protection)")
        }
        return parts.joined(separator: " ")
    }
}
