using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// What rule (d) costs (<see cref="MachineOptions.WriteProtectBeforeSwap"/>: reclaim makes every writable entry of an
/// anonymous page read-only through the rmap and flushes the TLB, a batch of 32 pages at a time, before the page
/// enters the swap cache and is unmapped), without and with it in one run, on a one-CPU machine with the scheduling
/// hook and the engine's run-time checks off (<see cref="FacadeConfig"/>). Two workloads, each per page:
/// <list type="bullet">
/// <item><see cref="Reclaim"/>: <see cref="Machine.Reclaim"/> of pages mapped writable and dirty, each written to its
/// slot and freed. Every page it takes is mapped writable, so under rule (d) every page pays its write-protect (an
/// rmap walk, the PTL, the entry rewritten) and every batch a second flush.</item>
/// <item><see cref="WriteAfterSwapOut"/>: a store to each page of a swapped-out region, so each takes a write fault on
/// its swap entry (<c>do_swap_page</c>: a new frame, the slot read into it, the slot freed, the page mapped writable
/// because the entry is exclusive): what a process that writes its swapped memory pays. Rule (d) should change
/// nothing here (the page it write-protected keeps AnonExclusive, so its swap entry is exclusive as without it); the
/// checks below hold it to that.</item>
/// </list>
/// Together the two are a swap round trip with a store on the way back (<see cref="SwapBenchmarks.RoundTrip"/> measures
/// one with a load, as one operation); measured apart, the cost rule (d) adds to reclaim is not diluted by the fault.
/// With one CPU a flush is the local one only: what a shootdown's IPIs to other CPUs running the mm would add to rule
/// (d)'s second flush per batch is not in these figures.
/// <para>
/// Set-up as in <see cref="FaultBenchmarks"/>: <see cref="GlobalSetup"/> maps one 64 MiB region, 64 chunks of 256
/// pages, on a machine with as many swap slots as the region has pages and a few more frames. An iteration is exactly
/// <see cref="Chunks"/> invocations (InvocationCount). Before a <see cref="Reclaim"/> iteration an [IterationSetup],
/// not measured, swaps the whole region out and writes every page back in, so that every page is a new frame, mapped
/// writable and dirty, that the reclaim clock has not looked at; each invocation then reclaims 256 pages, wherever the
/// clock's hand finds them, and the iteration the whole region, both looks at every page included (the first finds
/// the A bit the store set and clears it, the second reclaims). Before a <see cref="WriteAfterSwapOut"/> iteration the
/// set-up swaps the whole region out; each invocation writes every page of the next chunk. OperationsPerInvoke = 256,
/// so Mean and Allocated are per page.
/// </para>
/// <para>
/// Every set-up and the clean-up check from <see cref="Machine.Stats"/> that each page reclaim freed was written to
/// its slot, that each page written after its swap-out was read back from its slot, that no write took a
/// write-protect fault (every swap-in mapped its page writable at once), and that rule (d) write-protected one entry
/// per page swapped out and kept no page (without it, that nothing was write-protected); a measured reclaim that frees
/// fewer than 256 pages throws. BenchmarkDotNet's jitting stage runs an iteration of one invocation; the set-ups
/// allow for that. <see cref="GlobalSetup"/> runs both workloads a few times first, so every path measured is at tier
/// 1 and every slot has its storage (the region fills the device at each swap-out): the measured iterations allocate
/// nothing.
/// </para>
/// <para>
/// Named for the rule rather than the option so that <c>--filter '*SwapBenchmarks*'</c> still selects
/// <see cref="SwapBenchmarks"/> alone; run these with <c>--filter '*RuleD*'</c>.
/// </para>
/// </summary>
[Config(typeof(FacadeConfig))]
[MemoryDiagnoser]
[InvocationCount(Chunks)]
public class RuleDBenchmarks
{
    /// <summary>Chunks in the region; also the invocations per iteration.</summary>
    public const int Chunks = 64;

    /// <summary>4 KiB pages per chunk, and pages reclaimed per <see cref="Reclaim"/> invocation.</summary>
    public const int PagesPerChunk = SwapBenchmarks.Pages;

    /// <summary>Pages in the region; also the machine's swap slots.</summary>
    public const int RegionPages = Chunks * PagesPerChunk;

    private const ulong PageBytes = FaultBenchmarks.PageBytes;
    private const ulong ChunkBytes = PagesPerChunk * PageBytes;
    private const ulong RegionBytes = Chunks * ChunkBytes;

    private Machine? _machine;
    private Process? _process;
    private Cpu? _cpu;
    private ulong _region;
    private int _next;
    private Workload _running;
    private int _swappedOut;
    private long _swapOuts;
    private long _swapIns;

    private enum Workload
    {
        None,
        Reclaim,
        WriteAfterSwapOut,
    }

    /// <summary>Whether reclaim applies rule (d) (<see cref="MachineOptions.WriteProtectBeforeSwap"/>).</summary>
    [Params(false, true)]
    public bool WriteProtectBeforeSwap { get; set; }

    /// <summary>
    /// A one-CPU machine with rule (d) or without, room for the region and its tables, and a slot for every page of the
    /// region; maps and writes the region, then runs both workloads a few times (see the class comment).
    /// </summary>
    [GlobalSetup]
    public void GlobalSetup()
    {
        _machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = RegionPages + 1_024,
            SwapSlots = RegionPages,
            WriteProtectBeforeSwap = WriteProtectBeforeSwap,
        });
        _process = _machine.CreateProcess();
        _cpu = _machine.Cpus[0];
        _region = _process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        WriteRegion();

        // Tier 1 before BenchmarkDotNet's warm-up (see FaultBenchmarks.GlobalSetup).
        for (var round = 0; round < 4; round++)
        {
            SwapOutAndWriteBack();
            for (var invocation = 0; invocation < Chunks; invocation++)
            {
                Reclaim();
            }

            SwapOut();
            for (var invocation = 0; invocation < Chunks; invocation++)
            {
                WriteAfterSwapOut();
            }

            Thread.Sleep(200);
        }

        EndIteration("the set-up");
        _machine.CheckInvariants();
    }

    /// <summary>Checks the last iteration and the machine, then exits the process.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        EndIteration("the last iteration");
        _process!.Dispose();
        _machine!.CheckInvariants();
        _machine.Dispose();
    }

    /// <summary>
    /// Before a <see cref="Reclaim"/> iteration: checks the previous one, swaps out whatever of the region is resident
    /// and writes every page back in (a write fault on each swap entry).
    /// </summary>
    [IterationSetup(Target = nameof(Reclaim))]
    public void SwapOutAndWriteBack()
    {
        EndIteration("an iteration");
        SwapOutRegion();
        WriteRegion();
        _running = Workload.Reclaim;
    }

    /// <summary>Before a <see cref="WriteAfterSwapOut"/> iteration: checks the previous one, swaps out whatever of the region is resident.</summary>
    [IterationSetup(Target = nameof(WriteAfterSwapOut))]
    public void SwapOut()
    {
        EndIteration("an iteration");
        SwapOutRegion();
        _running = Workload.WriteAfterSwapOut;
    }

    /// <summary>
    /// Reclaims 256 pages mapped writable and dirty: each aged, write-protected first under rule (d), unmapped, written
    /// to its slot and freed, with one flush per batch of 32 pages, two under rule (d).
    /// </summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public void Reclaim()
    {
        var freed = _machine!.Reclaim(PagesPerChunk);
        if (freed != PagesPerChunk)
        {
            throw new InvalidOperationException($"reclaim freed {freed} of {PagesPerChunk} pages");
        }

        _next++;
    }

    /// <summary>Writes one word to every page of the next chunk, each swapped out: a write fault on each swap entry.</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public void WriteAfterSwapOut()
    {
        var cpu = _cpu!;
        var process = _process!;
        var chunk = _region + ((ulong)_next++ * ChunkBytes);
        for (ulong page = 0; page < ChunkBytes; page += PageBytes)
        {
            cpu.Write(process, chunk + page, page + 1);
        }
    }

    /// <summary>Counts what the invocations since the last set-up swapped out or in, and checks the machine's counts.</summary>
    private void EndIteration(string when)
    {
        var pages = _next * PagesPerChunk;
        if (_running == Workload.Reclaim)
        {
            _swappedOut += pages;
            _swapOuts += pages;
        }
        else if (_running == Workload.WriteAfterSwapOut)
        {
            _swappedOut -= pages;
            _swapIns += pages;
        }

        _running = Workload.None;
        _next = 0;
        Check(when);
    }

    /// <summary>Reclaims until every page of the region is swapped out; throws if reclaim stops freeing.</summary>
    private void SwapOutRegion()
    {
        for (var calls = 0; _swappedOut < RegionPages; calls++)
        {
            if (calls == 4)
            {
                throw new InvalidOperationException($"{calls} calls of Reclaim left {RegionPages - _swappedOut} of {RegionPages} pages resident");
            }

            var freed = _machine!.Reclaim(RegionPages - _swappedOut);
            _swappedOut += freed;
            _swapOuts += freed;
        }
    }

    /// <summary>Writes one word to every page of the region; each page swapped out is read back in.</summary>
    private void WriteRegion()
    {
        var cpu = _cpu!;
        var process = _process!;
        for (ulong page = 0; page < RegionBytes; page += PageBytes)
        {
            cpu.Write(process, _region + page, page + 1);
        }

        _swapIns += _swappedOut;
        _swappedOut = 0;
    }

    /// <summary>
    /// Throws unless the machine swapped out and in exactly the pages counted, took no write-protect fault, and rule
    /// (d) write-protected one entry per page swapped out and kept none (without it, write-protected none).
    /// </summary>
    private void Check(string when)
    {
        var stats = _machine!.Stats;
        var writeProtects = WriteProtectBeforeSwap ? _swapOuts : 0;
        if (stats.SwapOuts != _swapOuts || stats.SwapIns != _swapIns || stats.ReclaimWriteProtects != writeProtects
            || stats.ReclaimKeptWritable != 0 || stats.WriteProtectFaults != 0)
        {
            throw new InvalidOperationException(
                $"{when} (rule (d) {(WriteProtectBeforeSwap ? "on" : "off")}): {stats.SwapOuts:N0} swap-outs, {stats.SwapIns:N0} swap-ins, "
                + $"{stats.ReclaimWriteProtects:N0} entries write-protected by reclaim, {stats.ReclaimKeptWritable:N0} pages kept writable and "
                + $"{stats.WriteProtectFaults:N0} write-protect faults; expected {_swapOuts:N0}, {_swapIns:N0}, {writeProtects:N0}, 0 and 0.");
        }
    }
}
