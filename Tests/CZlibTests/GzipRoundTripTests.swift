import CZlib
import Testing

/// Compresses with a gzip wrapper (windowBits 15 + 16) and inflates it back, the way corpus
/// entries will be written and read, so a broken zlib link fails here first.
@Suite struct GzipRoundTripTests {
    private func gzip(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        let initStatus = deflateInit2_(&stream, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
                                       Z_DEFAULT_STRATEGY, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        precondition(initStatus == Z_OK)
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var source = input
        let produced: Int = source.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                let status = deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END)
                return outBuf.count - Int(stream.avail_out)
            }
        }
        return Array(output.prefix(produced))
    }

    private func gunzip(_ input: [UInt8], expectedCount: Int) -> [UInt8]? {
        var stream = z_stream()
        guard inflateInit2_(&stream, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { return nil }
        defer { inflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: expectedCount + 16)
        var source = input
        let result: Int? = source.withUnsafeMutableBufferPointer { inBuf in
            output.withUnsafeMutableBufferPointer { outBuf in
                stream.next_in = inBuf.baseAddress
                stream.avail_in = UInt32(inBuf.count)
                stream.next_out = outBuf.baseAddress
                stream.avail_out = UInt32(outBuf.count)
                guard inflate(&stream, Z_FINISH) == Z_STREAM_END else { return nil }
                return outBuf.count - Int(stream.avail_out)
            }
        }
        return result.map { Array(output.prefix($0)) }
    }

    @Test func programTextSurvivesGzipRoundTrip() throws {
        let text = Array("# lockstep 1\nmachine x86 ram=16M\nm0 = IoAllocateMdl(va=0x10010, length=0x2000)\n".utf8)
        let compressed = gzip(text)
        // RFC 1952 magic bytes and the deflate method: what `zcat` expects.
        #expect(compressed.prefix(3) == [0x1F, 0x8B, 0x08])
        #expect(gunzip(compressed, expectedCount: text.count) == text)
    }

    @Test func corruptedGzipIsRejectedNotMisread() {
        var compressed = gzip(Array(repeating: 0x41, count: 4096))
        compressed[compressed.count / 2] ^= 0xFF
        #expect(gunzip(compressed, expectedCount: 4096) != Array(repeating: 0x41, count: 4096))
    }
}
