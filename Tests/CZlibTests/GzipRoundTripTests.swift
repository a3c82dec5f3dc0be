import CZlib
import Lockstep
import Testing

/// The corpus's gzip layer over the system zlib: what `zcat` must read, and corrupt input rejected.
@Suite struct GzipRoundTripTests {
    @Test func linkedZlibIsVersionOne() {
        #expect(String(cString: zlibVersion()).hasPrefix("1."))
    }

    @Test func programTextSurvivesGzipRoundTrip() throws {
        let text = Array("# lockstep 1\nmachine x86 ram=16M\nm0 = IoAllocateMdl(va=0x10010, length=0x2000)\n".utf8)
        let compressed = Gzip.compress(text)
        // RFC 1952 magic bytes and the deflate method: what `zcat` expects.
        #expect(compressed.prefix(3) == [0x1F, 0x8B, 0x08])
        #expect(Gzip.isCompressed(compressed))
        #expect(try Gzip.decompress(compressed) == text)
    }

    @Test func compressionIsDeterministic() {
        let data = Array(repeating: UInt8(0x41), count: 10_000) + Array(0...255)
        #expect(Gzip.compress(data) == Gzip.compress(data))
    }

    @Test func corruptedOrTruncatedGzipIsRejectedNotMisread() {
        var compressed = Gzip.compress(Array(repeating: 0x41, count: 4096))
        compressed[compressed.count / 2] ^= 0xFF
        #expect(throws: Gzip.CorruptData.self) { try Gzip.decompress(compressed) }
        let whole = Gzip.compress(Array(0...255))
        #expect(throws: Gzip.CorruptData.self) { try Gzip.decompress(Array(whole.prefix(whole.count - 6))) }
    }
}
