import LockstepPrograms

/// Other processes: a driver serving a request from another process, and addresses that are valid only
/// in the process they came from.
extension ProgramBuilder {
    /// A self-contained stretch in a new process: attach to it, describe and lock one of its buffers,
    /// map it to system space, come back to the boot process (the system mapping stays valid there, the
    /// user address does not), then release everything and end the process. Sometimes the MDL is built
    /// over a boot-process address while attached to the new process instead: the wrong process's
    /// address, which MmProbeAndLockPages must refuse with an exception, not lock.
    mutating func processInterlude() {
        let process = bind(.createProcess, [])
        call(.attachProcess, [ref(process)])
        let wrongProcess = random.chance(30) && liveBuffers.contains(0)
        let buffer = wrongProcess ? buffers[0].name : bind(.allocateUserBuffer, [.literal(2 * pageSize), .symbol("ReadWrite")])
        let (offset, length) = offsetAndLength(within: 2 * pageSize)
        let mdl = ioAllocateMdl(ref(buffer, offset), length)
        call(.mmIsAddressValid, [ref(buffer, offset)])
        call(.mmProbeAndLockPages, [ref(mdl), .symbol(random.chance(50) ? "UserMode" : "KernelMode"), .symbol("IoWriteAccess")])
        // Only a probe that locked leaves something to release: after an exception the MDL is not locked.
        if !wrongProcess {
            call(.mmGetSystemAddressForMdlSafe, [ref(mdl), .symbol("NormalPagePriority")])
            call(.attachProcess, [.literal(Self.bootProcess)])
            call(.mmIsAddressValid, [ref(buffer, offset)])
            call(.mmGetMdlVirtualAddress, [ref(mdl)])
            call(.mmUnlockPages, [ref(mdl)])
        } else {
            call(.attachProcess, [.literal(Self.bootProcess)])
        }
        call(.ioFreeMdl, [ref(mdl)])
        call(.terminateProcess, [ref(process)])
    }
}
