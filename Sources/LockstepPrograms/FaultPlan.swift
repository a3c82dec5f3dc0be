/// A program's fault plan: which resource decisions fail. Lines read
///
///     fault pool.nonpaged nth=3                  # fail the 3rd nonpaged-pool allocation
///     fault ptes after=1                         # fail every system-PTE reservation after the 1st
///     fault pagein page=b0+0x1000 status=STATUS_DEVICE_DATA_ERROR
///     fault frame                                # fail every frame allocation
///
/// `nth` and `after` count decisions of that kind from the first call; `page` (frame and pagein only)
/// limits the rule to faults on that page; `status` is the I/O status a failed page-in completes with.
///
/// One reading for everyone: the runner's engine hook, the driver harness's fault gate and the reference
/// model all parse and match through this type. Where the engine takes a decision and what a failed
/// decision does are NT semantics; each side keeps its own.
public struct FaultPlan: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public let kind: FaultKind
        public let nth: UInt64?
        public let after: UInt64?
        public let page: Expression?
        /// The NTSTATUS a failed page-in completes with (``FaultPlan/defaultStatus`` unless the line says).
        public let status: UInt32

        public init(kind: FaultKind, nth: UInt64? = nil, after: UInt64? = nil, page: Expression? = nil, status: UInt32 = FaultPlan.defaultStatus) {
            self.kind = kind
            self.nth = nth
            self.after = after
            self.page = page
            self.status = status
        }

        /// Whether this rule fails decision number `ordinal` (1-based, per kind) of `kind`, taken on the page
        /// holding `address` (0 where no page is involved). `pageMask` keeps an address's page bits (the
        /// machine's page size and pointer width); `evaluate` gives a `page=` expression's value under the
        /// names bound so far.
        public func fails(_ kind: FaultKind, ordinal: UInt64, address: UInt64, pageMask: UInt64,
                          evaluate: (Expression) -> UInt64) -> Bool {
            guard kind == self.kind else { return false }
            if let nth, ordinal != nth { return false }
            if let after, ordinal <= after { return false }
            if let page, evaluate(page) & pageMask != address & pageMask { return false }
            return true
        }
    }

    public let rules: [Rule]

    /// STATUS_DEVICE_DATA_ERROR: the status a failed page-in completes with when the line names none.
    public static let defaultStatus: UInt32 = 0xC000_009C

    /// The status names a `status=` setting accepts besides a number: the names traces print statuses
    /// with, so a status seen in a trace can be pasted into a fault line.
    public static let statusNames: [(name: String, value: UInt32)] = [
        ("STATUS_SUCCESS", 0x0000_0000), ("STATUS_ACCESS_VIOLATION", 0xC000_0005), ("STATUS_IN_PAGE_ERROR", 0xC000_0006),
        ("STATUS_INVALID_PARAMETER", 0xC000_000D), ("STATUS_NO_MEMORY", 0xC000_0017), ("STATUS_CONFLICTING_ADDRESSES", 0xC000_0018),
        ("STATUS_INSUFFICIENT_RESOURCES", 0xC000_009A), ("STATUS_DEVICE_DATA_ERROR", 0xC000_009C),
        ("STATUS_WORKING_SET_QUOTA", 0xC000_00A1), ("STATUS_INVALID_ADDRESS", 0xC000_0141),
        ("STATUS_PROCESS_IS_TERMINATING", 0xC000_010A), ("STATUS_QUOTA_EXCEEDED", 0xC000_0044), ("STATUS_BREAKPOINT", 0x8000_0003),
    ]

    /// Why a fault line does not make a rule.
    public struct PlanError: Error, Equatable, CustomStringConvertible {
        public let description: String
    }

    public init(rules: [Rule]) {
        self.rules = rules
    }

    /// Reads the fault lines of a program; the first line that makes no rule is an error saying why.
    public init(_ lines: [FaultLine]) throws(PlanError) {
        var rules: [Rule] = []
        for line in lines { rules.append(try Self.rule(line)) }
        self.rules = rules
    }

    private static func rule(_ line: FaultLine) throws(PlanError) -> Rule {
        guard let kind = FaultKind(rawValue: line.kind) else {
            throw PlanError(description: "unknown fault kind '\(excerpt(line.kind))'; use " + FaultKind.allCases.map(\.rawValue).joined(separator: ", "))
        }
        var nth: UInt64?, after: UInt64?, page: Expression?, status = defaultStatus
        for setting in line.settings {
            switch setting.key {
            case "nth":
                guard let n = ProgramNumber.parse(setting.value), n > 0 else { throw PlanError(description: "nth takes a number from 1, e.g. nth=3") }
                nth = n
            case "after":
                guard let n = ProgramNumber.parse(setting.value) else { throw PlanError(description: "after takes a number, e.g. after=2") }
                after = n
            case "page":
                guard kind == .pageIn || kind == .frame, let expression = Expression(parsing: setting.value) else {
                    throw PlanError(description: "page= takes an address such as b0+0x1000, for frame and pagein faults")
                }
                page = expression
            case "status":
                let named = statusNames.first { $0.name == setting.value }?.value
                guard let value = named ?? ProgramNumber.parse(setting.value).map({ UInt32(truncatingIfNeeded: $0) }) else {
                    throw PlanError(description: "unknown status '\(excerpt(setting.value))', e.g. status=STATUS_DEVICE_DATA_ERROR")
                }
                status = value
            default:
                throw PlanError(description: "unknown fault key '\(excerpt(setting.key))'; keys: nth after page status")
            }
        }
        return Rule(kind: kind, nth: nth, after: after, page: page, status: status)
    }

    /// The status the plan fails decision number `ordinal` of `kind` with (the first rule that matches
    /// wins), or nil when the decision proceeds. Arguments as for ``Rule/fails(_:ordinal:address:pageMask:evaluate:)``.
    public func failure(_ kind: FaultKind, ordinal: UInt64, address: UInt64, pageMask: UInt64,
                        evaluate: (Expression) -> UInt64) -> UInt32? {
        rules.first { $0.fails(kind, ordinal: ordinal, address: address, pageMask: pageMask, evaluate: evaluate) }?.status
    }
}

/// What a fault line can fail: one kind of resource decision. The raw values are how fault lines spell
/// them (and the engine's own names for its decision points; the runner converts at the edge).
public enum FaultKind: String, Sendable, CaseIterable {
    /// An ExAllocatePool(NonPagedPool): MDLs, IRPs, quota.
    case nonpagedPool = "pool.nonpaged"
    /// An ExAllocatePool(PagedPool).
    case pagedPool = "pool.paged"
    /// A reservation of system PTEs: MDL mappings, MmMapIoSpace.
    case systemPtes = "ptes"
    /// Taking a physical frame off the free list: demand-zero fault, page-in, MmAllocatePagesForMdl.
    case frame = "frame"
    /// The read of a paged-out page from the pagefile.
    case pageIn = "pagein"
}
