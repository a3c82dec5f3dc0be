import Foundation
import Synchronization

/// SIGINT, SIGTERM and SIGHUP stop a campaign cleanly instead of killing it: the handler only records
/// the signal (an atomic store is all a signal handler may safely do); workers check it between
/// programs, stop generating, and the campaign writes its findings and summary before it exits with
/// 128 + the signal, as shells expect.
package enum StopSignal {
    private static let received = Atomic<Int32>(0)

    /// Signals that end a campaign early; none of them is a trap (the engine cannot raise them).
    package static let handled: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Installs the handlers (idempotent).
    package static func install() {
        _ = received.load(ordering: .relaxed)   // initialized here, never first inside the handler
        for signal in handled {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { StopSignal.received.store($0, ordering: .relaxed) }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(signal, &action, nil)
        }
    }

    /// The first stop signal received, or nil.
    package static var pending: Int32? {
        let signal = received.load(ordering: .relaxed)
        return signal == 0 ? nil : signal
    }

    /// Tests stand in for a signal.
    package static func simulate(_ signal: Int32) { received.store(signal, ordering: .relaxed) }
    package static func reset() { received.store(0, ordering: .relaxed) }

    /// How a process that died by `signal` died: a crash the engine or the model can cause (a Swift
    /// runtime trap is SIGILL on x86-64 Linux and SIGTRAP on arm64; SIGABRT, SIGSEGV, SIGBUS, SIGFPE are
    /// the runtime's other deaths), or a signal that only comes from outside (SIGKILL, SIGINT, …).
    package static func isCrash(_ signal: Int32) -> Bool {
        [SIGILL, SIGTRAP, SIGABRT, SIGSEGV, SIGBUS, SIGFPE].contains(signal)
    }

    /// `SIGKILL` for 9, the number otherwise.
    package static func name(_ signal: Int32) -> String {
        let names: [Int32: String] = [SIGHUP: "SIGHUP", SIGINT: "SIGINT", SIGQUIT: "SIGQUIT", SIGILL: "SIGILL", SIGTRAP: "SIGTRAP",
                                      SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGFPE: "SIGFPE", SIGKILL: "SIGKILL", SIGSEGV: "SIGSEGV",
                                      SIGPIPE: "SIGPIPE", SIGTERM: "SIGTERM", SIGUSR1: "SIGUSR1", SIGUSR2: "SIGUSR2"]
        return names[signal] ?? "signal \(signal)"
    }

    /// In a supervised campaign's child: die with the supervisor. Linux's parent-death signal does it
    /// at once; a thread watching the parent id covers other systems and a parent that died before the
    /// signal was armed.
    package static func dieWithParent(_ parent: Int32) {
        #if os(Linux)
        // prctl is variadic in C, so Swift does not import it: call it through its address.
        typealias Prctl = @convention(c) (Int32, UInt, UInt, UInt, UInt) -> Int32
        let setParentDeathSignal: Int32 = 1   // PR_SET_PDEATHSIG
        if let address = dlsym(nil, "prctl") {
            _ = unsafeBitCast(address, to: Prctl.self)(setParentDeathSignal, UInt(SIGKILL), 0, 0, 0)
        }
        #endif
        if getppid() != parent { _exit(128 + SIGKILL) }
        Thread.detachNewThread {
            while getppid() == parent { usleep(200_000) }
            _exit(128 + SIGKILL)
        }
    }
}
