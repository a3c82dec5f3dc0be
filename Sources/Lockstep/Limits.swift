/// The budgets and caps that bound Lockstep's machinery, in one place, each with why it is what it is.
/// None of them decides a verdict: they bound how much work is spent, never what a run shows.
public enum Limits {
    /// Candidate runs `lockstep minimize` and a default `Shrinker` spend: enough to reach a 1-minimal
    /// program from the longest generated ones (about 40 calls and 2 fault lines) with room to spare.
    public static let shrinkRuns = 2000
    /// Candidate runs a campaign spends on each new signature before saving it: a campaign finds many
    /// signatures and should get back to fuzzing; `lockstep minimize` goes on from the saved entry.
    public static let campaignShrinkRuns = 500
    /// Candidate runs spent shrinking a trap: each is a child process (milliseconds, not microseconds).
    public static let trapShrinkRuns = 300
    /// Candidate runs a driver campaign spends on each finding: a driver run issues requests and checks
    /// more rules per step than an engine run, and its programs are shorter.
    public static let driverShrinkRuns = 400
    /// Programs a campaign worker keeps to mutate: past it, new features still count, but the corpus
    /// stops growing (memory stays bounded in a long campaign; a kept program is a few hundred bytes).
    public static let featureCorpusCap = 4096
    /// Bytes from an MDL argument's address that the checker stops vouching for when a call may write an
    /// MDL header and PFN array there: 64 KiB covers the PFN array of every MDL up to 32 MiB (x64) or
    /// 64 MiB (x86). A longer MDL over memory the program wrote could only cause a false alarm, never a
    /// missed bug.
    public static let mdlWriteExtent: UInt64 = 0x1_0000
    /// Pages of a mapping compared with its MDL's PFN array when checking a returned mapping address:
    /// the first 4096 pages (16 MiB at 4 KiB pages) show any systematic mapping slip.
    public static let mappedPagesCompared: UInt64 = 4096
}
