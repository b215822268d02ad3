using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of a swap round trip per page: <see cref="Machine.Reclaim"/> writes a region's pages to their swap slots
/// and frees them, then a load from each page faults it back in (<c>do_swap_page</c>: a new frame, the slot read into
/// it, the swap cache, the entry), on a one-CPU machine with the scheduling hook off, each with the engine's run-time
/// checks off and on (<see cref="ChecksConfig"/>).
/// <para>
/// <see cref="GlobalSetup"/> maps and writes a region of <see cref="Pages"/> pages and runs a few round trips, so every
/// slot the pages use has its storage and each page sits in the swap cache after its read (its slot kept): the
/// measured round trips allocate nothing. One invocation is one round trip of every page; OperationsPerInvoke =
/// <see cref="Pages"/>, so Mean and Allocated are per page. The set-up and the clean-up check from
/// <see cref="Machine.Stats"/> that every invocation swapped every page out and in, and the machine's invariants.
/// </para>
/// </summary>
[Config(typeof(ChecksConfig))]
[MemoryDiagnoser]
public class SwapBenchmarks
{
    /// <summary>Pages swapped out and in per invocation.</summary>
    public const int Pages = 256;

    private const ulong PageBytes = 4096;

    private Machine? _machine;
    private Process? _process;
    private Cpu? _cpu;
    private ulong _region;
    private long _roundTrips;

    /// <summary>A one-CPU machine with swap; the region mapped, written and swapped out and in a few times.</summary>
    [GlobalSetup]
    public void GlobalSetup()
    {
        _machine = new Machine(new MachineOptions { Cpus = 1, Frames = 4_096, SwapSlots = 1_024 });
        _process = _machine.CreateProcess();
        _cpu = _machine.Cpus[0];
        _region = _process.Mmap(Pages * PageBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (ulong page = 0; page < Pages * PageBytes; page += PageBytes)
        {
            _cpu.Write(_process, _region + page, page + 1);
        }

        for (var round = 0; round < 8; round++)
        {
            _ = RoundTrip();
        }

        Check("the set-up's round trips");
    }

    /// <summary>Checks every round trip swapped every page out and in, checks the machine.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        Check("the run");
        _process!.Dispose();
        _machine!.CheckInvariants();
        _machine.Dispose();
    }

    /// <summary>Reclaims the region's pages to swap and loads each back; returns the sum of the words read.</summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public ulong RoundTrip()
    {
        var freed = _machine!.Reclaim(Pages);
        if (freed != Pages)
        {
            throw new InvalidOperationException($"reclaim freed {freed} of {Pages} pages");
        }

        var sum = 0UL;
        for (ulong page = 0; page < Pages * PageBytes; page += PageBytes)
        {
            sum += _cpu!.Read(_process!, _region + page);
        }

        _roundTrips++;
        return sum;
    }

    private void Check(string when)
    {
        var stats = _machine!.Stats;
        if (stats.SwapIns != _roundTrips * Pages || stats.SwapOuts < Pages)
        {
            throw new InvalidOperationException($"{when}: {stats.SwapIns:N0} swap-ins for {_roundTrips:N0} round trips of {Pages} pages");
        }

        _machine.CheckInvariants();
    }
}
