import Lockstep
import LockstepPrograms

/// How driver request programs are generated.
public struct DriverGenerationOptions: Sendable {
    /// The machine every program runs on.
    public var machine: MachineLine
    /// Requests per program.
    public var requests: ClosedRange<Int>
    /// Percent of programs that carry a randomized fault plan (one or two `fault` lines).
    public var faultPercent: Int
    /// Bytes of device storage (positions are chosen around its end).
    public var deviceSize: UInt64

    /// The defaults: x86, 2 to 10 requests, a fault plan in 30 % of programs, the standard device.
    public init(machine: MachineLine = MachineLine(architecture: "x86"), requests: ClosedRange<Int> = 2...10, faultPercent: Int = 30,
                deviceSize: UInt64 = DriverRunner.deviceSize) {
        self.machine = machine
        self.requests = requests
        self.faultPercent = faultPercent
        self.deviceSize = deviceSize
    }
}

/// Builds request sequences from a seed: user buffers of several kinds (read-write, read-only, made
/// no-access, freed, paged out, in a second process), reads, writes and device controls with
/// boundary sizes, offsets and positions and a per-program subset of transfer methods (swarm), several
/// requests outstanding at once and completed, cancelled or left for the end in a generated order, and
/// randomized fault plans. Same seed, same program, byte for byte.
public struct DriverProgramGenerator: Sendable {
    /// How it generates.
    public let options: DriverGenerationOptions

    /// A generator with these options.
    public init(_ options: DriverGenerationOptions = DriverGenerationOptions()) { self.options = options }

    /// The program for one seed.
    public func generate(seed: UInt64) -> Program {
        var builder = DriverProgramBuilder(options: options, random: SeededRandom(seed: seed))
        return builder.build()
    }
}

/// One driver program being built.
struct DriverProgramBuilder {
    struct Buffer {
        let name: String
        let size: UInt64
        var writable: Bool
        var alive = true
    }

    let options: DriverGenerationOptions
    var random: SeededRandom
    let pageSize: UInt64
    var calls: [Call] = []
    var counter = 0
    /// Buffers of the current process.
    var buffers: [Buffer] = []
    /// Buffers of a process no longer current: addresses that mean nothing in the current one.
    var foreign: [Buffer] = []
    /// Requests that may still be pending, in issue order.
    var pending: [String] = []
    var methods: [String] = []
    var processes = 0

    init(options: DriverGenerationOptions, random: SeededRandom) {
        self.options = options
        self.random = random
        pageSize = options.machine.pageSize
    }

    mutating func build() -> Program {
        // Swarm: each program uses its own subset of transfer methods.
        methods = ["Buffered", "Direct", "Neither"].filter { _ in random.chance(70) }
        if methods.isEmpty { methods = [random.pick(["Buffered", "Direct", "Neither"])] }
        allocateBuffer(pages: UInt64(2 + random.below(5)), writable: true)
        if random.chance(30) { allocateBuffer(pages: UInt64(1 + random.below(3)), writable: false) }
        let count = options.requests.lowerBound + random.below(options.requests.count)
        for _ in 0..<count {
            for _ in 0..<random.below(3) { interlude() }
            issueRequest()
        }
        finishRequests()
        if random.chance(85) { append(nil, .driverUnload, []) }
        return Program(machine: options.machine, faults: random.chance(options.faultPercent) ? faultPlan() : [], calls: calls)
    }

    mutating func fresh(_ prefix: String) -> String {
        defer { counter += 1 }
        return "\(prefix)\(counter)"
    }

    @discardableResult
    mutating func append(_ prefix: String?, _ routine: Routine, _ arguments: [Argument]) -> String? {
        let name = prefix.map { fresh($0) }
        calls.append(Call(name, routine, arguments))
        return name
    }

    func literal(_ value: UInt64) -> Argument { .expression(.literal(value)) }
    func reference(_ name: String, _ offset: UInt64 = 0) -> Argument { .expression(.reference(name, offset: Int64(offset))) }

    // MARK: Buffers and events between requests

    mutating func allocateBuffer(pages: UInt64, writable: Bool) {
        let size = pages * pageSize
        let name = append("b", .allocateUserBuffer, [literal(size), .symbol(writable ? "ReadWrite" : "ReadOnly")])!
        buffers.append(Buffer(name: name, size: size, writable: writable))
    }

    /// Something that happens while requests are outstanding.
    mutating func interlude() {
        let roll = random.below(100)
        switch roll {
        case 0..<40 where !pending.isEmpty:
            append(nil, .driverCompleteDpc, [reference(pending.remove(at: random.below(pending.count)))])
        case 40..<50 where !pending.isEmpty:
            let name = pending[random.below(pending.count)]
            append(nil, .driverCancel, [reference(name)])
        case 50..<62:
            guard let index = pickIndex(buffers.indices.filter { buffers[$0].alive }) else { return }
            let buffer = buffers[index]
            append("x", .pageOut, [reference(buffer.name, UInt64(random.below(Int(buffer.size / pageSize))) * pageSize)])
        case 62..<70:
            guard let index = pickIndex(buffers.indices.filter { buffers[$0].alive && buffers[$0].writable }) else { return }
            let offset = UInt64(random.below(Int(buffers[index].size)))
            append(nil, .writeMemory, [reference(buffers[index].name, offset), .bytes(pattern(Int(min(32, buffers[index].size - offset))))])
        case 70..<75:
            guard buffers.count > 1, let index = pickIndex(buffers.indices.filter { buffers[$0].alive }) else { return }
            append("x", .freeUserBuffer, [reference(buffers[index].name)])
            buffers[index].alive = false
        case 75..<82:
            allocateBuffer(pages: UInt64(1 + random.below(4)), writable: random.chance(80))
        case 82..<88:
            guard let index = pickIndex(buffers.indices.filter { buffers[$0].alive }) else { return }
            let protection = random.pick(["NoAccess", "ReadOnly", "ReadWrite"])
            let pages = UInt64(1 + random.below(Int(buffers[index].size / pageSize)))
            append("x", .protectUserBuffer, [reference(buffers[index].name), literal(pages * pageSize), .symbol(protection)])
            buffers[index].writable = protection == "ReadWrite"
        case 88..<91 where processes == 0:
            processes += 1
            let process = append("r", .createProcess, [])!
            append("x", .attachProcess, [reference(process)])
            foreign += buffers
            buffers = []
            allocateBuffer(pages: UInt64(2 + random.below(3)), writable: true)
        default: break
        }
    }

    /// One of `indices`, nil if there are none.
    mutating func pickIndex(_ indices: [Int]) -> Int? { indices.isEmpty ? nil : indices[random.below(indices.count)] }

    mutating func pattern(_ count: Int) -> [UInt8] {
        let seed = UInt8(truncatingIfNeeded: random.next())
        return (0..<max(1, count)).map { seed &+ UInt8(truncatingIfNeeded: $0 &* 13) }
    }

    // MARK: Requests

    mutating func issueRequest() {
        let kind = random.below(100)
        let method = random.pick(methods)
        // Mostly a live buffer of this process; sometimes a freed one or another process's.
        var pool = buffers.filter(\.alive)
        if random.chance(10) || pool.isEmpty { pool = buffers + foreign }
        guard !pool.isEmpty else { return }
        let buffer = random.pick(pool)
        let offsets: [UInt64] = [0, 0, 0, 1, 0x10, pageSize - 1, pageSize, pageSize + 0x123]
        let offset = min(random.pick(offsets), buffer.size - 1)
        let room = buffer.size - offset
        let lengths: [UInt64] = [0, 1, 0x10, 0x200, pageSize - 1, pageSize, pageSize + 1, 2 * pageSize, room, room, room + pageSize]
        let length = random.pick(lengths)
        let size = options.deviceSize
        let inside = 0x10 * UInt64(random.below(Int(size / 0x10)))
        let positions: [UInt64] = [0, 0, inside, inside, size - 0x10, size - 1, size, size + pageSize]
        let position = random.pick(positions)
        let transfer: [Argument] = [reference(buffer.name, offset), literal(length), literal(position), .symbol(method)]
        let name: String
        switch kind {
        case 0..<40:
            name = append("q", .driverRead, transfer)!
        case 40..<75:
            prefill(buffer, offset, length)
            name = append("q", .driverWrite, transfer)!
        default:
            let code: UInt64 = random.chance(45) ? 1 : random.chance(80) ? 2 : UInt64(3 + random.below(0x800))
            if code == 2 { prefill(buffer, offset, length) }
            name = append("q", .driverDeviceControl, [literal(code)] + transfer)!
        }
        pending.append(name)
    }

    /// The caller writes recognisable data before a write-like request (most of the time).
    mutating func prefill(_ buffer: Buffer, _ offset: UInt64, _ length: UInt64) {
        guard buffer.alive, buffer.writable, length > 0, random.chance(60), buffers.contains(where: { $0.name == buffer.name }) else { return }
        append(nil, .writeMemory, [reference(buffer.name, offset), .bytes(pattern(Int(min(length, 48, buffer.size - offset))))])
    }

    /// The device finishes the remaining requests in a generated order; some are cancelled first, a
    /// few are left for the end of the program.
    mutating func finishRequests() {
        while !pending.isEmpty {
            let name = pending.remove(at: random.below(pending.count))
            if random.chance(10) { continue }
            if random.chance(15) { append(nil, .driverCancel, [reference(name)]) }
            append(nil, .driverCompleteDpc, [reference(name)])
        }
    }

    /// One or two fault lines: the driver's nth decision of a kind, or every one after the nth.
    mutating func faultPlan() -> [FaultLine] {
        (0..<(random.chance(80) ? 1 : 2)).map { _ in
            let kind = random.pick(["pool.nonpaged", "pool.nonpaged", "ptes", "ptes", "frame", "pagein"])
            let key = random.chance(15) ? "after" : "nth"
            return FaultLine(kind: kind, settings: [Setting(key, "\(key == "nth" ? 1 + random.below(6) : random.below(4))")])
        }
    }
}
