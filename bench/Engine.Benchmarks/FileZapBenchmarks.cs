using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of the deferred rmap removal: a zap (<c>MadviseDontNeed</c>) of 512 dirty pages of a shared file
/// mapping, on machines that differ only in the zap protocol of dirty file pages, on one CPU with the scheduling hook
/// off (<see cref="FacadeConfig"/>).
/// <list type="bullet">
/// <item><see cref="ZapDirtyDelayRmap"/> (baseline), Linux 6.2 and later (<c>DelayRmap</c> and
/// <c>FlushDirtyUnderPtl</c> on, the defaults): each page cleared from a dirty entry is marked dirty and queued with
/// the delay bit, keeping its mapcount; before the PTL goes the TLB is flushed and the queued rmaps removed.</item>
/// <item><see cref="ZapDirtyNoDelayRmap"/>, 3.15 to 6.1 (<c>DelayRmap</c> off): the mapcount drops when the entry
/// is cleared; the flush still happens under the PTL.</item>
/// <item><see cref="ZapDirtyFlushAfterPtl"/>, before 3.15 (both off): mapcount dropped at once, flush after the PTL
/// is released.</item>
/// <item><see cref="ZapClean"/>, for reference (defaults): the same 512 pages mapped by read faults, so the entries
/// are clean and read-only: nothing to mark dirty, nothing delayed, no flush forced by dirt.</item>
/// </list>
/// The zap frees nothing: the page cache keeps its reference on every page, so the pages only lose their mapping.
/// Each flush covers a batch of 256 pages (<c>MmuGather.Capacity</c>) in every variant, because a dirty page forces
/// a flush only at the end of the batch or table, as in the kernel.
/// <para>
/// Set-up as in <see cref="FaultBenchmarks.Zap512Pages"/>: the [GlobalSetup] of each benchmark maps a 128 MiB file
/// shared, 64 chunks of 2 MiB (512 pages, one PTE table each). An iteration is exactly <see cref="Chunks"/>
/// invocations (InvocationCount), each zapping the next chunk. Before every iteration an [IterationSetup], not
/// measured, maps every page again through the mapping: a store to each (32,768 <c>do_shared_fault</c>s, re-dirtying
/// the entries), or for <see cref="ZapClean"/> a load (32,768 read faults), and checks from
/// <see cref="Machine.Stats"/> that it took exactly one such fault per page the previous iteration zapped (all of
/// them, except in BenchmarkDotNet's jitting stage, which invokes once), i.e. that every zap measured unmapped its 512
/// pages. So Mean and Allocated are per zap of 512 pages, with no fault inside the measurement.
/// </para>
/// </summary>
[Config(typeof(FacadeConfig))]
[MemoryDiagnoser]
[InvocationCount(Chunks)]
public class FileZapBenchmarks
{
    /// <summary>2 MiB chunks in the mapping; also the invocations per iteration.</summary>
    public const int Chunks = 64;

    private const ulong PageBytes = FaultBenchmarks.PageBytes;
    private const ulong ChunkBytes = FaultBenchmarks.ChunkBytes;
    private const ulong RegionBytes = FaultBenchmarks.RegionBytes;
    private const int Pages = Chunks * FaultBenchmarks.PagesPerChunk;

    private Machine? _machine;
    private Process? _process;
    private Cpu? _cpu;
    private ulong _region;
    private int _next;
    private bool _clean;

    /// <summary>Linux 6.2+: delayed rmap removal, flush under the PTL.</summary>
    [GlobalSetup(Target = nameof(ZapDirtyDelayRmap))]
    public void SetUpDelayRmap() => SetUp(delayRmap: true, flushDirtyUnderPtl: true, dirty: true);

    /// <summary>Linux 3.15–6.1: rmap removed at once, flush under the PTL.</summary>
    [GlobalSetup(Target = nameof(ZapDirtyNoDelayRmap))]
    public void SetUpNoDelayRmap() => SetUp(delayRmap: false, flushDirtyUnderPtl: true, dirty: true);

    /// <summary>Before Linux 3.15: rmap removed at once, flush after the PTL is released.</summary>
    [GlobalSetup(Target = nameof(ZapDirtyFlushAfterPtl))]
    public void SetUpFlushAfterPtl() => SetUp(delayRmap: false, flushDirtyUnderPtl: false, dirty: true);

    /// <summary>The defaults, pages mapped by read faults.</summary>
    [GlobalSetup(Target = nameof(ZapClean))]
    public void SetUpClean() => SetUp(delayRmap: true, flushDirtyUnderPtl: true, dirty: false);

    /// <summary>Checks the machine and exits the process.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _machine!.CheckInvariants();
        _machine.Dispose();
    }

    /// <summary>Before an iteration: every page of the mapping mapped again (see the class comment), outside the measurement.</summary>
    [IterationSetup]
    public void MapEveryPage()
    {
        if (_next > Chunks)
        {
            throw new InvalidOperationException($"{_next} zaps in one iteration: only the first {Chunks} found pages to zap.");
        }

        MapEveryPageChecked(_next * FaultBenchmarks.PagesPerChunk);
        _next = 0;
    }

    /// <summary>Zap of 512 pages mapped by dirty, writable entries, with the deferred rmap (6.2+).</summary>
    [Benchmark(Baseline = true)]
    public void ZapDirtyDelayRmap() => ZapNextChunk();

    /// <summary>Zap of 512 dirty pages with the rmap removed as each entry is cleared (3.15–6.1).</summary>
    [Benchmark]
    public void ZapDirtyNoDelayRmap() => ZapNextChunk();

    /// <summary>Zap of 512 dirty pages with the rmap removed at once and the flush after the PTL (before 3.15).</summary>
    [Benchmark]
    public void ZapDirtyFlushAfterPtl() => ZapNextChunk();

    /// <summary>Zap of 512 pages mapped by clean read-only entries (defaults).</summary>
    [Benchmark]
    public void ZapClean() => ZapNextChunk();

    private void ZapNextChunk() => _process!.MadviseDontNeed(_region + ((ulong)_next++ * ChunkBytes), ChunkBytes);

    /// <summary>
    /// A one-CPU machine with room for the cached file and its page tables; maps the file shared and brings every
    /// path measured or used in the set-up to tier 1 first (as <see cref="FaultBenchmarks.GlobalSetup"/> does).
    /// </summary>
    private void SetUp(bool delayRmap, bool flushDirtyUnderPtl, bool dirty)
    {
        _machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = 40_000,
            PteLayout = PteLayout.Native64,
            DelayRmap = delayRmap,
            FlushDirtyUnderPtl = flushDirtyUnderPtl,
        });
        _process = _machine.CreateProcess();
        _cpu = _machine.Cpus[0];
        var file = _machine.CreateFile("file-zap", (long)RegionBytes);
        _region = _process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Shared, file, 0);
        _clean = !dirty;
        for (var round = 0; round < 4; round++)
        {
            MapEveryPageChecked(Pages);
            for (var chunk = 0UL; chunk < Chunks; chunk++)
            {
                _process.MadviseDontNeed(_region + (chunk * ChunkBytes), ChunkBytes);
            }

            Thread.Sleep(200);
        }

        // Every chunk is unmapped, as after a full iteration.
        _next = Chunks;
    }

    /// <summary>
    /// Maps every page by a store (dirty) or a load (clean) and checks that this took exactly
    /// <paramref name="unmapped"/> faults of that kind: one per page the zaps since the last call unmapped.
    /// </summary>
    private void MapEveryPageChecked(int unmapped)
    {
        var cpu = _cpu!;
        var process = _process!;
        var before = _machine!.Stats;
        for (ulong page = 0; page < RegionBytes; page += PageBytes)
        {
            if (_clean)
            {
                _ = cpu.Read(process, _region + page);
            }
            else
            {
                cpu.Write(process, _region + page, page + 1);
            }
        }

        var after = _machine.Stats;
        var faults = _clean ? after.FileReadFaults - before.FileReadFaults : after.FileSharedWriteFaults - before.FileSharedWriteFaults;
        if (faults != unmapped)
        {
            throw new InvalidOperationException(
                $"Mapping every page took {faults} {(_clean ? "read" : "shared write")} faults, not {unmapped}: a zap left pages mapped, or unmapped pages it should not have.");
        }
    }
}
