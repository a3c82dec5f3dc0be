import MemoryManager

/// Where a driver run is and the first finding it made. Shared by the runner, the I/O manager and the
/// device, so a finding made deep in a transfer names the step and phase it happened in.
final class RunMonitor {
    /// The driver's registered name, for findings.
    let driver: String

    init(driver: String) { self.driver = driver }

    /// The first finding; the run stops at it.
    private(set) var finding: DriverFinding?
    /// The program step being executed (0: loading, calls + 1: the end of the program).
    var step = 0
    var phase: DriverPhase = .program
    /// The request being processed, if any.
    var request: String?

    /// Records a finding at the current place (the first one wins).
    func record(_ rule: DriverRule, _ check: BugCheck?, _ detail: String) {
        guard finding == nil else { return }
        finding = DriverFinding(driver: driver, rule: rule, bugCheck: check, step: step, phase: phase, request: request, detail: detail)
    }

    /// Records a finding Windows would bug-check for and returns the error that unwinds the driver.
    func report(_ rule: DriverRule, _ check: BugCheck, _ detail: String) -> KernelError {
        record(rule, check, detail)
        return .bugCheck(check)
    }
}
