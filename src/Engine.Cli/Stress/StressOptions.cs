namespace Engine.Cli.Stress;

/// <summary>Settings of an <c>engine stress</c> run. <paramref name="Disabled"/> names protocol knobs of <see cref="MachineOptions"/> to switch off.</summary>
internal sealed record StressOptions(TimeSpan Duration, int Cpus, int Seed, int Frames, PteLayout Layout, string? JsonPath, IReadOnlyList<string> Disabled)
{
    /// <summary>The protocol knobs <c>--disable</c> accepts (each a <see cref="MachineOptions"/> property, default on).</summary>
    public static readonly IReadOnlyList<string> Knobs =
        [nameof(MachineOptions.FlushBeforeFree), nameof(MachineOptions.LocklessPteRetry), nameof(MachineOptions.NestedTlbFlush), nameof(MachineOptions.FlushDirtyUnderPtl), nameof(MachineOptions.DelayRmap),
         nameof(MachineOptions.UnshareOnReadOnlyPin), nameof(MachineOptions.GupFastForkSeq)];

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
