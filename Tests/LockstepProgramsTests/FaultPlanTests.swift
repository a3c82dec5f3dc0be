import LockstepPrograms
import Testing

/// The shared fault plan: how fault lines read, and which decisions they fail.
@Suite struct SharedFaultPlanTests {
    private func plan(_ lines: String...) throws -> FaultPlan {
        let program = try ProgramText.parse("# lockstep 1\nmachine x86\n" + lines.joined(separator: "\n") + "\n")
        return try FaultPlan(program.faults)
    }

    private func error(_ line: String) throws -> String? {
        let program = try ProgramText.parse("# lockstep 1\nmachine x86\n\(line)\n")
        do { _ = try FaultPlan(program.faults); return nil } catch { return error.description }
    }

    @Test func linesBecomeRules() throws {
        let rules = try plan("fault pool.nonpaged nth=3", "fault ptes after=0x1", "fault pagein page=b0+0x1000 status=STATUS_IN_PAGE_ERROR",
                             "fault frame", "fault pool.paged status=0X10").rules
        #expect(rules == [
            FaultPlan.Rule(kind: .nonpagedPool, nth: 3),
            FaultPlan.Rule(kind: .systemPtes, after: 1),
            FaultPlan.Rule(kind: .pageIn, page: .reference("b0", offset: 0x1000), status: 0xC000_0006),
            FaultPlan.Rule(kind: .frame),
            FaultPlan.Rule(kind: .pagedPool, status: 0x10),
        ])
        #expect(rules[3].status == FaultPlan.defaultStatus)
    }

    @Test func nthFailsOneDecisionAndAfterEveryLaterOne() throws {
        let plan = try plan("fault pool.nonpaged nth=2", "fault ptes after=1")
        func fails(_ kind: FaultKind, _ ordinal: UInt64) -> Bool {
            plan.failure(kind, ordinal: ordinal, address: 0, pageMask: ~0xFFF) { _ in 0 } != nil
        }
        #expect((1...4).map { fails(.nonpagedPool, $0) } == [false, true, false, false])
        #expect((1...4).map { fails(.systemPtes, $0) } == [false, true, true, true])
        #expect(!fails(.pagedPool, 2) && !fails(.frame, 2))
    }

    @Test func pageLimitsARuleToOnePageUnderTheBindingsGiven() throws {
        let plan = try plan("fault pagein page=b0+0x1000 status=STATUS_DEVICE_DATA_ERROR")
        let bindings: [String: UInt64] = ["b0": 0x1_0000]
        func failure(at address: UInt64) -> UInt32? {
            plan.failure(.pageIn, ordinal: 1, address: address, pageMask: ~0xFFF & 0xFFFF_FFFF) { $0.value(in: bindings, mask: 0xFFFF_FFFF) }
        }
        #expect(failure(at: 0x1_1000) == 0xC000_009C)
        #expect(failure(at: 0x1_1FFF) == 0xC000_009C)      // anywhere on that page
        #expect(failure(at: 0x1_0FFF) == nil)
        #expect(failure(at: 0x1_2000) == nil)
    }

    @Test func theFirstMatchingRuleSaysTheStatus() throws {
        let plan = try plan("fault pagein nth=2 status=STATUS_IN_PAGE_ERROR", "fault pagein status=0xC0000017")
        #expect(plan.failure(.pageIn, ordinal: 1, address: 0, pageMask: ~0xFFF) { _ in 0 } == 0xC000_0017)
        #expect(plan.failure(.pageIn, ordinal: 2, address: 0, pageMask: ~0xFFF) { _ in 0 } == 0xC000_0006)
    }

    @Test func badLinesSayWhatIsWrong() throws {
        #expect(try error("fault disk nth=1") == "unknown fault kind 'disk'; use pool.nonpaged, pool.paged, ptes, frame, pagein")
        #expect(try error("fault ptes nth=0") == "nth takes a number from 1, e.g. nth=3")
        #expect(try error("fault ptes nth=+1") == "nth takes a number from 1, e.g. nth=3")
        #expect(try error("fault ptes nth=abc") == "nth takes a number from 1, e.g. nth=3")
        #expect(try error("fault ptes after=-1") == "after takes a number, e.g. after=2")
        #expect(try error("fault pool.paged page=b0") == "page= takes an address such as b0+0x1000, for frame and pagein faults")
        #expect(try error("fault pagein page=b0+") == "page= takes an address such as b0+0x1000, for frame and pagein faults")
        #expect(try error("fault pagein status=STATUS_NOPE") == "unknown status 'STATUS_NOPE', e.g. status=STATUS_DEVICE_DATA_ERROR")
        #expect(try error("fault ptes colour=red") == "unknown fault key 'colour'; keys: nth after page status")
        #expect(try error("fault ptes nth=1") == nil)
    }
}
