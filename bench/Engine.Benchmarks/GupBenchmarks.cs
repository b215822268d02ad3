using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of pinning and unpinning pages that are already mapped (<c>pin_user_pages_fast</c> then
/// <c>unpin_user_pages</c>), by the lockless fast path and by the slow path under the mmap_lock and the PTL, and of a
/// plain reference (<c>get_user_pages_fast</c>, FOLL_GET) for comparison, on a one-CPU machine with the scheduling
/// hook off, each with the engine's run-time checks off and on (<see cref="ChecksConfig"/>).
/// <para>
/// <see cref="GlobalSetup"/> maps and writes one 2 MiB private anonymous region (512 pages, one PTE table), so every
/// entry is present, writable and maps an exclusive anonymous page: no call below faults, and a pin leaves nothing
/// behind once it is dropped, so there is no per-iteration set-up and BenchmarkDotNet picks the invocation count
/// itself. One invocation takes and drops all 512 pages: 512 calls of one page each (<see cref="PagesPerCall"/> = 1,
/// page after page) or one call of 512 pages. OperationsPerInvoke = 512, so Mean and Allocated are per page; the
/// allocation per call is Allocated × <see cref="PagesPerCall"/>.
/// </para>
/// <para>
/// What proves the intended path: every fast benchmark passes <see cref="GupFlags.FastOnly"/> and throws if it got
/// fewer pages than it asked for (FastOnly returns only what the lockless path took), and the slow benchmark passes
/// <see cref="GupFlags.NoFast"/>. The set-up runs each benchmark's body and checks from <see cref="Machine.Stats"/>
/// that no fault of any kind was taken and no page allocated; <see cref="GlobalCleanup"/> checks the same over the
/// whole run, so the slow path followed every entry at the first look, and the machine's invariants.
/// </para>
/// </summary>
[Config(typeof(ChecksConfig))]
[MemoryDiagnoser]
public class GupBenchmarks
{
    /// <summary>4 KiB pages in the region; also the pages taken and dropped per invocation.</summary>
    public const int Pages = 512;

    private const ulong PageBytes = 4096;

    private Machine? _machine;
    private Process? _process;
    private Cpu? _cpu;
    private ulong _region;
    private MachineStats? _afterSetup;
    private readonly long[] _frames = new long[Pages];

    /// <summary>Pages per call: 512 calls of 1 page, or 1 call of 512 pages, per invocation.</summary>
    [Params(1, 512)]
    public int PagesPerCall { get; set; }

    /// <summary>
    /// A one-CPU machine; maps and writes the region, runs every benchmark's body and checks that none faulted
    /// (which also brings them towards tier 1 before BenchmarkDotNet's own warm-up).
    /// </summary>
    [GlobalSetup]
    public void GlobalSetup()
    {
        _machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = 4_096,
            PteLayout = PteLayout.Native64,
        });
        _process = _machine.CreateProcess();
        _cpu = _machine.Cpus[0];
        _region = _process.Mmap(Pages * PageBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (ulong page = 0; page < Pages * PageBytes; page += PageBytes)
        {
            _cpu.Write(_process, _region + page, page);
        }

        var before = _machine.Stats;
        for (var round = 0; round < 200; round++)
        {
            _ = PinFast();
            _ = PinFastIntoArray();
            _ = GetFast();
            _ = PinSlow();
        }

        CheckNoFaultSince(before, "the set-up's runs of the benchmarks");
        _afterSetup = _machine.Stats;
    }

    /// <summary>Checks that nothing faulted during the run, checks the machine, and exits the process.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        CheckNoFaultSince(_afterSetup!, "the measured run");
        _machine!.CheckInvariants();
        _process!.Dispose();
        _machine.Dispose();
    }

    /// <summary>
    /// A write pin by the lockless path (<see cref="GupFlags.Write"/> | <see cref="GupFlags.FastOnly"/>): per page, a
    /// lockless walk and entry read, a grab of 1,024 references, a full barrier and the re-check of the PMD entry and
    /// the PTE, inside the fork sequence read and the IRQ-off section; then the unpin (dirtying only page-cache pages,
    /// so nothing here) and the drop of the references.
    /// </summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Pages)]
    public int PinFast()
    {
        var cpu = _cpu!;
        var process = _process!;
        var perCall = PagesPerCall;
        var taken = 0;
        for (var page = 0; page < Pages; page += perCall)
        {
            using var pinned = cpu.PinUserPages(process, _region + ((ulong)page * PageBytes), perCall, GupFlags.Write | GupFlags.FastOnly);
            taken += CheckCount(pinned.Count, perCall);
        }

        return taken;
    }

    /// <summary>
    /// <see cref="PinFast"/> through the allocation-free form: the pages pinned into a frame array the benchmark
    /// allocated once (<c>Cpu.PinUserPages(Process, ulong, Span&lt;long&gt;, GupFlags)</c>) and unpinned from it
    /// (<c>Cpu.UnpinUserPages</c>, which first checks that every frame holds a pin): the same walk, no handle.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public int PinFastIntoArray()
    {
        var cpu = _cpu!;
        var process = _process!;
        var perCall = PagesPerCall;
        var frames = _frames.AsSpan(0, perCall);
        var taken = 0;
        for (var page = 0; page < Pages; page += perCall)
        {
            var count = CheckCount(cpu.PinUserPages(process, _region + ((ulong)page * PageBytes), frames, GupFlags.Write | GupFlags.FastOnly), perCall);
            cpu.UnpinUserPages(frames, dirty: false);
            taken += count;
        }

        return taken;
    }

    /// <summary>
    /// A write reference by the lockless path (FOLL_GET, <see cref="GupFlags.Write"/> |
    /// <see cref="GupFlags.FastOnly"/>): as <see cref="PinFast"/> but one reference per page, and no fork sequence.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public int GetFast()
    {
        var cpu = _cpu!;
        var process = _process!;
        var perCall = PagesPerCall;
        var taken = 0;
        for (var page = 0; page < Pages; page += perCall)
        {
            using var references = cpu.GetUserPages(process, _region + ((ulong)page * PageBytes), perCall, GupFlags.Write | GupFlags.FastOnly);
            taken += CheckCount(references.Count, perCall);
        }

        return taken;
    }

    /// <summary>
    /// A write pin by the slow path only (<see cref="GupFlags.Write"/> | <see cref="GupFlags.NoFast"/>): per page,
    /// the mmap_lock for read, the VMA lookup, the walk, the PTL, the entry read and the grab; then the unpin.
    /// </summary>
    [Benchmark(OperationsPerInvoke = Pages)]
    public int PinSlow()
    {
        var cpu = _cpu!;
        var process = _process!;
        var perCall = PagesPerCall;
        var taken = 0;
        for (var page = 0; page < Pages; page += perCall)
        {
            using var pinned = cpu.PinUserPages(process, _region + ((ulong)page * PageBytes), perCall, GupFlags.Write | GupFlags.NoFast);
            taken += CheckCount(pinned.Count, perCall);
        }

        return taken;
    }

    private static int CheckCount(int count, int asked)
    {
        if (count != asked)
        {
            ThrowShort(count, asked);
        }

        return count;
    }

    private static void ThrowShort(int count, int asked)
        => throw new InvalidOperationException($"GUP took {count} of {asked} page(s): the lockless path gave up, so the benchmark did not measure what it claims.");

    /// <summary>Throws if any fault was taken or any page allocated since <paramref name="before"/>.</summary>
    private void CheckNoFaultSince(MachineStats before, string what)
    {
        var after = _machine!.Stats;
        var faults = (after.AnonymousFaults - before.AnonymousFaults)
                     + (after.ZeroPageFaults - before.ZeroPageFaults)
                     + (after.WriteProtectFaults - before.WriteProtectFaults)
                     + (after.FaultRetries - before.FaultRetries)
                     + (after.SpuriousFaults - before.SpuriousFaults);
        var allocated = after.PagesAllocated - before.PagesAllocated;
        if (faults != 0 || allocated != 0)
        {
            throw new InvalidOperationException(
                $"{what} took {faults} fault(s) and allocated {allocated} page(s); GUP of mapped, writable pages should take neither.");
        }
    }
}
