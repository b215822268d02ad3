using BenchmarkDotNet.Attributes;
using Engine.Mm;

namespace Engine.Benchmarks;

/// <summary>
/// Issue 19: what each way of counting mappings (<see cref="MapcountScheme"/>) costs, in one run on one machine, on a
/// one-CPU engine with the scheduling hook and the run-time checks off (<see cref="MapcountConfig"/>), every scheme
/// with <see cref="CowReuse.AnonExclusive"/>. [Params] <see cref="Mapcount"/> runs each benchmark under the four
/// schemes; the column "vs PerPage" is each Mean over the same benchmark's Mean under
/// <see cref="MapcountScheme.PerPage"/> (<see cref="MapcountRatioColumn"/>), and "Bookkeeping/folio (computed)" the
/// bytes each design keeps per folio of the order the benchmark works on (<see cref="MapcountBookkeeping"/>: computed
/// from the designs' fields, not measured).
/// <list type="bullet">
/// <item><see cref="AnonFaultOrder0"/>, <see cref="AnonFaultOrder4"/>: a store to each page of untouched anonymous
/// memory, per 64 KiB: 16 faults of a page, or one fault of a 64 KiB folio and 15 stores.</item>
/// <item><see cref="ForkOrder0"/>, <see cref="ForkOrder4"/>: <c>Fork()</c> of a parent with 4 MiB mapped (read-only, as
/// an earlier fork left it), per 64 KiB; the child exits in the set-up.</item>
/// <item><see cref="ZapOrder0"/>, <see cref="ZapOrder4"/>: <c>MADV_DONTNEED</c> of written memory, per 64 KiB.</item>
/// <item><see cref="CowLargeFolioChildExited"/>, <see cref="CowLargeFolioChildAlive"/>: a store to each page of 64 KiB
/// folios after fork, per 64 KiB, the child gone (a scheme that can tell the folio is this mm's alone reuses it; the
/// per-page design copies every page) or alive (every page copied).</item>
/// <item><see cref="TruncateMappedPage"/>, <see cref="TruncateUnmappedPage"/>: <c>Machine.Truncate</c> of a 2 MiB file
/// to 0, per page: its 512 cached pages mapped by one shared mapping (<c>unmap_mapping_range</c> zaps them, then each
/// page is asked <c>MaybeMapped</c> before removal), or cached but unmapped (zapped in the set-up; every cached page
/// was mapped once, since pages enter the cache only through faults). A scheme that cannot answer "is it mapped?"
/// from a count walks the rmap for every page it cannot rule out (<c>MachineStats.TruncateRmapWalks</c>).</item>
/// <item><see cref="WritebackMappedPage"/>, <see cref="WritebackUnmappedPage"/>: writeback of 512 dirty pages, per
/// page: mapped writable by one shared mapping (<c>folio_mkclean</c> walks the rmap and write-protects the entry), or
/// unmapped (dirtied, then zapped: with a mapcount <c>folio_mkclean</c> returns at once; without one it walks).</item>
/// </list>
/// <para>
/// Steady state as in <see cref="FolioBenchmarks"/>: an iteration is exactly <see cref="Chunks"/> invocations
/// (InvocationCount), each on the next 2 MiB chunk of a 128 MiB region, the next of 64 parents, or the next of 64 2 MiB
/// files; an [IterationSetup], not measured, puts the memory back in the state the workload needs and checks from
/// <see cref="Machine.Stats"/> that the previous iteration did exactly what it should (the faults, copies and reuses
/// intended; every page truncated or written back); the global clean-up checks the machine's invariants. Nothing is
/// allocated in the measured calls in steady state (<c>Allocated</c>; a fork allocates the child's process objects,
/// 10 B per 64 KiB, outside the page-table work). Freed frames are not poisoned. Under
/// <see cref="MapcountScheme.TriState"/> and <see cref="MapcountScheme.None"/> the COW check after fork accepts a copy
/// or a reuse for each page (their reuse rules are the engine's, docs/mapcount.md); truncation is checked to walk the
/// rmap for no page under the counting schemes and the tri-state (whose "once" the zap lowers), and for every page
/// under <see cref="MapcountScheme.None"/>.
/// </para>
/// </summary>
[Config(typeof(MapcountConfig))]
[MemoryDiagnoser]
[InvocationCount(Chunks)]
public class MapcountBenchmarks
{
    /// <summary>Chunks, parents or files per iteration; also the invocations per iteration.</summary>
    public const int Chunks = 64;

    /// <summary>64 KiB units per 2 MiB chunk: OperationsPerInvoke of the benchmarks on the anonymous region.</summary>
    public const int UnitsPerChunk = (int)(ChunkBytes / UnitBytes);

    /// <summary>64 KiB units per parent: OperationsPerInvoke of the forks.</summary>
    public const int UnitsPerParent = (int)(ParentBytes / UnitBytes);

    /// <summary>Pages per 2 MiB chunk or file: OperationsPerInvoke of the file benchmarks.</summary>
    public const int PagesPerChunk = (int)(ChunkBytes / PageBytes);

    private const ulong PageBytes = 4096;
    private const ulong UnitBytes = 64 * 1024;
    private const ulong ChunkBytes = 2 << 20;
    private const ulong RegionBytes = Chunks * ChunkBytes;
    private const ulong ParentBytes = 4 << 20;

    private Machine? _machine;
    private Cpu? _cpu;
    private Process? _process;
    private Process? _child;
    private Process[] _parents = [];
    private Process?[] _children = [];
    private ulong[] _addresses = [];
    private BackingFile[] _files = [];
    private Inode? _inode;
    private ulong _region;
    private int _order;
    private int _next;
    private Workload _running;
    private MachineStats? _atStart;

    private enum Workload
    {
        None,
        AnonFault,
        Zap,
        Fork,
        CowChildExited,
        CowChildAlive,
        Truncate,
        Writeback,
    }

    /// <summary>How pages and folios count their mappings.</summary>
    [Params(MapcountScheme.PerPage, MapcountScheme.MmId, MapcountScheme.TriState, MapcountScheme.None)]
    public MapcountScheme Mapcount { get; set; }

    /// <summary>The folio order benchmark <paramref name="method"/> works on (for the bookkeeping column): 4 for the order-4 and large-folio ones, else 0.</summary>
    public static int FolioOrderOf(string method)
    {
        ArgumentNullException.ThrowIfNull(method);
        return method.EndsWith("Order4", StringComparison.Ordinal) || method.StartsWith("CowLargeFolio", StringComparison.Ordinal) ? 4 : 0;
    }

    /// <summary>The anonymous region at order 0, written once, and its workloads run a few times for tier 1.</summary>
    [GlobalSetup(Targets = [nameof(AnonFaultOrder0), nameof(ZapOrder0)])]
    public void SetUpRegionOrder0() => SetUpRegion(0);

    /// <summary>The anonymous region at order 4 (64 KiB folios), written once, and its workloads run a few times for tier 1.</summary>
    [GlobalSetup(Targets = [nameof(AnonFaultOrder4), nameof(ZapOrder4), nameof(CowLargeFolioChildExited), nameof(CowLargeFolioChildAlive)])]
    public void SetUpRegionOrder4() => SetUpRegion(4);

    /// <summary>64 parents with 4 MiB each at order 0, written and forked once, then forked a few times for tier 1.</summary>
    [GlobalSetup(Target = nameof(ForkOrder0))]
    public void SetUpParentsOrder0() => SetUpParents(0);

    /// <summary>The same at order 4.</summary>
    [GlobalSetup(Target = nameof(ForkOrder4))]
    public void SetUpParentsOrder4() => SetUpParents(4);

    /// <summary>
    /// 64 files of 2 MiB, each mapped shared in its own VMA of one process, then truncated and refilled a few times for
    /// tier 1.
    /// </summary>
    [GlobalSetup(Targets = [nameof(TruncateMappedPage), nameof(TruncateUnmappedPage)])]
    public void SetUpFiles()
    {
        _machine = NewMachine(order: 0, frames: (int)(RegionBytes / PageBytes) + 4_096);
        _cpu = _machine.Cpus[0];
        _process = _machine.CreateProcess();
        _files = new BackingFile[Chunks];
        _addresses = new ulong[Chunks];
        for (var i = 0; i < Chunks; i++)
        {
            _files[i] = _machine.CreateFile($"truncate-{i}", (long)ChunkBytes);
            _addresses[i] = _process.Mmap(ChunkBytes, Prot.Read, MapFlags.Shared, _files[i], 0);
        }

        _next = Chunks;
        for (var round = 0; round < 4; round++)
        {
            RefillFiles(mapped: round % 2 == 0);
            RunIteration(() => TruncateMappedPage());
            Thread.Sleep(200);
        }
    }

    /// <summary>One 128 MiB file mapped shared and writable, written and written back a few times for tier 1.</summary>
    [GlobalSetup(Targets = [nameof(WritebackMappedPage), nameof(WritebackUnmappedPage)])]
    public void SetUpWriteback()
    {
        _machine = NewMachine(order: 0, frames: (int)(RegionBytes / PageBytes) + 4_096);
        _cpu = _machine.Cpus[0];
        _process = _machine.CreateProcess();
        var file = _machine.CreateFile("writeback", (long)RegionBytes);
        _inode = BackingFile.InodeOf(file, _machine);
        _region = _process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Shared, file, 0);
        for (var round = 0; round < 4; round++)
        {
            Redirty(mapped: round % 2 == 0);
            RunIteration(() => WritebackMappedPage());
            Thread.Sleep(200);
        }
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

        foreach (var parent in _parents)
        {
            parent.Dispose();
        }

        _process?.Dispose();
        var stats = _machine!.Stats;
        if (stats.FolioSplits != 0 || stats.AnonFolioFallbacks != 0)
        {
            throw new InvalidOperationException($"{stats.FolioSplits} folio splits and {stats.AnonFolioFallbacks} fallbacks to a page; expected none.");
        }

        _machine.CheckInvariants();
        _machine.Dispose();
    }

    /// <summary>Before an anonymous-fault iteration: the region zapped (page tables kept).</summary>
    [IterationSetup(Targets = [nameof(AnonFaultOrder0), nameof(AnonFaultOrder4)])]
    public void ZapRegion()
    {
        EndIteration("an iteration");
        _process!.MadviseDontNeed(_region, RegionBytes);
        StartIteration(Workload.AnonFault);
    }

    /// <summary>Before a zap iteration: every page of the region written.</summary>
    [IterationSetup(Targets = [nameof(ZapOrder0), nameof(ZapOrder4)])]
    public void PopulateRegion()
    {
        EndIteration("an iteration");
        WriteAll(_process!, _region, RegionBytes);
        StartIteration(Workload.Zap);
    }

    /// <summary>Before a fork iteration: the children of the previous one exit.</summary>
    [IterationSetup(Targets = [nameof(ForkOrder0), nameof(ForkOrder4)])]
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

    /// <summary>Before a COW iteration with the child gone: the region repopulated (folios again), forked, the child exited.</summary>
    [IterationSetup(Target = nameof(CowLargeFolioChildExited))]
    public void ForkAndExitChild()
    {
        EndIteration("an iteration");
        Repopulate();
        _process!.Fork().Dispose();
        StartIteration(Workload.CowChildExited);
    }

    /// <summary>Before a COW iteration with the child alive: the region repopulated and forked; the child stays.</summary>
    [IterationSetup(Target = nameof(CowLargeFolioChildAlive))]
    public void ForkKeepingChild()
    {
        EndIteration("an iteration");
        Repopulate();
        _child = _process!.Fork();
        StartIteration(Workload.CowChildAlive);
    }

    /// <summary>Before a truncation iteration: every file grown back and its every page cached and mapped.</summary>
    [IterationSetup(Target = nameof(TruncateMappedPage))]
    public void RefillMapped()
    {
        EndIteration("an iteration");
        RefillFiles(mapped: true);
        StartIteration(Workload.Truncate);
    }

    /// <summary>Before a truncation iteration: every file grown back and its every page cached, then unmapped.</summary>
    [IterationSetup(Target = nameof(TruncateUnmappedPage))]
    public void RefillUnmapped()
    {
        EndIteration("an iteration");
        RefillFiles(mapped: false);
        StartIteration(Workload.Truncate);
    }

    /// <summary>Before a writeback iteration: every page dirtied through the mapping, which keeps it mapped writable.</summary>
    [IterationSetup(Target = nameof(WritebackMappedPage))]
    public void RedirtyMapped()
    {
        EndIteration("an iteration");
        Redirty(mapped: true);
        StartIteration(Workload.Writeback);
    }

    /// <summary>Before a writeback iteration: every page dirtied through the mapping, then unmapped (the page keeps the dirt).</summary>
    [IterationSetup(Target = nameof(WritebackUnmappedPage))]
    public void RedirtyUnmapped()
    {
        EndIteration("an iteration");
        Redirty(mapped: false);
        StartIteration(Workload.Writeback);
    }

    /// <summary>A store to every page of the next 2 MiB of untouched memory, order 0: 16 anonymous faults per 64 KiB.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void AnonFaultOrder0() => WriteChunk();

    /// <summary>The same at order 4: one folio fault and 15 stores per 64 KiB.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void AnonFaultOrder4() => WriteChunk();

    /// <summary><c>Fork()</c> of the next parent (4 MiB mapped read-only), order 0.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerParent)]
    public void ForkOrder0() => ForkNext();

    /// <summary><c>Fork()</c> of the next parent, its memory in 64 KiB folios.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerParent)]
    public void ForkOrder4() => ForkNext();

    /// <summary><c>MADV_DONTNEED</c> of the next 2 MiB of written memory, order 0.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void ZapOrder0() => ZapChunk();

    /// <summary>The same at order 4.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void ZapOrder4() => ZapChunk();

    /// <summary>A store to every page of the next 2 MiB of 64 KiB folios after fork, the child gone.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void CowLargeFolioChildExited() => WriteChunk();

    /// <summary>A store to every page of the next 2 MiB of 64 KiB folios after fork, the child alive.</summary>
    [Benchmark(OperationsPerInvoke = UnitsPerChunk)]
    public void CowLargeFolioChildAlive() => WriteChunk();

    /// <summary><c>Machine.Truncate</c> of the next 2 MiB file to 0, its 512 pages cached and mapped.</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public int TruncateMappedPage() => _machine!.Truncate(_files[_next++], 0);

    /// <summary><c>Machine.Truncate</c> of the next 2 MiB file to 0, its 512 pages cached and unmapped.</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public int TruncateUnmappedPage() => _machine!.Truncate(_files[_next++], 0);

    /// <summary>Writeback of the next 512 pages of the file, dirty and mapped writable.</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public int WritebackMappedPage() => WritebackChunk();

    /// <summary>Writeback of the next 512 pages of the file, dirty and unmapped.</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public int WritebackUnmappedPage() => WritebackChunk();

    private void SetUpRegion(int order)
    {
        _order = order;
        _machine = NewMachine(order, frames: 72_000);
        _cpu = _machine.Cpus[0];
        _process = _machine.CreateProcess();
        _region = _process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        RequireFolioAligned(_region);
        WriteAll(_process, _region, RegionBytes);
        for (var round = 0; round < 4; round++)
        {
            ZapRegion();
            RunIteration(AnonFaultOrder0);
            PopulateRegion();
            RunIteration(ZapOrder0);
            if (order != 0)
            {
                ForkAndExitChild();
                RunIteration(CowLargeFolioChildExited);
                ForkKeepingChild();
                RunIteration(CowLargeFolioChildAlive);
            }

            Thread.Sleep(200);
        }

        EndIteration("the set-up");
    }

    private void SetUpParents(int order)
    {
        _order = order;
        _machine = NewMachine(order, frames: (int)(Chunks * ParentBytes / PageBytes) + 8_192);
        _cpu = _machine.Cpus[0];
        _parents = new Process[Chunks];
        _children = new Process?[Chunks];
        _addresses = new ulong[Chunks];
        for (var i = 0; i < Chunks; i++)
        {
            _parents[i] = _machine.CreateProcess();
            _addresses[i] = _parents[i].Mmap(ParentBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            RequireFolioAligned(_addresses[i]);
            WriteAll(_parents[i], _addresses[i], ParentBytes);
        }

        for (var round = 0; round < 4; round++)
        {
            ExitChildren();
            RunIteration(ForkOrder0);
            Thread.Sleep(200);
        }

        ExitChildren();
    }

    private Machine NewMachine(int order, int frames) => new(new MachineOptions
    {
        Cpus = 1,
        Frames = frames,
        PteLayout = PteLayout.Native64,
        PoisonFreedFrames = false,
        AnonFolioOrder = order,
        Mapcount = Mapcount,
        CowReuse = CowReuse.AnonExclusive,
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

    private void ZapChunk() => _process!.MadviseDontNeed(_region + ((ulong)_next++ * ChunkBytes), ChunkBytes);

    private void ForkNext()
    {
        var i = _next++;
        _children[i] = _parents[i].Fork();
    }

    private int WritebackChunk()
    {
        var first = _next++ * PagesPerChunk;
        return _machine!.FileWriteback.Writeback(_inode!, first, first + PagesPerChunk);
    }

    private void WriteAll(Process process, ulong start, ulong bytes)
    {
        var cpu = _cpu!;
        for (ulong page = 0; page < bytes; page += PageBytes)
        {
            cpu.Write(process, start + page, page + 1);
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

    /// <summary>
    /// Every file truncated by the last iteration grown back to 2 MiB; every page of every file read through its mapping
    /// (cached and mapped), then, unless <paramref name="mapped"/>, the mappings zapped (cached, unmapped).
    /// </summary>
    private void RefillFiles(bool mapped)
    {
        var machine = _machine!;
        var cpu = _cpu!;
        var process = _process!;
        for (var i = 0; i < Chunks; i++)
        {
            if (_files[i].Size != (long)ChunkBytes)
            {
                machine.Truncate(_files[i], (long)ChunkBytes);
            }

            for (ulong page = 0; page < ChunkBytes; page += PageBytes)
            {
                _ = cpu.Read(process, _addresses[i] + page);
            }

            if (!mapped)
            {
                process.MadviseDontNeed(_addresses[i], ChunkBytes);
            }
        }
    }

    /// <summary>A store to every page of the file's mapping (dirty, mapped writable), then, unless <paramref name="mapped"/>, the mapping zapped.</summary>
    private void Redirty(bool mapped)
    {
        WriteAll(_process!, _region, RegionBytes);
        if (!mapped)
        {
            _process!.MadviseDontNeed(_region, RegionBytes);
        }
    }

    private void RunIteration(Action invocation)
    {
        _next = 0;
        for (var i = 0; i < Chunks; i++)
        {
            invocation();
        }
    }

    private void RequireFolioAligned(ulong address)
    {
        if (_order != 0 && address % UnitBytes != 0)
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
    /// Throws unless the invocations since <see cref="StartIteration"/> did exactly what their workload intends (the
    /// faults, copies and reuses; every page truncated or written back), and no folio was split or fell back to a page.
    /// BenchmarkDotNet's jitting stage runs iterations of one invocation; the counts follow <c>_next</c>.
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
        var pages = workload == Workload.Fork ? _next * (long)(ParentBytes / PageBytes) : _next * (long)PagesPerChunk;
        var large = _order != 0;
        var folios = large ? pages / (long)(UnitBytes / PageBytes) : 0;
        var anon = now.AnonymousFaults - was.AnonymousFaults;
        var folioFaults = now.AnonFolioFaults - was.AnonFolioFaults;
        var copies = now.CowCopies - was.CowCopies;
        var reuses = now.CowReuses - was.CowReuses;
        var truncated = now.PagesTruncated - was.PagesTruncated;
        var walks = now.TruncateRmapWalks - was.TruncateRmapWalks;
        var written = now.PagesWrittenBack - was.PagesWrittenBack;
        var proposal = Mapcount is MapcountScheme.TriState or MapcountScheme.None;
        var ok = workload switch
        {
            Workload.AnonFault => anon == (large ? folios : pages) && folioFaults == folios,
            Workload.CowChildExited when proposal => anon == 0 && copies + reuses == pages,
            Workload.CowChildExited when Mapcount == MapcountScheme.MmId => anon == 0 && copies == 0 && reuses == pages,
            Workload.CowChildExited => anon == 0 && copies == pages && reuses == 0,
            Workload.CowChildAlive => anon == 0 && copies == pages && reuses == 0,
            // After unmap_mapping_range a count (or the tri-state's "once", lowered) rules every page out; the "ever
            // mapped" bit rules none out, mapped or not: one rmap walk per page.
            Workload.Truncate => truncated == pages && walks == (Mapcount == MapcountScheme.None ? pages : 0),
            Workload.Writeback => written == pages,
            _ => anon == 0 && copies == 0 && reuses == 0,
        };
        if (!ok || now.FolioSplits != 0 || now.AnonFolioFallbacks != 0 || now.ForkPinnedCopies != 0)
        {
            throw new InvalidOperationException(
                $"{when} ({workload}, order {_order}, {Mapcount}, {pages} pages): {anon} anonymous faults ({folioFaults} of folios), "
                + $"{copies} COW copies, {reuses} reuses, {truncated} pages truncated ({walks} rmap walks), {written} written back, {now.FolioSplits} splits, "
                + $"{now.AnonFolioFallbacks} fallbacks, {now.ForkPinnedCopies} early copies at fork: not what the workload intends.");
        }
    }
}
