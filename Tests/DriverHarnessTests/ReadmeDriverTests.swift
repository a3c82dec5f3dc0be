import DriverHarness
import MemoryManager
import Testing

/// The driver README.md shows ("Driver-under-test mode", step 1), verbatim: it compiles against the
/// API and passes a campaign.
final class MyDriver: Driver {
    func driverEntry(_ s: DriverServices) throws(KernelError) -> NTStatus { .success }
    func dispatchRead(_ r: Request, _ s: DriverServices) throws(KernelError) -> RequestResult {
        guard r.method == .direct, r.length > 0 else { return .failure(.invalidDeviceRequest) }
        return .pending                                   // the device will interrupt: see completionDpc
    }
    func dispatchWrite(_ r: Request, _ s: DriverServices) throws(KernelError) -> RequestResult { .failure(.invalidDeviceRequest) }
    func completionDpc(_ r: Request, _ s: DriverServices) throws(KernelError) -> RequestResult {   // DISPATCH_LEVEL
        guard let va = try s.kernel.mm.getSystemAddressForMdlSafe(r.mdl, priority: .normalPagePriority) else {
            return .failure(.insufficientResources)       // the Safe variant can fail: check it
        }
        return .success(try s.device.read(at: r.position, count: r.length, into: va))
    }
    func cancel(_ r: Request, _ s: DriverServices) throws(KernelError) -> RequestResult { .failure(.cancelled) }
    func unload(_ s: DriverServices) throws(KernelError) {}
}

@Suite struct ReadmeDriverTests {
    @Test func readmeDriverPassesACampaign() {
        var options = DriverCampaignOptions()
        options.runs = 60
        let entry = DriverRegistry.Entry(name: "mydriver", summary: "the README's example") { MyDriver() }
        let (stats, findings) = DriverCampaign(driver: entry, options: options).run()
        #expect(findings.isEmpty, "\(findings.map(\.finding.description))")
        #expect(stats.requests > 100)
    }
}
