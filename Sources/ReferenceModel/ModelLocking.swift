import LockstepPrograms

/// MmProbeAndLockPages and MmUnlockPages (spec §2.7, §2.8, §4.2).
extension ReferenceModel {
    func predictProbeAndLock(_ call: Call) -> Prediction {
        let address = number(call, "mdl")
        let userMode = isUserMode(call, "mode")
        // A LOCK_OPERATION number: IoReadAccess is 0, anything else writes (as the engine reads it).
        let writeOperation = arguments(call).lockOperation("operation") != .ioReadAccess
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        let key = mdlKey(address)
        guard var record = mdls[key] else { return lose("MmProbeAndLockPages on an unknown MDL") }
        let forbidden = record.flags & (Flag.locked | Flag.mapped | Flag.nonpaged | Flag.partial | Flag.ioSpace)
        if machine.verifier {
            if irql > 2 { return verifier(0x70, .exactly(irql), parameter(call, "mdl"), .exactly(userMode ? 1 : 0)) }
            if forbidden != 0 { return verifier(0xB0, parameter(call, "mdl"), .exactly(UInt64(record.flags)), .exactly(UInt64(forbidden))) }
        }
        if machine.checked {
            if irql > 2 { return lose("checked-build IRQL ASSERT in MmProbeAndLockPages") }
            // ReactOS' ASSERTs (spec §2.7): ByteCount != 0 and none of the forbidden flags.
            if forbidden != 0 || record.byteCount == 0 { return assertion(parameter(call, "mdl"), .exactly(UInt64(record.flags))) }
        }
        if forbidden != 0 { return lose("re-locking an MDL on a free build") }
        let va = record.va & machine.mask
        let last = (va &+ record.byteCount) & machine.mask
        let pages = machine.span(va, record.byteCount)
        // Special pool: a PFN slot past the MDL's pool block faults as the probe writes it (0xD6).
        func slotBeyondBlock(_ index: UInt64) -> Prediction? {
            let slot = (address &+ machine.headerSize &+ index &* machine.pfnSize) & machine.mask
            guard machine.verifier, machine.headerSize &+ (index &+ 1) &* machine.pfnSize > record.capacity else { return nil }
            return bugCheck(0xD6, .exactly(slot), .exactly(1), .exactly(0), .exactly(0))
        }
        if userMode && (last > machine.probeAddress || va >= last) {
            if let beyond = slotBeyondBlock(0) { return beyond }
            record.pfns = [nil] + record.pfns.dropFirst()
            mdls[key] = record
            return .raises(status: Status.accessViolation)
        }
        if machine.lockLimit != 0 && systemLocks &+ pages > machine.lockLimit { return .raises(status: Status.workingSetQuota) }
        guard pages <= 4096 else { return lose("huge lock range") }
        let user = machine.isUser(va)
        var frames: [Frame] = []
        for index in 0..<pages {
            if let beyond = slotBeyondBlock(index) { return beyond }
            let pageVa = index == 0 ? va : (machine.pageAlign(va) &+ index * machine.pageSize) & machine.mask
            switch place(pageVa) {
            case .unmapped:
                if machine.isUser(pageVa) { return failProbe(key, &record, at: Int(index)) }
                return bugCheck(0x50, .exactly(pageVa), .exactly(0), .exactly(0), .exactly(0))
            case .page(let frame, let protection, let residentNow):
                if protection == "NoAccess" || (protection == "ReadOnly" && writeOperation && machine.isUser(pageVa)) {
                    return failProbe(key, &record, at: Int(index))
                }
                if !residentNow {
                    // The probe touches a user page for write when the lock is for write.
                    let probesWrite = writeOperation && machine.isUser(pageVa)
                    if irql >= 2 { return bugCheck(0x0A, .exactly(pageVa), .exactly(irql), .exactly(probesWrite ? 1 : 0), .exactly(0)) }
                    if let failure = faultIn(frame, at: pageVa, probe: true) {
                        // The probe stops at this page: its slot and the earlier ones hold (PFN_NUMBER)-1.
                        record.process = nil
                        record.processKnown = true
                        record.pfns = Array(repeating: nil, count: Int(index) + 1)
                        mdls[key] = record
                        return failure
                    }
                }
                frames.append(frame)
            }
        }
        for frame in frames { resident.insert(frame) }
        if machine.verifier && machine.policyStops, let index = frames.firstIndex(where: { if case .device = $0 { return true } else { return false } }),
           case .device(let pfn) = frames[index] {
            return verifier(0x6F, parameter(call, "mdl"), .exactly(pfn), .exactly(machine.highestRamPfn))
        }
        record.flags = (writeOperation ? record.flags | Flag.write : record.flags & ~Flag.write) | Flag.locked
        if user {
            record.process = currentProcess
            processes[currentProcess]?.lockedPages += Int64(pages)
        } else {
            record.process = nil
        }
        record.processKnown = true
        for frame in frames {
            if case .device = frame { record.flags |= Flag.ioSpace; continue }
            locks[frame, default: 0] += 1
            systemLocks += 1
        }
        record.pfns = frames
        mdls[key] = record
        return .returns(.none)
    }

    /// A probe that faults on page `index`: slots up to it hold (PFN_NUMBER)-1, Process is NULL, nothing locked.
    private func failProbe(_ key: MdlKey, _ record: inout MdlRecord, at index: Int) -> Prediction {
        record.process = nil
        record.processKnown = true
        record.pfns = Array(repeating: nil, count: index + 1)
        mdls[key] = record
        return .raises(status: Status.accessViolation)
    }

    func predictUnlock(_ call: Call) -> Prediction {
        if let freed = freedSpecialPool(call, "mdl") { return freed }
        let key = mdlKey(number(call, "mdl"))
        guard var record = mdls[key] else { return lose("MmUnlockPages on an unknown MDL") }
        let flags = UInt64(record.flags)
        if machine.verifier {
            if irql > 2 { return verifier(0x78, .exactly(irql), parameter(call, "mdl"), .exactly(0)) }
            if record.flags & Flag.partial != 0 { return verifier(0xB4, parameter(call, "mdl"), .exactly(flags), .exactly(UInt64(Flag.partial))) }
            if record.flags & Flag.nonpaged != 0 { return verifier(0x7D, parameter(call, "mdl"), .exactly(flags), .exactly(0)) }
            if record.flags & Flag.locked == 0 { return verifier(0x7C, parameter(call, "mdl"), .exactly(flags), .exactly(0)) }
        }
        if machine.checked {
            if irql > 2 { return assertion(parameter(call, "mdl"), .exactly(0)) }
            if record.flags & Flag.locked == 0 { return assertion(parameter(call, "mdl"), .exactly(flags)) }
            if record.flags & (Flag.nonpaged | Flag.partial) != 0 { return assertion(parameter(call, "mdl"), .exactly(flags)) }
        }
        if record.flags & Flag.mapped != 0 { releaseMapping(key, record) }
        if let refreshed = mdls[key] { record = refreshed }
        let pages = machine.span(record.va, record.byteCount)
        guard record.processKnown else { return lose("MmUnlockPages with a garbage Process field") }
        if let process = record.process {
            let locked = processes[process]?.lockedPages ?? 0
            if locked < Int64(pages) {
                return bugCheck(0x76, .exactly(1), parameter(call, "mdl"), .exactly(UInt64(max(0, locked))), .exactly(0))
            }
            processes[process]?.lockedPages -= Int64(pages)
        }
        for frame in record.pfns.prefix(Int(min(pages, 4096))) {
            guard let frame else { break }
            if case .device = frame { continue }
            guard let count = locks[frame], count > 0 else {
                return bugCheck(0x4E, .exactly(7), .any, .any, .exactly(0))
            }
            locks[frame] = count == 1 ? nil : count - 1
            systemLocks = systemLocks &- (systemLocks > 0 ? 1 : 0)
        }
        record.flags &= ~(Flag.locked | Flag.ioSpace)
        mdls[key] = record
        return .returns(.none)
    }
}
