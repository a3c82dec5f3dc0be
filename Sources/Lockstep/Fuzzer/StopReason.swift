/// Why a campaign ended: printed in its summary and written as `stop_reason` in `--json`.
public enum StopReason: Sendable, Codable, Equatable, CustomStringConvertible {
    /// It ran every program of its `--runs` budget.
    case runs
    /// Its `--seconds` budget ran out.
    case seconds
    /// `--stop-at-first-finding`, and a reproducible failure was found.
    case firstFinding
    /// A stop request: a signal (SIGINT, SIGTERM, or one sent to its process from outside) when its
    /// number is known, else `CampaignOptions.shouldStop`.
    case stopped(signal: Int32?)
    /// Its process kept dying and the supervisor stopped restarting it.
    case restartLimit
    /// Its process died with no program in flight (the trap is outside any program).
    case diedOutsideProgram

    /// The name printed in summaries and written as `stop_reason` (`runs`, `first-finding`, `SIGINT`, …).
    public var description: String {
        switch self {
        case .runs: "runs"
        case .seconds: "seconds"
        case .firstFinding: "first-finding"
        case .stopped(let signal): signal.map(StopSignal.name) ?? "stopped"
        case .restartLimit: "restart-limit"
        case .diedOutsideProgram: "died-outside-program"
        }
    }
}
