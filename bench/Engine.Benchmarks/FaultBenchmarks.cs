using BenchmarkDotNet.Attributes;

namespace Engine.Benchmarks;

/// <summary>
/// The cost of one anonymous fault, one write-protect fault from the zero page, and one zap of 512 pages, on a
/// one-CPU machine with the scheduling hook off, each with the engine's run-time checks off and on
/// (<see cref="ChecksConfig"/>: jobs <c>checks-off</c> and <c>checks-on</c>).
/// <para>
/// Steady state without measuring the set-up: <see cref="GlobalSetup"/> maps one 128 MiB region, 64 chunks of 2 MiB
/// (512 pages, one PTE table each). An iteration is exactly <see cref="Chunks"/> invocations (InvocationCount), and
/// each invocation works on the next chunk. Before every iteration an [IterationSetup] puts every chunk in the state
/// the benchmark needs, outside the measurement: for the fault benchmarks the whole region is zapped
/// (<c>MadviseDontNeed</c>, which keeps the page tables, so a fault never allocates a table), for the zap benchmark
/// every page is written. The fault benchmarks set OperationsPerInvoke = 512, so Mean and Allocated are per fault
/// (per page); the zap benchmark's are per zap of 512 pages.
/// </para>
/// </summary>
[Config(typeof(ChecksConfig))]
[MemoryDiagnoser]
[InvocationCount(Chunks)]
public class FaultBenchmarks
{
    /// <summary>2 MiB chunks in the region; also the invocations per iteration.</summary>
    public const int Chunks = 64;

    /// <summary>4 KiB pages per chunk.</summary>
    public const int PagesPerChunk = 512;

    /// <summary>Bytes per page.</summary>
    internal const ulong PageBytes = 4096;

    /// <summary>Bytes per chunk.</summary>
    internal const ulong ChunkBytes = PagesPerChunk * PageBytes;

    /// <summary>Bytes in the whole region.</summary>
    internal const ulong RegionBytes = Chunks * ChunkBytes;

    private Machine? _machine;
    private Process? _process;
    private Cpu? _cpu;
    private ulong _region;
    private int _next;

    /// <summary>Whether the machine poisons freed frames (it costs in the zap, where frames are freed).</summary>
    [Params(true, false)]
    public bool PoisonFreedFrames { get; set; }

    /// <summary>A one-CPU machine with room for the region, its tables and the CPU's frame cache; maps the region.</summary>
    [GlobalSetup]
    public void GlobalSetup()
    {
        _machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = 40_000,
            PteLayout = PteLayout.Native64,
            PoisonFreedFrames = PoisonFreedFrames,
        });
        _process = _machine.CreateProcess();
        _cpu = _machine.Cpus[0];
        _region = _process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);

        // Populate once so every page table exists before the first measured fault.
        WriteEveryPage();

        // Bring every measured path to tier 1 before BenchmarkDotNet's own warm-up: with an [IterationSetup] and short
        // iterations, a path first run in the measured iterations (Cpu.Read, for instance) can stay at tier 0 through
        // them, which made a read fault measure 570 ns instead of 70 ns in a first run.
        for (var round = 0; round < 4; round++)
        {
            _process.MadviseDontNeed(_region, RegionBytes);
            for (ulong page = 0; page < RegionBytes; page += PageBytes)
            {
                _ = _cpu.Read(_process, _region + page);
                _cpu.Write(_process, _region + page, page);
            }

            _process.MadviseDontNeed(_region, RegionBytes);
            WriteEveryPage();
            Thread.Sleep(200);
        }
    }

    /// <summary>Checks the machine and exits the process.</summary>
    [GlobalCleanup]
    public void GlobalCleanup()
    {
        _machine!.CheckInvariants();
        _machine.Dispose();
    }

    /// <summary>Before a fault iteration: every page of the region unmapped again, tables kept.</summary>
    [IterationSetup(Targets = [nameof(WriteFault), nameof(ReadFault), nameof(ReadThenWriteFault)])]
    public void ZapRegion()
    {
        _process!.MadviseDontNeed(_region, RegionBytes);
        _next = 0;
    }

    /// <summary>Before a zap iteration: every page of the region written (faulted in).</summary>
    [IterationSetup(Targets = [nameof(Zap512Pages)])]
    public void PopulateRegion()
    {
        WriteEveryPage();
        _next = 0;
    }

    /// <summary>A write to an untouched page: <c>do_anonymous_page</c> allocates, zeroes and maps a frame.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = PagesPerChunk)]
    public void WriteFault()
    {
        var cpu = _cpu!;
        var process = _process!;
        var chunk = _region + ((ulong)_next++ * ChunkBytes);
        for (ulong page = 0; page < ChunkBytes; page += PageBytes)
        {
            cpu.Write(process, chunk + page, page);
        }
    }

    /// <summary>A read of an untouched page: maps the shared zero page read-only (no frame allocated).</summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public ulong ReadFault()
    {
        var cpu = _cpu!;
        var process = _process!;
        var chunk = _region + ((ulong)_next++ * ChunkBytes);
        ulong sum = 0;
        for (ulong page = 0; page < ChunkBytes; page += PageBytes)
        {
            sum += cpu.Read(process, chunk + page);
        }

        return sum;
    }

    /// <summary>
    /// A read, then a write, of an untouched page: the read maps the zero page, the write takes a write-protect
    /// fault that copies it (<c>wp_page_copy</c> from the zero page: allocate, zero, replace the entry, flush the
    /// TLB). Compare with <see cref="WriteFault"/>, which reaches the same state with one fault.
    /// </summary>
    [Benchmark(OperationsPerInvoke = PagesPerChunk)]
    public void ReadThenWriteFault()
    {
        var cpu = _cpu!;
        var process = _process!;
        var chunk = _region + ((ulong)_next++ * ChunkBytes);
        for (ulong page = 0; page < ChunkBytes; page += PageBytes)
        {
            _ = cpu.Read(process, chunk + page);
            cpu.Write(process, chunk + page, page);
        }
    }

    /// <summary><c>MadviseDontNeed</c> of a fully written 2 MiB chunk: 512 entries cleared, one flush, 512 frames freed.</summary>
    [Benchmark]
    public void Zap512Pages()
    {
        _process!.MadviseDontNeed(_region + ((ulong)_next++ * ChunkBytes), ChunkBytes);
    }

    private void WriteEveryPage()
    {
        for (ulong page = 0; page < RegionBytes; page += PageBytes)
        {
            _cpu!.Write(_process!, _region + page, page);
        }
    }
}
