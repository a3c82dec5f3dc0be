import Foundation
@testable import Lockstep
import LockstepPrograms
import Testing

/// Issue 13 part 2: every parameter is exercised at the edges of its domain, and campaigns say which
/// edges they did not reach.
@Suite struct ParameterEdgeTests {
    /// The edges come from the argument kinds: every kind the vocabulary has, in any signature, has edges,
    /// and every enumeration has its maximum and its first invalid value.
    @Test func everyArgumentKindHasEdges() {
        var kinds = Set<ArgumentKind>()
        for routine in Routine.allCases {
            let parameters = routine.signature.parameters
            for index in parameters.indices {
                kinds.insert(parameters[index].kind)
                let names = ParameterEdges.names(parameters, index)
                #expect(!names.isEmpty, "\(routine).\(parameters[index].label) has no edges")
                #expect(Set(names).count == names.count, "\(routine).\(parameters[index].label) repeats an edge")
                if parameters[index].kind.symbols != nil { #expect(names.contains("max") && names.contains("first-invalid")) }
            }
        }
        #expect(kinds == Set(ArgumentKind.allCases), "kinds no signature uses: \(Set(ArgumentKind.allCases).subtracting(kinds))")
        for kind in ArgumentKind.allCases where kind.symbols != nil {
            #expect(ParameterEdges.firstInvalid(kind) == ParameterEdges.enumValues(kind).last! &+ 1)
        }
    }

    /// The universe: every routine the engine fuzzer generates, every parameter, sorted and unique.
    @Test func theEdgeUniverseCoversEveryParameterOfEveryEngineRoutine() {
        let all = ParameterEdges.all
        #expect(all == all.sorted() && Set(all).count == all.count)
        for routine in Routine.allCases {
            for parameter in routine.signature.parameters {
                let prefix = "\(routine.rawValue).\(parameter.label)="
                #expect(all.contains { $0.hasPrefix(prefix) } == !routine.isDriverRequest, "\(prefix)")
            }
        }
    }

    /// Hand-written calls land on the edges their arguments sit at.
    @Test func theClassifierNamesTheEdgesOfACall() throws {
        let program = try ProgramText.parse("""
            # lockstep 1
            machine x86
            b0 = AllocateUserBuffer(size=0x2000, protect=ReadWrite)
            m1 = IoAllocateMdl(va=0x7FFEFFFF, length=0x2, secondary=true, quota=false, irp=none)
            m2 = IoAllocateMdl(va=b0+0xFFF, length=0x17000, secondary=false, quota=true, irp=none)
            MmProbeAndLockPages(m2, UserMode, 0x3)
            v3 = MmMapIoSpace(pa=0xFFF000, length=0x2000, 0x6)
            m4 = MmAllocatePagesForMdl(low=0x800000, high=0x800FFF, skip=0x0, total=0x1000)
            KeRaiseIrql(HIGH_LEVEL)
            """)
        var classifier = EdgeClassifier(machine: program.machine)
        let reached = Set(program.calls.flatMap { classifier.edges(of: $0) }.map { ParameterEdges.all[$0] })
        for edge in ["IoAllocateMdl.va=straddles-probe-limit", "IoAllocateMdl.va=highest-user-page", "IoAllocateMdl.secondary=true",
                     "IoAllocateMdl.irp=null", "IoAllocateMdl.va=user-buffer", "IoAllocateMdl.va=offset-last", "IoAllocateMdl.length=fixed-size-limit",
                     "IoAllocateMdl.quota=true", "MmProbeAndLockPages.mode=max", "MmProbeAndLockPages.mode=user-over-user-buffer",
                     "MmProbeAndLockPages.operation=first-invalid", "MmMapIoSpace.pa=last-ram-page", "MmMapIoSpace.pa=range-clips-ram-end",
                     "MmMapIoSpace.cache=first-invalid", "MmAllocatePagesForMdl.high=range-one-page", "MmAllocatePagesForMdl.low=in-ram",
                     "MmAllocatePagesForMdl.high=range-low-above-zero", "MmAllocatePagesForMdl.high=range-below-ram-end", "KeRaiseIrql.irql=max"] {
            #expect(reached.contains(edge), "\(edge) not reached; reached: \(reached.sorted())")
        }
    }

    /// Generated programs that sit at edges still encode and parse back to themselves, and the generator
    /// alone (no mutation) reaches most edges.
    @Test(arguments: ["x86", "x64", "alpha"])
    func edgeProgramsRoundTripThroughProgramText(_ architecture: String) throws {
        let machine = MachineLine(architecture: architecture)
        let generator = ProgramGenerator(GenerationOptions(machine: machine))
        var reached = Set<Int>()
        var withRawEdges = 0
        for seed: UInt64 in 0..<400 {
            let program = generator.generate(seed: seed)
            var classifier = EdgeClassifier(machine: machine)
            let edges = program.calls.flatMap { classifier.edges(of: $0) }
            reached.formUnion(edges)
            if edges.contains(where: { ParameterEdges.all[$0].hasSuffix("probe-limit") || ParameterEdges.all[$0].hasSuffix("first-invalid") }) {
                withRawEdges += 1
                #expect(try ProgramText.parse(ProgramText.encode(program)) == program)
            }
        }
        #expect(withRawEdges > 20, "only \(withRawEdges) programs reached a probe-limit or first-invalid edge")
        #expect(reached.count * 100 >= ParameterEdges.all.count * 55, "the generator reached \(reached.count) of \(ParameterEdges.all.count) edges")
    }

    /// A bounded campaign reaches at least 70 % of the edges, records them as features and says which it
    /// did not reach; the counts survive a session result's JSON and merging.
    @Test func aBoundedCampaignReachesMostEdgesAndListsTheRest() throws {
        var options = CampaignOptions()
        options.runs = 3000
        options.seed = 7
        options.shrinkRuns = 0
        let result = Campaign(options).run { _, _ in }
        #expect(result.findings.isEmpty, "\(result.findings.map(\.signature))")
        let reached = try #require(result.stats.reachedEdges)
        let total = ParameterEdges.all.count
        #expect(reached.count * 100 >= total * 70, "\(reached.count) of \(total) edges reached")
        #expect(reached == reached.sorted() && Set(reached).isSubset(of: ParameterEdges.all))
        let unreached = result.stats.unreachedEdges
        #expect(unreached.count + reached.count == total)
        let lines = result.stats.edgeSummary(limit: 10)
        #expect(lines[0].hasPrefix("edges: \(reached.count) of \(total) reached"))
        #expect(lines.count == 1 + min(10, unreached.count))
        if let first = unreached.first { #expect(lines[1] == "  \(first)") }
        // Through a session result file and a merge: the union of both sessions' edges.
        let path = NSTemporaryDirectory() + "edges-\(getpid()).json"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try SessionResult(stats: result.stats, findings: []).write(to: path)
        var merged = try #require(SessionResult.read(path))
        #expect(merged.stats.reachedEdges == reached)
        var other = CampaignStats()
        other.reachedEdges = Array(unreached.prefix(1))
        merged.add(SessionResult(stats: other, findings: []))
        #expect(merged.stats.reachedEdges?.count == reached.count + min(1, unreached.count))
    }

    /// Edge values are a fraction of the choices: the default generator's calls stay meaningful (the
    /// 90 % test in FuzzerTests), and the edge sequences are a minority of the calls.
    @Test func edgeSequencesAreAMinorityOfCalls() {
        let generator = ProgramGenerator()
        var calls = 0, rawEdgeCalls = 0
        for seed: UInt64 in 0..<300 {
            let program = generator.generate(seed: seed)
            var classifier = EdgeClassifier(machine: program.machine)
            for call in program.calls {
                calls += 1
                let extreme = ["probe-limit", "kernel-half", "first-invalid", "=2g", "4g-minus-1"]
                if classifier.edges(of: call).contains(where: { edge in extreme.contains { ParameterEdges.all[edge].hasSuffix($0) } }) {
                    rawEdgeCalls += 1
                }
            }
        }
        #expect(rawEdgeCalls > 0 && rawEdgeCalls * 100 < calls * 25, "\(rawEdgeCalls) of \(calls) calls at an extreme edge")
    }
}
