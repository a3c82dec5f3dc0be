import LockstepPrograms
import MemoryManager

/// Decides whether what the engine did satisfies what the oracle predicted. Relational expectations
/// (a mapping of an MDL's frames, the physical address of a VA) are checked against the engine's
/// state right after the call, through its inspector.
struct PredictionMatcher {
    let adapter: EngineAdapter

    private var kernel: Kernel { adapter.kernel }
    private var inspect: KernelInspector { kernel.inspect }

    /// Nil when the outcome matches; otherwise why not.
    func mismatch(_ expectation: Prediction, _ outcome: Outcome) -> String? {
        switch (expectation, outcome) {
        case (.unpredictable, _): return nil
        case (.oneOf(let options), _):
            let reasons = options.compactMap { mismatch($0, outcome) }
            return reasons.count < options.count ? nil : "none of the alternatives matched (\(reasons.joined(separator: "; ")))"
        case (.refused, .refused): return nil
        case (.raises(let expected), .raised(let actual)):
            return expected == actual ? nil : "raised \(hex(actual)), expected \(hex(expected))"
        case (.bugChecks(let code, let parameters), .bugCheck(let actualCode, let actualParameters)):
            guard code == actualCode else { return "bug check \(hex(actualCode)), expected \(hex(code))" }
            for (index, (expected, actual)) in zip(parameters, actualParameters).enumerated() {
                if let reason = parameterMismatch(expected, actual) { return "bug check parameter \(index + 1): \(reason)" }
            }
            return nil
        case (.returns(let value), .returned(let actual)):
            return valueMismatch(value, actual)
        default:
            return "engine \(outcome), expected \(expectation)"
        }
    }

    private func parameterMismatch(_ expected: ParameterPrediction, _ actual: UInt64) -> String? {
        switch expected {
        case .any: return nil
        case .exactly(let value): return value == actual ? nil : "\(hex(actual)), expected \(hex(value))"
        case .valueOf(let name, let offset):
            let value = adapter.evaluate(.reference(name, offset: offset))
            return value == actual ? nil : "\(hex(actual)), expected \(name) = \(hex(value))"
        }
    }

    private func valueMismatch(_ expected: ValuePrediction, _ actual: Value) -> String? {
        let c = kernel.constants
        switch (expected, actual) {
        case (.any, _): return nil
        case (.none, .none): return nil
        case (.null, .number(0)): return nil
        case (.exactly(let value), .number(let actual)):
            return value == actual ? nil : "returned \(hex(actual)), expected \(hex(value))"
        case (.boolean(let value), .boolean(let actual)):
            return value == actual ? nil : "returned \(actual ? "TRUE" : "FALSE"), expected \(value ? "TRUE" : "FALSE")"
        case (.bytes(let value), .bytes(let actual)):
            guard value != actual else { return nil }
            let index = (0..<min(value.count, actual.count)).first { value[$0] != actual[$0] } ?? min(value.count, actual.count)
            return "bytes differ at offset \(index) (engine \(actual.count) bytes, expected \(value.count))"
        case (.translated(let address, let space), .translated(let actualAddress, let actualSpace)):
            return address == actualAddress && space == actualSpace ? nil
                : "translated to \(hex(actualAddress)) space \(actualSpace), expected \(hex(address)) space \(space)"
        case (.fresh, .number(let value)):
            return value != 0 ? nil : "returned NULL, expected a new object"
        case (.sameAs(let name, let offset), .number(let value)):
            let expected = adapter.evaluate(.reference(name, offset: offset))
            return expected == value ? nil : "returned \(hex(value)), expected \(name)\(offset == 0 ? "" : "+\(offset)") = \(hex(expected))"
        case (.physicalAddressOf(let expression), .number(let value)):
            let va = adapter.evaluate(expression)
            let expected = inspect.pte(va).flatMap { $0.isHardwareValid ? $0.frame : nil }.map { $0 << c.pageShift | c.byteOffset(va) } ?? 0
            return expected == value ? nil : "returned \(hex(value)), but \(hex(va)) translates to \(hex(expected))"
        case (.systemMapping(let mdl, let offset), .number(let value)):
            guard !c.isUserAddress(value), value != 0 else { return "returned \(hex(value)), expected a system address" }
            return mappingMismatch(value, mdl: mdl, byteOffset: offset)
        case (.userMapping(let mdl, let offset), .number(let value)):
            guard c.isUserAddress(value), value != 0 else { return "returned \(hex(value)), expected a user address" }
            return mappingMismatch(value, mdl: mdl, byteOffset: offset)
        case (.ioSpaceMapping(let physical), .number(let value)):
            guard !c.isUserAddress(value), c.byteOffset(value) == c.byteOffset(physical) else {
                return "returned \(hex(value)), expected a system address with offset \(hex(c.byteOffset(physical)))"
            }
            let frame = inspect.pte(value)?.frame
            return frame == physical >> c.pageShift ? nil : "\(hex(value)) maps frame \(frame.map(hex) ?? "none"), expected \(hex(physical >> c.pageShift))"
        default:
            return "engine \(Outcome.returned(actual)), expected \(expected)"
        }
    }

    /// A mapping at `value` must carry the predicted byte offset (the oracle's: 0 before NT 4.0 SP4) and
    /// translate page by page to the MDL's PFNs.
    private func mappingMismatch(_ value: UInt64, mdl name: String, byteOffset: UInt64) -> String? {
        let c = kernel.constants
        guard c.byteOffset(value) == byteOffset else {
            return "returned \(hex(value)) with byte offset \(hex(c.byteOffset(value))), expected \(hex(byteOffset))"
        }
        let mdl = adapter.evaluate(.reference(name, offset: 0))
        guard let header = inspect.mdl(mdl) else { return "the MDL \(name) is not readable" }
        let pages = c.spanPages(header.startVa + UInt64(header.byteOffset), UInt64(header.byteCount))
        let base = c.pageAlign(value)
        for index in 0..<min(pages, Limits.mappedPagesCompared) {
            guard let pfn = inspect.pfn(mdl, index), pfn != c.emptyPfn else { break }
            let frame = inspect.pte(base + index * c.pageSize)?.frame
            if frame != pfn { return "page \(index) of the mapping maps \(frame.map(hex) ?? "nothing"), the MDL's PFN is \(hex(pfn))" }
        }
        return nil
    }
}

func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16, uppercase: true) }
func hex(_ value: UInt32) -> String { hex(UInt64(value)) }
