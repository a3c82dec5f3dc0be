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
        append(nil, .createProcess, [], result: "r")
        let process = lastName
        append(nil, .attachProcess, [ref(process)], result: "x")
        let wrongProcess = random.chance(30) && liveBuffers.contains(0)
        let buffer: String
        if wrongProcess {
            buffer = buffers[0].name
        } else {
            append(nil, .allocateUserBuffer, [.expression(.literal(2 * pageSize)), .symbol("ReadWrite")], result: "b")
            buffer = lastName
        }
        let (offset, length) = offsetAndLength(within: 2 * pageSize)
        append(nil, .ioAllocateMdl, [ref(buffer, offset), .expression(.literal(length)), .boolean(false), .boolean(false), .expression(.null)], result: "m")
        let mdl = lastName
        append(nil, .mmIsAddressValid, [ref(buffer, offset)], result: "x")
        append(nil, .mmProbeAndLockPages, [ref(mdl), .symbol(random.chance(50) ? "UserMode" : "KernelMode"), .symbol("IoWriteAccess")])
        // Only a probe that locked leaves something to release: after an exception the MDL is not locked.
        if !wrongProcess {
            append(nil, .mmGetSystemAddressForMdlSafe, [ref(mdl), .symbol("NormalPagePriority")], result: "v")
            append(nil, .attachProcess, [.expression(.literal(8))], result: "x")
            append(nil, .mmIsAddressValid, [ref(buffer, offset)], result: "x")
            append(nil, .mmGetMdlVirtualAddress, [ref(mdl)], result: "v")
            append(nil, .mmUnlockPages, [ref(mdl)])
        } else {
            append(nil, .attachProcess, [.expression(.literal(8))], result: "x")
        }
        append(nil, .ioFreeMdl, [ref(mdl)])
        append(nil, .terminateProcess, [ref(process)], result: "x")
    }
}
