namespace Engine.Cli.Stress;

/// <summary>
/// Settings of an <c>engine stress</c> run. <paramref name="Disabled"/> names protocol knobs of <see cref="MachineOptions"/>
/// to switch off; <paramref name="Mix"/> is what the workers do (resolved: never "auto"); <paramref name="Perturb"/> turns
/// on <see cref="PerturbationHook"/>'s noise at every <c>Engine.Sync</c> point.
/// </summary>
internal sealed record StressOptions(TimeSpan Duration, int Cpus, int Seed, int Frames, PteLayout Layout, string? JsonPath, IReadOnlyList<string> Disabled,
    StressMix Mix = StressMix.General, bool Perturb = false)
{
    /// <summary>The protocol knobs <c>--disable</c> accepts (each a <see cref="MachineOptions"/> property, default on).</summary>
    public static readonly IReadOnlyList<string> Knobs =
        [nameof(MachineOptions.FlushBeforeFree), nameof(MachineOptions.LocklessPteRetry), nameof(MachineOptions.NestedTlbFlush), nameof(MachineOptions.FlushDirtyUnderPtl), nameof(MachineOptions.DelayRmap),
         nameof(MachineOptions.UnshareOnReadOnlyPin), nameof(MachineOptions.GupFastForkSeq)];

    /// <summary>
    /// The fewest frames a run with <paramref name="cpus"/> workers may have: 128 for what the workers share (the shared
    /// anonymous region and the file's page cache, <see cref="StressWorker.PagesPerWorker"/> pages each) and 128 per
    /// worker for what one of its operations can hold at once (a fork's copies of the shared pages, a fresh region of up
    /// to 16 pages, a private file mapping, scratch pages, their page tables). Fewer, and a worker runs out of frames:
    /// a failure of the settings, not of the machine. (One CPU passes with 192; 128 runs out within a second.)
    /// </summary>
    public static int MinimumFrames(int cpus) => 128 + (128 * cpus);

    /// <summary>The machine these settings describe.</summary>
    public MachineOptions ToMachineOptions() => new()
    {
        Cpus = Cpus,
        Frames = Frames,
        PteLayout = Layout,
        FlushBeforeFree = !Disabled.Contains(nameof(MachineOptions.FlushBeforeFree)),
        LocklessPteRetry = !Disabled.Contains(nameof(MachineOptions.LocklessPteRetry)),
        NestedTlbFlush = !Disabled.Contains(nameof(MachineOptions.NestedTlbFlush)),
        FlushDirtyUnderPtl = !Disabled.Contains(nameof(MachineOptions.FlushDirtyUnderPtl)),
        DelayRmap = !Disabled.Contains(nameof(MachineOptions.DelayRmap)),
        UnshareOnReadOnlyPin = !Disabled.Contains(nameof(MachineOptions.UnshareOnReadOnlyPin)),
        GupFastForkSeq = !Disabled.Contains(nameof(MachineOptions.GupFastForkSeq)),
    };
}
