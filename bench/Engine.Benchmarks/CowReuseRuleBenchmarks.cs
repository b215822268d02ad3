using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of a write-protect fault after fork under each of the three copy-on-write reuse rules
/// (<see cref="MachineOptions.CowReuse"/>: <see cref="CowReuse.MapCount"/>, Linux ≤ 5.8; <see cref="CowReuse.PageCount"/>,
/// 5.9–5.18; <see cref="CowReuse.AnonExclusive"/>, 5.19+), on a one-CPU machine with the scheduling hook off
/// (<see cref="FacadeConfig"/>). The parent writes one word to every page of a region it had written before the fork;
/// three workloads differ in what else holds the pages when it does:
/// <list type="bullet">
/// <item><see cref="LiveChild"/>: the child is alive, so every page is mapped twice and referenced twice. Every rule
/// copies (<c>wp_page_copy</c>).</item>
/// <item><see cref="ChildExited"/>: the child exited right after the fork, so every parent entry is read-only and its
/// page mapped and referenced once (and, fork having cleared it, not AnonExclusive). Every rule reuses the page.</item>
/// <item><see cref="ChildExitedPageReferenced"/>: as <see cref="ChildExited"/>, but the parent also holds a plain
/// reference on every page (<see cref="Cpu.GetUserPages"/>, FOLL_GET, as vmsplice takes one), so each page is mapped
/// once and referenced twice. <see cref="CowReuse.MapCount"/> reuses it (the CVE-2020-29374 behaviour: the
/// reference keeps seeing the parent's later stores); <see cref="CowReuse.PageCount"/> and
/// <see cref="CowReuse.AnonExclusive"/> copy.</item>
/// </list>
/// No page is pinned, so fork copies nothing early under any rule.
/// <para>
/// Set-up as in <see cref="CowFaultBenchmarks"/>: <see cref="GlobalSetup"/> maps and writes one 128 MiB region in the
/// parent, 64 chunks of 2 MiB (512 pages, one PTE table each). An iteration is exactly <see cref="Chunks"/>
/// invocations (InvocationCount), each writing every page of the next chunk; OperationsPerInvoke = 512, so Mean and
/// Allocated are per fault. Before every iteration an [IterationSetup], not measured, drops the previous iteration's
/// references, exits the previous child, forks again and arranges the workload's state; it first checks from
/// <see cref="Machine.Stats"/> that every page written since the previous fork took one write-protect fault, which
/// copied or reused as the rule and workload require (above), that fork copied no page early, and that nothing else
/// faulted.
/// </para>
/// </summary>
[Config(typeof(FacadeConfig))]
[MemoryDiagnoser]
[InvocationCount(Chunks)]
public class CowReuseRuleBenchmarks
{
    /// <summary>2 MiB chunks in the region (the geometry of <see cref="FaultBenchmarks"/>); also the invocations per iteration.</summary>
    public const int Chunks = FaultBenchmarks.Chunks;

    /// <summary>4 KiB pages per chunk.</summary>
    public const int PagesPerChunk = FaultBenchmarks.PagesPerChunk;

    private const ulong PageBytes = FaultBenchmarks.PageBytes;
    private const ulong ChunkBytes = FaultBenchmarks.ChunkBytes;
    private const ulong RegionBytes = FaultBenchmarks.RegionBytes;
    private const int RegionPages = Chunks * PagesPerChunk;

    private Machine? _machine;
    private Process? _parent;
    private Process? _child;
    private PageReferences? _references;
    private Cpu? _cpu;
    private ulong _region;
    private int _next;
    private MachineStats? _atFork;
    private bool _expectCopies;

    /// <summary>The reuse rule, and the kernel generation's behaviours that come with it.</summary>
    [Params(CowReuse.MapCount, CowReuse.PageCount, CowReuse.AnonExclusive)]
    public CowReuse Rule { get; set; }

    /// <summary>
    /// A one-CPU machine with the rule, with room for the region twice over (the parent's copies and the originals
    /// the child or the references keep) and the tables of both processes; maps and writes the region, then brings
    /// the measured paths to tier 1 by running each workload a few times.
    /// </summary>
    [GlobalSetup]
    public void GlobalSetup()
    {
        _machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = 72_000,
            PteLayout = PteLayout.Native64,
            CowReuse = Rule,
        });
        _parent = _machine.CreateProcess();
        _cpu = _machine.Cpus[0];
        _region = _parent.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        WriteEveryPage();

        // Those were anonymous faults: the first check must count nothing.
        _next = 0;
        _atFork = _machine.Stats;

        // Tier 1 before BenchmarkDotNet's warm-up (see FaultBenchmarks.GlobalSetup).
        for (var round = 0; round < 4; round++)
        {
            ForkKeepingChild();
            WriteEveryPage();
            ForkAndExitChild();
            WriteEveryPage();
            ForkExitChildAndReferencePages();
            WriteEveryPage();
            Thread.Sleep(200);
        }
    }

    /// <summary>Checks the last iteration and the machine, then drops what is held and exits both processes.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        CheckPreviousIteration();
        _machine!.CheckInvariants();
        _references?.Dispose();
        _child?.Dispose();
        _parent!.Dispose();
        _machine.Dispose();
    }

    /// <summary>Before a <see cref="LiveChild"/> iteration: a new child sharing every page, kept alive.</summary>
    [IterationSetup(Target = nameof(LiveChild))]
    public void ForkKeepingChild()
    {
        DropPrevious();
        _child = _parent!.Fork();
        StartIteration(expectCopies: true);
    }

    /// <summary>Before a <see cref="ChildExited"/> iteration: fork and exit the child.</summary>
    [IterationSetup(Target = nameof(ChildExited))]
    public void ForkAndExitChild()
    {
        DropPrevious();
        _parent!.Fork().Dispose();
        StartIteration(expectCopies: false);
    }

    /// <summary>
    /// Before a <see cref="ChildExitedPageReferenced"/> iteration: fork and exit the child, then take a read-only
    /// FOLL_GET reference on every page of the parent's region, held through the iteration.
    /// </summary>
    [IterationSetup(Target = nameof(ChildExitedPageReferenced))]
    public void ForkExitChildAndReferencePages()
    {
        DropPrevious();
        _parent!.Fork().Dispose();
        _references = _cpu!.GetUserPages(_parent, _region, RegionPages, GupFlags.None);
        StartIteration(expectCopies: Rule != CowReuse.MapCount);
    }

    /// <summary>A write to a page shared with a live child: copied under every rule.</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public void LiveChild() => WriteChunk();

    /// <summary>A write to a page the parent alone maps and references: reused under every rule.</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public void ChildExited() => WriteChunk();

    /// <summary>
    /// A write to a page the parent alone maps but also holds a plain reference on: reused by
    /// <see cref="CowReuse.MapCount"/>, copied by the other two rules.
    /// </summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public void ChildExitedPageReferenced() => WriteChunk();

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

    /// <summary>Checks the iteration that just ended, then drops its references and exits its child.</summary>
    private void DropPrevious()
    {
        CheckPreviousIteration();
        _references?.Dispose();
        _references = null;
        _child?.Dispose();
        _child = null;
    }

    private void StartIteration(bool expectCopies)
    {
        _atFork = _machine!.Stats;
        _expectCopies = expectCopies;
        _next = 0;
    }

    /// <summary>
    /// Throws unless every page written since the last fork took exactly one write-protect fault that copied (or
    /// reused) as expected, fork copied no page early, and nothing else faulted.
    /// </summary>
    private void CheckPreviousIteration()
    {
        var before = _atFork!;
        var after = _machine!.Stats;
        var written = (long)_next * PagesPerChunk;
        var wpFaults = after.WriteProtectFaults - before.WriteProtectFaults;
        var copies = after.CowCopies - before.CowCopies;
        var reuses = after.CowReuses - before.CowReuses;
        var other = (after.AnonymousFaults - before.AnonymousFaults)
                    + (after.ZeroPageFaults - before.ZeroPageFaults)
                    + (after.FaultRetries - before.FaultRetries)
                    + (after.SpuriousFaults - before.SpuriousFaults)
                    + (after.ForkPinnedCopies - before.ForkPinnedCopies);
        if (wpFaults != written || copies != (_expectCopies ? written : 0) || reuses != (_expectCopies ? 0 : written) || other != 0)
        {
            throw new InvalidOperationException(
                $"{Rule}: {written} pages written since the fork took {wpFaults} write-protect faults, {copies} copies, {reuses} reuses "
                + $"and {other} other faults or early fork copies; expected every one a {(_expectCopies ? "copy" : "reuse")} and nothing else.");
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
