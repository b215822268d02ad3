using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of one copy-on-write fault after fork (a write by the parent to a page still shared with a live child:
/// <c>wp_page_copy</c>), and for comparison one write-protect fault that reuses the page because the child has
/// exited, on a one-CPU machine with the scheduling hook off (<see cref="FacadeConfig"/>).
/// <para>
/// Steady state without measuring the set-up, as in <see cref="FaultBenchmarks"/>: <see cref="GlobalSetup"/> maps and
/// writes one 128 MiB region, 64 chunks of 2 MiB (512 pages, one PTE table each), in the parent. An iteration is
/// exactly <see cref="Chunks"/> invocations (InvocationCount), each writing one word to every page of the next chunk,
/// so an iteration uses up every shared page once. Before every iteration an [IterationSetup], not measured, exits
/// the previous child (freeing the old pages the parent copied away from) and forks again, so every page of the
/// parent is shared with a live child when it is written: for <see cref="CowCopyFault"/> the new child stays alive
/// through the iteration; for <see cref="CowReuseFault"/> it exits at once, leaving every parent entry read-only with
/// the page mapped once. The setup also checks from the machine's counters that every write of the previous
/// iteration took the intended fault (a copy, or a reuse). OperationsPerInvoke = 512, so Mean and Allocated are per
/// fault.
/// </para>
/// </summary>
[Config(typeof(FacadeConfig))]
[MemoryDiagnoser]
[InvocationCount(Chunks)]
public class CowFaultBenchmarks
{
    /// <summary>2 MiB chunks in the region (the same geometry as <see cref="FaultBenchmarks"/>); also the invocations per iteration.</summary>
    public const int Chunks = FaultBenchmarks.Chunks;

    /// <summary>4 KiB pages per chunk.</summary>
    public const int PagesPerChunk = FaultBenchmarks.PagesPerChunk;

    private const ulong PageBytes = FaultBenchmarks.PageBytes;
    private const ulong ChunkBytes = FaultBenchmarks.ChunkBytes;
    private const ulong RegionBytes = FaultBenchmarks.RegionBytes;

    private Machine? _machine;
    private Process? _parent;
    private Process? _child;
    private Cpu? _cpu;
    private ulong _region;
    private int _next;
    private long _copiesAtFork;
    private long _reusesAtFork;
    private bool _expectCopies;

    /// <summary>
    /// A one-CPU machine with room for the region twice over (the parent's copies and the child's originals) and the
    /// tables of both; maps and writes the region, then brings the measured paths to tier 1.
    /// </summary>
    [GlobalSetup]
    public void GlobalSetup()
    {
        _machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = 72_000,
            PteLayout = PteLayout.Native64,
        });
        _parent = _machine.CreateProcess();
        _cpu = _machine.Cpus[0];
        _region = _parent.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        WriteEveryPage();

        // Those were anonymous faults, not write-protect faults: nothing for the first check to count.
        _next = 0;

        // Tier 1 before BenchmarkDotNet's warm-up (see FaultBenchmarks): copy faults, then reuse faults, several times.
        for (var round = 0; round < 4; round++)
        {
            ForkKeepingChild();
            WriteEveryPage();
            ForkAndExitChild();
            WriteEveryPage();
            Thread.Sleep(200);
        }
    }

    /// <summary>Checks the machine and exits both processes.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _machine!.CheckInvariants();
        _child?.Dispose();
        _parent!.Dispose();
        _machine.Dispose();
    }

    /// <summary>Before a copy iteration: a new child sharing every page of the parent, kept alive.</summary>
    [IterationSetup(Target = nameof(CowCopyFault))]
    public void ForkKeepingChild()
    {
        CheckPreviousIteration();
        _child?.Dispose();
        _child = _parent!.Fork();
        StartIteration(expectCopies: true);
    }

    /// <summary>Before a reuse iteration: fork and exit the child, so every parent entry is read-only and mapped once.</summary>
    [IterationSetup(Target = nameof(CowReuseFault))]
    public void ForkAndExitChild()
    {
        CheckPreviousIteration();
        _child?.Dispose();
        _child = null;
        _parent!.Fork().Dispose();
        StartIteration(expectCopies: false);
    }

    /// <summary>
    /// A write to a page shared with the live child: <c>do_wp_page</c> finds the page not exclusive and referenced
    /// twice, so <c>wp_page_copy</c> allocates a frame, copies 4 KiB, clears the entry and flushes the TLB, maps the
    /// copy writable and drops the parent's mapping of the old page (which the child keeps).
    /// </summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = PagesPerChunk)]
    public void CowCopyFault() => WriteChunk();

    /// <summary>
    /// A write to a read-only page the parent alone maps (the child has exited): <c>do_wp_page</c> reuses the page
    /// (page count 1, marked exclusive again) and makes the entry writable, without copying or flushing.
    /// </summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public void CowReuseFault() => WriteChunk();

    private void WriteChunk()
    {
        var cpu = _cpu!;
        var process = _parent!;
        var chunk = _region + ((ulong)_next++ * ChunkBytes);
        for (ulong page = 0; page < ChunkBytes; page += PageBytes)
        {
            cpu.Write(process, chunk + page, page);
        }
    }

    private void StartIteration(bool expectCopies)
    {
        var stats = _machine!.Stats;
        _copiesAtFork = stats.CowCopies;
        _reusesAtFork = stats.CowReuses;
        _expectCopies = expectCopies;
        _next = 0;
    }

    /// <summary>Throws unless every page written since the last fork took the intended fault, and no other did.</summary>
    private void CheckPreviousIteration()
    {
        var stats = _machine!.Stats;
        var written = (long)_next * PagesPerChunk;
        var copies = stats.CowCopies - _copiesAtFork;
        var reuses = stats.CowReuses - _reusesAtFork;
        if (copies != (_expectCopies ? written : 0) || reuses != (_expectCopies ? 0 : written))
        {
            throw new InvalidOperationException(
                $"{written} pages written since the fork took {copies} copies and {reuses} reuses; expected every one a {(_expectCopies ? "copy" : "reuse")}.");
        }
    }

    private void WriteEveryPage()
    {
        _next = 0;
        for (var chunk = 0; chunk < Chunks; chunk++)
        {
            WriteChunk();
        }
    }
}
