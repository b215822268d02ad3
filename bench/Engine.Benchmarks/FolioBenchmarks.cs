using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// What large anonymous folios change, per 64 KiB of anonymous memory, on a one-CPU machine with the scheduling hook
/// and the run-time checks off (<see cref="FacadeConfig"/>): with <see cref="AnonFolioOrder"/> 0 every 4 KiB page is
/// a folio of its own, with 4 the memory comes in 64 KiB folios; <see cref="Mapcount"/> is how large folios count
/// their mappings (it changes nothing at order 0, where the two cases are a control). Five workloads, each
/// OperationsPerInvoke = 64 KiB units, so Mean and Allocated are <b>per 64 KiB</b> (16 pages):
/// <list type="bullet">
/// <item><see cref="WriteFault"/>: a store to each page of untouched memory: 16 anonymous faults at order 0; one
/// folio fault (<c>alloc_anon_folio</c>: one aligned block, 16 entries) and 15 stores that only walk the tables at
/// order 4.</item>
/// <item><see cref="Fork"/>: <c>Fork()</c> of a process whose memory is all mapped (read-only, as an earlier fork left
/// it): per entry a reference, a mapping (<c>folio_try_dup_anon_rmap_pte</c>, under the folio's lock bit with
/// <see cref="MapcountScheme.MmId"/>) and the entry copied. The child exits in the set-up, not measured.</item>
/// <item><see cref="Zap"/>: <c>MADV_DONTNEED</c> of written memory: 16 entries cleared and their rmap removed, one
/// flush per 2 MiB, then 16 frames to the CPU's cache (order 0) or the last of 16 references dropping the folio to
/// the buddy (order 4).</item>
/// <item><see cref="CowWriteChildExited"/>: a store to each page after fork, the child gone: order 0 reuses each page
/// (mapped once); <see cref="MapcountScheme.MmId"/> reuses each page of the folio (exclusive to this mm:
/// <c>_large_mapcount == _refcount</c>); <see cref="MapcountScheme.PerPage"/> cannot tell that the folio is this mm's
/// alone and copies every page (6.9–6.14: a large folio's page is reused only when AnonExclusive).</item>
/// <item><see cref="CowWriteChildAlive"/>: the same with the child alive: every configuration copies every page.</item>
/// </list>
/// <para>
/// Set-up as in <see cref="FaultBenchmarks"/>: an iteration is exactly 64 invocations (InvocationCount), each on the
/// next 2 MiB chunk of one 128 MiB region (32 × 64 KiB), or for <see cref="Fork"/> the next of 64 parents, each with
/// 4 MiB (64 × 64 KiB) of written memory; an [IterationSetup], not measured, puts the memory in the state the workload
/// needs. Every set-up and the clean-up check from <see cref="Machine.Stats"/> that the previous iteration's stores
/// took exactly the faults intended (at order 4 every anonymous fault mapped a folio, none fell back to a page, every
/// COW fault reused or copied as listed) and that no folio was split; the clean-up also checks the machine's
/// invariants. Freed frames are not poisoned (<see cref="MachineOptions.PoisonFreedFrames"/> off): the 4 KiB fill
/// per frame is the same work at either order and would hide the per-folio differences in the zap (see
/// <see cref="FaultBenchmarks"/>: 29 against 266 ns per page).
/// </para>
/// </summary>
[Config(typeof(FacadeConfig))]
[MemoryDiagnoser]
[InvocationCount(Chunks)]
public class FolioBenchmarks
{
    /// <summary>2 MiB chunks in the region, parents for <see cref="Fork"/>; also the invocations per iteration.</summary>
    public const int Chunks = 64;

    /// <summary>The unit every figure is per: 64 KiB, one folio of order 4.</summary>
    public const ulong UnitBytes = 64 * 1024;

    /// <summary>64 KiB units per 2 MiB chunk: OperationsPerInvoke of the benchmarks on the region.</summary>
    public const int UnitsPerChunk = (int)(ChunkBytes / UnitBytes);

    /// <summary>64 KiB units per parent: OperationsPerInvoke of <see cref="Fork"/>.</summary>
    public const int UnitsPerParent = (int)(ParentBytes / UnitBytes);

    private const ulong PageBytes = FaultBenchmarks.PageBytes;
    private const ulong ChunkBytes = 2 << 20;
    private const ulong RegionBytes = Chunks * ChunkBytes;
    private const ulong ParentBytes = 4 << 20;
    private const long PagesPerChunk = (long)(ChunkBytes / PageBytes);

    private Machine? _machine;
    private Process? _process;
    private Process? _child;
    private Process[] _parents = [];
    private Process?[] _children = [];
    private Cpu? _cpu;
    private ulong _region;
    private ulong[] _regions = [];
    private int _next;
    private Workload _running;
    private MachineStats? _atStart;

    private enum Workload
    {
        None,
        WriteFault,
        Zap,
        Fork,
        CowChildExited,
        CowChildAlive,
    }

    /// <summary>The order of large anonymous folios: 0 (off, 4 KiB pages) or 4 (64 KiB folios).</summary>
    [Params(0, 4)]
    public int AnonFolioOrder { get; set; }

    /// <summary>How large folios count mappings (nothing changes at order 0).</summary>
    [Params(MapcountScheme.PerPage, MapcountScheme.MmId)]
    public MapcountScheme Mapcount { get; set; }

    private bool Large => AnonFolioOrder != 0;

    /// <summary>
    /// One process with the 128 MiB region on a machine with room for it twice over (the COW copies), written once;
    /// then every workload on it run a few times, so the measured paths are at tier 1 before BenchmarkDotNet's warm-up.
    /// </summary>
    [GlobalSetup(Targets = [nameof(WriteFault), nameof(Zap), nameof(CowWriteChildExited), nameof(CowWriteChildAlive)])]
    public void SetUpRegion()
    {
        _machine = NewMachine(frames: 72_000);
        _process = _machine.CreateProcess();
        _region = _process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        RequireFolioAligned(_region);
        WriteAll(_process, _region, RegionBytes);
        for (var round = 0; round < 4; round++)
        {
            ZapRegion();
            RunIteration(WriteFault);
            PopulateRegion();
            RunIteration(Zap);
            ForkAndExitChild();
            RunIteration(CowWriteChildExited);
            ForkKeepingChild();
            RunIteration(CowWriteChildAlive);
            Thread.Sleep(200);
        }

        EndIteration("the set-up");
    }

    /// <summary>
    /// <see cref="Chunks"/> parents with 4 MiB each, written, forked once (which write-protects their entries, as
    /// every later fork finds them); then forks of every parent a few times, for tier 1.
    /// </summary>
    [GlobalSetup(Target = nameof(Fork))]
    public void SetUpParents()
    {
        _machine = NewMachine(frames: (int)(Chunks * ParentBytes / PageBytes) + 8_192);
        _parents = new Process[Chunks];
        _children = new Process?[Chunks];
        _regions = new ulong[Chunks];
        for (var i = 0; i < Chunks; i++)
        {
            _parents[i] = _machine.CreateProcess();
            _regions[i] = _parents[i].Mmap(ParentBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            RequireFolioAligned(_regions[i]);
            WriteAll(_parents[i], _regions[i], ParentBytes);
        }

        for (var round = 0; round < 4; round++)
        {
            ExitChildren();
            RunIteration(Fork);
            Thread.Sleep(200);
        }

        ExitChildren();
    }

    /// <summary>Checks the last iteration and the machine, then exits every process.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        EndIteration("the last iteration");
        _child?.Dispose();
        foreach (var child in _children)
        {
            child?.Dispose();
        }

        _process?.Dispose();
        foreach (var parent in _parents)
        {
            parent.Dispose();
        }

        var stats = _machine!.Stats;
        if (stats.FolioSplits != 0 || stats.AnonFolioFallbacks != 0)
        {
            throw new InvalidOperationException($"{stats.FolioSplits} folio splits and {stats.AnonFolioFallbacks} fallbacks to a page; expected none.");
        }

        _machine.CheckInvariants();
        _machine.Dispose();
    }

    /// <summary>Before a <see cref="WriteFault"/> iteration: the region zapped (page tables kept).</summary>
    [IterationSetup(Target = nameof(WriteFault))]
    public void ZapRegion()
    {
        EndIteration("an iteration");
        _process!.MadviseDontNeed(_region, RegionBytes);
        StartIteration(Workload.WriteFault);
    }

    /// <summary>Before a <see cref="Zap"/> iteration: every page of the region written.</summary>
    [IterationSetup(Target = nameof(Zap))]
    public void PopulateRegion()
    {
        EndIteration("an iteration");
        WriteAll(_process!, _region, RegionBytes);
        StartIteration(Workload.Zap);
    }

    /// <summary>Before a <see cref="Fork"/> iteration: the children of the previous one exit.</summary>
    [IterationSetup(Target = nameof(Fork))]
    public void ExitChildren()
    {
        EndIteration("an iteration");
        for (var i = 0; i < _children.Length; i++)
        {
            _children[i]?.Dispose();
            _children[i] = null;
        }

        StartIteration(Workload.Fork);
    }

    /// <summary>
    /// Before a <see cref="CowWriteChildExited"/> iteration: the region populated anew (large folios again where the
    /// last iteration copied them away), forked, and the child gone, so every entry is read-only and mapped by this mm
    /// alone.
    /// </summary>
    [IterationSetup(Target = nameof(CowWriteChildExited))]
    public void ForkAndExitChild()
    {
        EndIteration("an iteration");
        Repopulate();
        _process!.Fork().Dispose();
        StartIteration(Workload.CowChildExited);
    }

    /// <summary>Before a <see cref="CowWriteChildAlive"/> iteration: the region populated anew and forked; the child stays.</summary>
    [IterationSetup(Target = nameof(CowWriteChildAlive))]
    public void ForkKeepingChild()
    {
        EndIteration("an iteration");
        Repopulate();
        _child = _process!.Fork();
        StartIteration(Workload.CowChildAlive);
    }

    /// <summary>A store to every page of the next 2 MiB of untouched memory: 16 faults per 64 KiB at order 0, one at order 4.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void WriteFault() => WriteChunk();

    /// <summary><c>MADV_DONTNEED</c> of the next 2 MiB of written memory.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void Zap() => _process!.MadviseDontNeed(_region + ((ulong)_next++ * ChunkBytes), ChunkBytes);

    /// <summary><c>Fork()</c> of the next parent (4 MiB mapped, read-only); the child lives until the next set-up.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerParent)]
    public void Fork()
    {
        var i = _next++;
        _children[i] = _parents[i].Fork();
    }

    /// <summary>A store to every page of the next 2 MiB after fork, the child gone: reuse (order 0, MmId) or copy (PerPage).</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void CowWriteChildExited() => WriteChunk();

    /// <summary>A store to every page of the next 2 MiB after fork, the child alive: every page copied.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void CowWriteChildAlive() => WriteChunk();

    private Machine NewMachine(int frames) => new(new MachineOptions
    {
        Cpus = 1,
        Frames = frames,
        PteLayout = PteLayout.Native64,
        PoisonFreedFrames = false,
        AnonFolioOrder = AnonFolioOrder,
        Mapcount = Mapcount,
    });

    private void WriteChunk()
    {
        var cpu = _cpu!;
        var process = _process!;
        var chunk = _region + ((ulong)_next++ * ChunkBytes);
        for (ulong page = 0; page < ChunkBytes; page += PageBytes)
        {
            cpu.Write(process, chunk + page, page + 1);
        }
    }

    private void WriteAll(Process process, ulong start, ulong bytes)
    {
        _cpu ??= _machine!.Cpus[0];
        for (ulong page = 0; page < bytes; page += PageBytes)
        {
            _cpu.Write(process, start + page, page + 1);
        }
    }

    /// <summary>The region zapped and written again, so that at order 4 it is all folios, each mapped by this mm alone.</summary>
    private void Repopulate()
    {
        _child?.Dispose();
        _child = null;
        _process!.MadviseDontNeed(_region, RegionBytes);
        WriteAll(_process, _region, RegionBytes);
    }

    private void RunIteration(Action invocation)
    {
        for (var i = 0; i < Chunks; i++)
        {
            invocation();
        }
    }

    private void RequireFolioAligned(ulong address)
    {
        if (Large && address % UnitBytes != 0)
        {
            throw new InvalidOperationException($"mmap placed the region at 0x{address:x}, not on a 64 KiB boundary: its ranges cannot be folios.");
        }
    }

    private void StartIteration(Workload workload)
    {
        _running = workload;
        _next = 0;
        _atStart = _machine!.Stats;
    }

    /// <summary>
    /// Throws unless the invocations since <see cref="StartIteration"/> took exactly the faults their workload
    /// intends, and no folio was split or fell back to a page. BenchmarkDotNet's jitting stage runs iterations of one
    /// invocation; the counts follow <c>_next</c>, so they allow for it.
    /// </summary>
    private void EndIteration(string when)
    {
        var workload = _running;
        _running = Workload.None;
        if (workload == Workload.None)
        {
            return;
        }

        var now = _machine!.Stats;
        var was = _atStart!;
        var pages = _next * PagesPerChunk;
        var folios = Large ? pages / (long)(UnitBytes / PageBytes) : 0;
        var anon = now.AnonymousFaults - was.AnonymousFaults;
        var folioFaults = now.AnonFolioFaults - was.AnonFolioFaults;
        var copies = now.CowCopies - was.CowCopies;
        var reuses = now.CowReuses - was.CowReuses;
        var largeReuses = now.LargeFolioReuses - was.LargeFolioReuses;
        var (expectAnon, expectCopies, expectReuses, expectLargeReuses) = workload switch
        {
            Workload.WriteFault => (Large ? folios : pages, 0L, 0L, 0L),
            Workload.CowChildExited when !Large => (0L, 0L, pages, 0L),
            Workload.CowChildExited when Mapcount == MapcountScheme.MmId => (0L, 0L, pages, pages),
            Workload.CowChildExited => (0L, pages, 0L, 0L),
            Workload.CowChildAlive => (0L, pages, 0L, 0L),
            _ => (0L, 0L, 0L, 0L),
        };
        var expectFolioFaults = workload == Workload.WriteFault ? folios : 0;
        if (anon != expectAnon || folioFaults != expectFolioFaults || copies != expectCopies || reuses != expectReuses
            || largeReuses != expectLargeReuses || now.FolioSplits != 0 || now.AnonFolioFallbacks != 0 || now.ForkPinnedCopies != 0)
        {
            throw new InvalidOperationException(
                $"{when} ({workload}, order {AnonFolioOrder}, {Mapcount}, {pages} pages): {anon} anonymous faults ({folioFaults} of folios), "
                + $"{copies} COW copies, {reuses} reuses ({largeReuses} of large folios), {now.FolioSplits} splits, "
                + $"{now.AnonFolioFallbacks} fallbacks, {now.ForkPinnedCopies} early copies at fork; expected {expectAnon} ({expectFolioFaults}), "
                + $"{expectCopies}, {expectReuses} ({expectLargeReuses}), 0, 0, 0.");
        }
    }
}
