using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of fork of a process whose only mapping is a fully written private anonymous region of
/// <see cref="RegionMiB"/> MiB, on a one-CPU machine with the scheduling hook off (<see cref="FacadeConfig"/>).
/// One invocation is <c>Fork()</c> then <c>child.Dispose()</c> (exit: zap the child's entries, free its tables), so
/// Mean and Allocated are per fork-and-exit; the child never touches memory and no page is copied.
/// <para>
/// Steady state without measuring the set-up, as in <see cref="FaultBenchmarks"/>: <see cref="GlobalSetup"/> creates
/// <see cref="Parents"/> processes, each with its own region, and an iteration is exactly <see cref="Parents"/>
/// invocations (InvocationCount), each forking the next parent. For <see cref="ForkWrittenRegion"/> an
/// [IterationSetup], not measured, writes every page of every parent again, so each fork finds writable, exclusive
/// entries and must write-protect them and flush the parent's TLB, as a first fork does (the writes take
/// write-protect faults that reuse the page, the child being gone). <see cref="ForkProtectedRegion"/> skips that: each
/// fork finds the entries as the previous fork left them (present, read-only, mapped once) and has nothing to
/// write-protect or flush.
/// </para>
/// </summary>
[Config(typeof(FacadeConfig))]
[MemoryDiagnoser]
[InvocationCount(Parents)]
public class ForkBenchmarks
{
    /// <summary>Parent processes; also the invocations per iteration.</summary>
    public const int Parents = 32;

    private const ulong PageBytes = 4096;

    private Machine? _machine;
    private Process[] _parents = [];
    private Cpu? _cpu;
    private ulong[] _regions = [];
    private int _next;

    /// <summary>Size of each parent's written region, in MiB.</summary>
    [Params(1, 4, 16)]
    public int RegionMiB { get; set; }

    private ulong RegionBytes => (ulong)RegionMiB << 20;

    /// <summary>A one-CPU machine with room for every parent's region and the tables of parents and children.</summary>
    [GlobalSetup]
    public void GlobalSetup()
    {
        var pagesPerRegion = (int)(RegionBytes / PageBytes);
        _machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = (Parents * pagesPerRegion) + 8_192,
            PteLayout = PteLayout.Native64,
        });
        _cpu = _machine.Cpus[0];
        _parents = new Process[Parents];
        _regions = new ulong[Parents];
        for (var i = 0; i < Parents; i++)
        {
            _parents[i] = _machine.CreateProcess();
            _regions[i] = _parents[i].Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        }

        // Bring fork, exit and the reuse fault to tier 1 before BenchmarkDotNet's warm-up (see FaultBenchmarks). Each
        // round forks written, then protected, parents; the last leaves every entry read-only, the state
        // ForkProtectedRegion expects (ForkWrittenRegion's iteration setup rewrites anyway).
        for (var round = 0; round < 4; round++)
        {
            WriteEveryPage();
            foreach (var parent in _parents)
            {
                parent.Fork().Dispose();
                parent.Fork().Dispose();
            }

            Thread.Sleep(200);
        }
    }

    /// <summary>Checks the machine and exits every process.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _machine!.CheckInvariants();
        foreach (var parent in _parents)
        {
            parent.Dispose();
        }

        _machine.Dispose();
    }

    /// <summary>Before a <see cref="ForkWrittenRegion"/> iteration: every page of every parent writable and exclusive again.</summary>
    [IterationSetup(Target = nameof(ForkWrittenRegion))]
    public void RewriteRegions()
    {
        WriteEveryPage();
        _next = 0;
    }

    /// <summary>Before a <see cref="ForkProtectedRegion"/> iteration: only the parent counter is reset.</summary>
    [IterationSetup(Target = nameof(ForkProtectedRegion))]
    public void ResetParent() => _next = 0;

    /// <summary>
    /// Fork of a parent whose pages are all writable and exclusive (just written), then the child's exit: per page,
    /// take a reference and a mapping, clear AnonExclusive, write-protect the parent's entry, copy it to the child;
    /// one TLB flush of the parent; then the exit zaps the child's entries and frees its tables.
    /// </summary>
    [Benchmark(Baseline = true)]
    public void ForkWrittenRegion()
    {
        _parents[_next++].Fork().Dispose();
    }

    /// <summary>
    /// Fork of a parent whose entries are already read-only (left so by the previous fork, whose child has exited),
    /// then the child's exit: as <see cref="ForkWrittenRegion"/> without the write-protection and the flush.
    /// </summary>
    [Benchmark]
    public void ForkProtectedRegion()
    {
        _parents[_next++].Fork().Dispose();
    }

    private void WriteEveryPage()
    {
        var cpu = _cpu!;
        for (var i = 0; i < Parents; i++)
        {
            for (ulong page = 0; page < RegionBytes; page += PageBytes)
            {
                cpu.Write(_parents[i], _regions[i] + page, page);
            }
        }
    }
}
