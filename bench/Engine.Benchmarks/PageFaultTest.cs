namespace Engine.Benchmarks;

/// <summary>
/// One of will-it-scale's page-fault tests, as the <c>pagefault</c> mode runs it on the kernel
/// (<c>bench/native/page_faultN</c>) and on the engine (<see cref="EnginePageFault"/>). Every test has the same
/// loop: map a 128 MiB region, store one word in each 4 KiB page, unmap; they differ in what is mapped, and so in
/// which fault each store takes.
/// <list type="bullet">
/// <item><see cref="PageFault1"/>: private anonymous memory; each store is <c>do_anonymous_page</c> (allocate, zero,
/// map); munmap frees every page.</item>
/// <item><see cref="PageFault2"/>: a private mapping of the worker's own 128 MiB file; each store is
/// <c>do_cow_fault</c> (find the page-cache page, allocate, copy, map the copy); munmap frees the copies, the file's
/// pages stay cached and clean.</item>
/// <item><see cref="PageFault3"/>: a shared mapping of the worker's own 128 MiB file; each store is
/// <c>do_shared_fault</c> (find the page-cache page, lock it, dirty it, map it writable); munmap frees nothing, the
/// pages stay cached and dirty. Nothing writes them back during the run, as in will-it-scale.</item>
/// </list>
/// In the file tests the first pass over the file fills the page cache (from the zeros of a new file); it falls in
/// the warm-up, after which every fault finds its page cached.
/// </summary>
public sealed class PageFaultTest
{
    /// <summary>Frames of a machine beyond the regions and files: page tables (66 per populated region) and the per-CPU frame caches.</summary>
    private const int SlackFrames = 14_464;

    private readonly Func<MachineStats, long> _faults;

    private PageFaultTest(string name, string option, string description, MapFlags flags, bool mapsFile, int framesPerPage, string faultKind, Func<MachineStats, long> faults)
    {
        Name = name;
        Option = option;
        Description = description;
        Flags = flags;
        MapsFile = mapsFile;
        FramesPerPage = framesPerPage;
        FaultKind = faultKind;
        _faults = faults;
    }

    /// <summary>page_fault1: private anonymous memory.</summary>
    public static PageFaultTest PageFault1 { get; } = new(
        "page_fault1", "pf1", "128 MiB private anonymous regions", MapFlags.Private | MapFlags.Anonymous, mapsFile: false,
        framesPerPage: 1, "do_anonymous_page", s => s.AnonymousFaults);

    /// <summary>page_fault2: a private (copy-on-write) mapping of the worker's own file.</summary>
    public static PageFaultTest PageFault2 { get; } = new(
        "page_fault2", "pf2", "128 MiB private mappings of a 128 MiB file per worker", MapFlags.Private, mapsFile: true,
        framesPerPage: 2, "do_cow_fault", s => s.FilePrivateWriteFaults);

    /// <summary>page_fault3: a shared mapping of the worker's own file.</summary>
    public static PageFaultTest PageFault3 { get; } = new(
        "page_fault3", "pf3", "128 MiB shared mappings of a 128 MiB file per worker", MapFlags.Shared, mapsFile: true,
        framesPerPage: 1, "do_shared_fault", s => s.FileSharedWriteFaults);

    /// <summary>Every test, in order.</summary>
    public static IReadOnlyList<PageFaultTest> All { get; } = [PageFault1, PageFault2, PageFault3];

    /// <summary>will-it-scale's name, also the native binary's ("page_fault2").</summary>
    public string Name { get; }

    /// <summary>The short name for <c>--test</c> ("pf2").</summary>
    public string Option { get; }

    /// <summary>What is mapped, for the header line.</summary>
    public string Description { get; }

    /// <summary>The mapping's flags (with <see cref="MapFlags.Anonymous"/> when no file is mapped).</summary>
    public MapFlags Flags { get; }

    /// <summary>Whether each worker maps a file of its own.</summary>
    public bool MapsFile { get; }

    /// <summary>
    /// Frames one worker holds per page of its region at the peak of a pass: the region's pages for page_fault1;
    /// the cached file plus the private copies for page_fault2; the cached file alone for page_fault3 (the mapping
    /// maps the cached pages themselves).
    /// </summary>
    public int FramesPerPage { get; }

    /// <summary>The kernel function each store's fault models, for the tables.</summary>
    public string FaultKind { get; }

    /// <summary>The machine counter that counts this test's faults.</summary>
    public long Faults(MachineStats stats) => _faults(stats);

    /// <summary>
    /// Frames for a machine that runs <paramref name="workers"/> workers of this test: each worker's peak
    /// (<see cref="FramesPerPage"/> per page) for at least two workers, plus slack for page tables and per-CPU
    /// caches. page_fault1 and page_fault3 get 80,000 frames, page_fault2 145,536, whatever the worker count up to
    /// two, so the one-worker runs use the same machine as the two-worker runs. Nothing is ever evicted or written
    /// back: the whole file of every worker stays cached, as it does in the kernel.
    /// </summary>
    public int Frames(int workers)
        => PeakPages(workers) + SlackFrames;

    /// <summary>
    /// Frames for a machine on which the pages <paramref name="workers"/> workers hold at their peak are
    /// <paramref name="workingSet"/> times the frames left for them: 1,024 frames beyond those are for page tables and
    /// the per-CPU caches. Above 1 the loops run on direct reclaim, and page_fault1's pages go to swap as the touch
    /// phase reaches the end of memory. At 1, <see cref="Frames(int)"/>.
    /// </summary>
    public int Frames(int workers, double workingSet)
        => workingSet <= 1 ? Frames(workers) : (int)(workers * RegionPages * FramesPerPage / workingSet) + 1_024;

    /// <summary>Swap slots enough for every page the workers can hold at once (<see cref="Frames(int)"/>'s count).</summary>
    public int SwapSlotsFor(int workers) => Frames(workers);

    private static int RegionPages => (int)(EnginePageFault.RegionBytes / EnginePageFault.PageBytes);

    private int PeakPages(int workers) => Math.Max(2, workers) * RegionPages * FramesPerPage;

    /// <summary>The test whose <see cref="Option"/> or <see cref="Name"/> is <paramref name="text"/>, or null.</summary>
    public static PageFaultTest? Parse(string text) => All.FirstOrDefault(t => t.Option == text || t.Name == text);

    /// <inheritdoc/>
    public override string ToString() => Name;
}
