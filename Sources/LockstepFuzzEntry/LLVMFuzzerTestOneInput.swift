import Foundation
import Lockstep
import LockstepPrograms
@_spi(Mutations) import MemoryManager

/// libFuzzer's entry point: the input bytes are the generator's decisions (`ByteInput`), the program
/// runs in lockstep, and a failing verdict prints the program and the verdict, then traps, so that
/// libFuzzer saves the input as a crash file (`lockstep show --from-bytes crash-…` prints the program).
///
/// `LOCKSTEP_SEEDED_BUG=<name>` switches on one of the engine's deliberate test-only slips (the mutation
/// benchmark and the harness's own tests use it).
@_cdecl("LLVMFuzzerTestOneInput")
public func lockstepFuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    let (program, report) = ByteInput.run(bytes, prepareKernel: SeededBug.prepare)
    guard report.verdict.isPass else {
        FileHandle.standardError.write(Data("lockstep: \(report.verdict.signature)\n\(report.verdict)\n\(ProgramText.encode(program))".utf8))
        fatalError("lockstep: failing verdict \(report.verdict.signature)")
    }
    return 0
}

/// The slip named by `LOCKSTEP_SEEDED_BUG`, read once.
enum SeededBug {
    static let prepare: (@Sendable (Kernel) -> Void)? = {
        guard let name = ProcessInfo.processInfo.environment["LOCKSTEP_SEEDED_BUG"],
              let mutation = EngineMutation.byName.first(where: { $0.name == name })?.mutation else { return nil }
        return { $0.mutations = mutation }
    }()
}
