import LockstepPrograms
import MemoryManager

/// What a campaign counts as coverage, like syzkaller's signal: each step's routine × outcome class
/// (return kind, raised status, bug-check code and, for the multi-purpose codes, its first parameter),
/// and each fault site's kind × routine × nth (nth capped at 8) × whether the plan failed it, and each
/// parameter edge a call's arguments reached (`ParameterEdges`: routine × parameter × edge).
///
/// Features are 64-bit FNV-1a hashes of those parts: stable on every machine and in every process
/// (unlike `Hasher`), and cheap enough to compute for every step of every program.
struct FeatureSet {
    private var seen = Set<UInt64>()

    var count: Int { seen.count }

    /// Adds the features of one run; returns how many were new.
    @discardableResult
    mutating func insert(_ report: RunReport) -> Int {
        let before = seen.count
        for step in report.steps { seen.insert(Self.feature(step.call.routine, step.outcome)) }
        for site in report.faultSites { seen.insert(Self.feature(site)) }
        return seen.count - before
    }

    /// Adds a parameter edge (routine × parameter × edge, an index in `ParameterEdges.all`); true if new.
    @discardableResult
    mutating func insert(edge: Int) -> Bool { seen.insert(0xED6E_5000_0000_0000 ^ UInt64(edge)).inserted }

    static func feature(_ routine: Routine, _ outcome: Outcome) -> UInt64 {
        var hash = FNV()
        hash.add(routine.rawValue)
        switch outcome {
        case .returned(.none): hash.addByte(1)
        case .returned(.number(0)): hash.addByte(2)
        case .returned(.boolean(let value)): hash.addByte(value ? 3 : 4)
        case .returned: hash.addByte(5)
        case .raised(let status): hash.addByte(6); hash.add(UInt64(status))
        case .bugCheck(let code, let parameters):
            hash.addByte(7)
            hash.add(UInt64(code))
            if [0xC4, 0x1A, 0x4E, 0x76].contains(code) { hash.add(parameters.first ?? 0) }
        case .refused: hash.addByte(8)
        }
        return hash.value
    }

    static func feature(_ site: FaultSiteVisit) -> UInt64 {
        var hash = FNV()
        hash.addByte(9)
        hash.add(site.kind.rawValue)
        hash.add(site.routine)
        hash.add(min(site.ordinal, 8))
        hash.addByte(site.failed ? 1 : 0)
        return hash.value
    }
}

/// FNV-1a, 64 bits.
private struct FNV {
    var value: UInt64 = 0xCBF2_9CE4_8422_2325

    mutating func addByte(_ byte: UInt8) { value = (value ^ UInt64(byte)) &* 0x100_0000_01B3 }

    mutating func add(_ number: UInt64) {
        for shift in stride(from: 0, to: 64, by: 8) { addByte(UInt8(truncatingIfNeeded: number >> UInt64(shift))) }
    }

    mutating func add(_ text: String) {
        for byte in text.utf8 { addByte(byte) }
        addByte(0)
    }
}
