namespace Engine.Cli.Stress;

/// <summary>
/// Settings of an <c>engine stress</c> run. <paramref name="Disabled"/> names protocol knobs of <see cref="MachineOptions"/>
/// to switch off; <paramref name="Mix"/> is what the workers do (resolved: never "auto"); <paramref name="Perturb"/> turns
/// on <see cref="PerturbationHook"/>'s noise at every <c>Engine.Sync</c> point. <paramref name="SwapSlots"/> is the
/// swap device's size as given (null: the default, <see cref="EffectiveSwapSlots"/>); <paramref name="WorkingSet"/> the
/// checked data as a factor of memory (null: the general mix's fixed 64 + 64 pages). <paramref name="RuleD"/> runs the
/// machine under seed 001's rule (d) (<see cref="MachineOptions.WriteProtectBeforeSwap"/>, <c>--proposal rule-d</c>).
/// <paramref name="AnonFolioOrder"/> and <paramref name="Mapcount"/> are the machine's large anonymous folios
/// (<see cref="MachineOptions.AnonFolioOrder"/>, 0: off) and how it counts their mappings (docs/folios.md).
/// </summary>
internal sealed record StressOptions(TimeSpan Duration, int Cpus, int Seed, int Frames, PteLayout Layout, string? JsonPath, IReadOnlyList<string> Disabled,
    StressMix Mix = StressMix.General, bool Perturb = false, int? SwapSlots = null, double? WorkingSet = null, bool RuleD = false,
    int AnonFolioOrder = 0, MapcountScheme Mapcount = MapcountScheme.PerPage)
{
    /// <summary>The largest <c>--working-set</c> factor: 16 times memory (each slot written costs a 4 KiB page of the host's memory).</summary>
    public const double MaxWorkingSet = 16;

    /// <summary>The protocol knobs <c>--disable</c> accepts (each a <see cref="MachineOptions"/> property, default on).</summary>
    public static readonly IReadOnlyList<string> Knobs =
        [nameof(MachineOptions.FlushBeforeFree), nameof(MachineOptions.LocklessPteRetry), nameof(MachineOptions.NestedTlbFlush), nameof(MachineOptions.FlushDirtyUnderPtl), nameof(MachineOptions.DelayRmap),
         nameof(MachineOptions.UnshareOnReadOnlyPin), nameof(MachineOptions.GupFastForkSeq), nameof(MachineOptions.FreezeBeforeDirtyTest), nameof(MachineOptions.FlushTlbBatchedPending)];

    /// <summary>
    /// The fewest frames a run with <paramref name="cpus"/> workers may have: 128 for what the workers share (the shared
    /// anonymous region and the file's page cache, <see cref="StressWorker.DefaultPages"/> and
    /// <see cref="StressWorker.FilePages"/> pages) and 128 per worker for what one of its operations can hold at once (a
    /// fork's copies of the shared pages, a fresh region of up to 16 pages, a private file mapping, scratch pages, their
    /// page tables). Fewer, and a worker runs out of frames: a failure of the settings, not of the machine. (One CPU
    /// passes with 192; 128 runs out within a second.)
    /// </summary>
    /// <remarks>
    /// With large folios each worker also holds its folio region (<see cref="FolioRegionPages"/>, up to three folios),
    /// so <paramref name="folioOrder"/> adds three folios per CPU.
    /// </remarks>
    public static int MinimumFrames(int cpus, int folioOrder = 0) => 128 + (128 * cpus) + (cpus * FolioRegionPages(folioOrder));

    /// <summary>
    /// The most pages a worker's <see cref="StressOperation.FolioRegion"/> maps at once with folios of
    /// <paramref name="folioOrder"/>: two folios and all but one page of a third (0 with folios off); see
    /// <see cref="StressWorker"/>.
    /// </summary>
    public static int FolioRegionPages(int folioOrder) => folioOrder == 0 ? 0 : (3 << folioOrder) - 1;

    /// <summary>Pages in a large folio: 2^<see cref="AnonFolioOrder"/>; 1 with folios off.</summary>
    public int FolioPages => 1 << AnonFolioOrder;

    /// <summary>The fewest frames this run may have: <see cref="MinimumFrames(int, int)"/> for its CPUs and folio order.</summary>
    public int MinimumFramesForRun => MinimumFrames(Cpus, AnonFolioOrder);

    /// <summary>
    /// The pages of checked data a working set asks for: <see cref="WorkingSet"/> × <see cref="Frames"/>, rounded up;
    /// null without one.
    /// </summary>
    public long? WorkingSetPages => WorkingSet is { } factor ? (long)Math.Ceiling(factor * Frames) : null;

    /// <summary>
    /// Pages of the shared anonymous region, in each of which every worker has a word: the working set less the file's
    /// pages (the file's page cache is not reclaimed to swap, so it stays at 64 pages), and never fewer than
    /// <see cref="StressWorker.DefaultPages"/>.
    /// </summary>
    public int RegionPages => WorkingSetPages is { } pages ? (int)Math.Max(StressWorker.DefaultPages, pages - StressWorker.FilePages) : StressWorker.DefaultPages;

    /// <summary>
    /// The fewest swap slots the working set can run with: the part of it, plus the run's allowance of
    /// <see cref="MinimumFramesForRun"/> (what the operations, page tables and file cache hold besides), that memory cannot
    /// hold. Memory plus swap must hold everything, as in the kernel; fewer slots and reclaim finds nothing it can
    /// swap out, and an allocation fails. 0 without a working set.
    /// </summary>
    public long MinimumSwapSlots => WorkingSetPages is { } pages ? Math.Max(0, pages + MinimumFramesForRun - Frames) : 0;

    /// <summary>
    /// The swap device's size without <c>--swap-slots</c>: the machine's default (as many as frames); with a working
    /// set, twice the working set plus the run's allowance (<see cref="MinimumFramesForRun"/>), if that is more. The minimum
    /// holds the working set once; but a fork's child keeps the pages as they were at the fork, and each store the
    /// parent makes while the child lives (a swapped-out page read back and copied, or a present page copied and the
    /// old one swapped out with the child's entry) adds a page that needs a slot: 60 s runs of 4 CPUs on 1,024 frames
    /// at twice memory peaked at 3,216 slots in use, 1.6 times the 1,984-page region.
    /// </summary>
    public int DefaultSwapSlots => WorkingSetPages is { } pages ? (int)Math.Min(MachineOptions.MaxSwapSlots, Math.Max(Frames, (2 * pages) + MinimumFramesForRun)) : Frames;

    /// <summary>The swap device's size: <see cref="SwapSlots"/> when given, else <see cref="DefaultSwapSlots"/>.</summary>
    public int EffectiveSwapSlots => SwapSlots ?? DefaultSwapSlots;

    /// <summary>The machine these settings describe.</summary>
    public MachineOptions ToMachineOptions() => new()
    {
        Cpus = Cpus,
        Frames = Frames,
        PteLayout = Layout,
        SwapSlots = SwapSlots ?? (WorkingSet is null ? null : EffectiveSwapSlots),
        FlushBeforeFree = !Disabled.Contains(nameof(MachineOptions.FlushBeforeFree)),
        LocklessPteRetry = !Disabled.Contains(nameof(MachineOptions.LocklessPteRetry)),
        NestedTlbFlush = !Disabled.Contains(nameof(MachineOptions.NestedTlbFlush)),
        FlushDirtyUnderPtl = !Disabled.Contains(nameof(MachineOptions.FlushDirtyUnderPtl)),
        DelayRmap = !Disabled.Contains(nameof(MachineOptions.DelayRmap)),
        UnshareOnReadOnlyPin = !Disabled.Contains(nameof(MachineOptions.UnshareOnReadOnlyPin)),
        GupFastForkSeq = !Disabled.Contains(nameof(MachineOptions.GupFastForkSeq)),
        FreezeBeforeDirtyTest = !Disabled.Contains(nameof(MachineOptions.FreezeBeforeDirtyTest)),
        FlushTlbBatchedPending = !Disabled.Contains(nameof(MachineOptions.FlushTlbBatchedPending)),
        WriteProtectBeforeSwap = RuleD,
        AnonFolioOrder = AnonFolioOrder,
        Mapcount = Mapcount,
    };
}
