/// The fuzzer's only source of randomness: SplitMix64, seeded explicitly and passed by the caller.
/// Same seed, same sequence, on every machine.
///
/// It can also be driven by a byte string (`init(choices:)`, the libFuzzer entry point): each decision
/// then reads the next bytes of the string (one byte for a choice among at most 256, eight for a raw
/// draw), so a mutated byte changes a nearby decision, and every byte string is a valid sequence of
/// decisions. When the bytes run out, SplitMix64 seeded from them takes over.
package struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    private var choices: [UInt8] = []
    private var position = 0

    package init(seed: UInt64) { state = seed }

    /// Decisions read from `choices` first.
    package init(choices: [UInt8]) {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in choices { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        state = hash
        self.choices = choices
    }

    package mutating func next() -> UInt64 {
        if position < choices.count { return take(8) }
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Up to `count` choice bytes, little-endian (fewer at the end of the string).
    private mutating func take(_ count: Int) -> UInt64 {
        var value: UInt64 = 0
        for shift in 0..<min(count, choices.count - position) { value |= UInt64(choices[position + shift]) << (8 * UInt64(shift)) }
        position += count
        return value
    }

    /// A value in 0..<n (n > 0).
    package mutating func below(_ n: Int) -> Int {
        let n = max(1, n)
        if position < choices.count { return Int(take(n <= 256 ? 1 : 4) % UInt64(n)) }
        return Int(next() % UInt64(n))
    }

    /// True with probability `percent`/100.
    package mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    /// One element of a non-empty array.
    package mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }

    /// The seed for sub-stream `index` of `seed` (one per program), independent of the order programs run in.
    package static func derive(_ seed: UInt64, _ index: UInt64) -> UInt64 {
        var mixer = SeededRandom(seed: seed ^ (index &* 0xD1B5_4A32_D192_ED03))
        return mixer.next()
    }
}
