import MemoryManager
import Testing

/// MmAllocatePagesForMdl and MmFreePagesFromMdl (spec §2.20).
@Suite struct AllocatePagesForMdlTests {
    @Test func allocatePagesForMdlAndFreeThem() throws {
        let k = try Kernel()
        let free = k.inspect.freeFrameCount
        let mdl = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 0x3000))
        let header = try #require(k.inspect.mdl(mdl))
        #expect(header.startVa == 0 && header.byteOffset == 0 && header.byteCount == 0x3000)
        #expect(header.flags == .pagesLocked)
        #expect(k.inspect.freeFrameCount == free - 3)
        for index: UInt64 in 0..<3 {
            let pfn = try #require(k.inspect.pfn(mdl, index))
            #expect(pfn != 0 && pfn != 0xFFFF_FFFF)
            #expect(k.inspect.physicalBytes(pfn << 12, count: 16) == [UInt8](repeating: 0, count: 16))
        }
        try k.mm.freePagesFromMdl(mdl)
        #expect(k.inspect.pfn(mdl, 0) == 0xFFFF_FFFF)
        #expect(k.inspect.mdl(mdl)?.flags == [])
        #expect(k.inspect.freeFrameCount == free)
        // A second free finds the all-ones slot and stops; no frame is freed twice.
        try k.mm.freePagesFromMdl(mdl)
        #expect(k.inspect.freeFrameCount == free)
        // Fewer pages than asked when frames run out.
        var frames = 0
        k.faultDecider = { site in
            guard site.kind == .frame else { return .proceed }
            frames += 1
            return frames > 2 ? .fail(.insufficientResources) : .proceed
        }
        let partial = try #require(try k.mm.allocatePagesForMdl(lowAddress: 0, highAddress: .max, skipBytes: 0, totalBytes: 0x5000))
        #expect(k.inspect.mdl(partial)?.byteCount == 0x2000)
    }
}
