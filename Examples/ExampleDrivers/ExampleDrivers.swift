import DriverHarness

/// The example drivers, registered by name for `lockstep fuzz --driver NAME`.
public enum ExampleDrivers {
    /// Every example: the correct `copy` driver first, then one per classic bug.
    public static let registry = DriverRegistry([
        .init(name: "copy", summary: "correct: buffered, direct and neither I/O, transfers in the DPC, cancel, unload") { CopyDriver() },
        .init(name: "leak-mdl-on-partner-failure", summary: "leaks the MDL when the allocation made with it fails") { LeakMdlOnPartnerFailureDriver() },
        .init(name: "forget-unlock-on-error-path", summary: "no MmUnlockPages when the system mapping fails") { ForgetUnlockOnErrorPathDriver() },
        .init(name: "unhandled-probe-raise", summary: "MmProbeAndLockPages without an exception handler") { UnhandledProbeRaiseDriver() },
        .init(name: "unchecked-null-mapping", summary: "MmGetSystemAddressForMdlSafe at DISPATCH_LEVEL without a NULL check") { UncheckedNullMappingDriver() },
        .init(name: "free-mdl-before-unmap", summary: "IoFreeMdl before MmUnmapLockedPages") { FreeMdlBeforeUnmapDriver() },
        .init(name: "double-unlock-direct", summary: "unlocks the I/O manager's MDL, which unlocks it again") { DoubleUnlockDirectDriver() },
        .init(name: "user-buffer-in-dpc", summary: "touches a METHOD_NEITHER user buffer in its DPC") { UserBufferInDpcDriver() },
    ])

    /// The rule each buggy example breaks (the correct driver breaks none).
    public static let expectedRules: [String: DriverRule] = [
        "leak-mdl-on-partner-failure": .leakedMdl,
        "forget-unlock-on-error-path": .leakedLockedPages,
        "unhandled-probe-raise": .unhandledException,
        "unchecked-null-mapping": .uncheckedNullMapping,
        "free-mdl-before-unmap": .freeMappedMdl,
        "double-unlock-direct": .unlockNotLocked,
        "user-buffer-in-dpc": .pageFaultAtRaisedIrql,
    ]
}
