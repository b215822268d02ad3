using System.Globalization;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// The <c>pagefault</c> mode: the kernel's page_fault1 (<see cref="NativePageFault1"/>) for 1 thread, 2 threads and
/// 2 processes, then the same loop on the engine (<see cref="EnginePageFault1"/>) for 1 thread, 2 threads sharing a
/// process and 2 threads with a process each, with freed-frame poisoning on and off, and a table of faults/s and
/// the engine/kernel ratio; then each engine run's per-phase breakdown. Options: <c>--duration S</c> (measured
/// seconds per configuration, default 5), <c>--warmup S</c> (default 1), <c>--skip-native</c>, <c>--skip-baseline</c>,
/// <c>--cpu-stride N</c> (worker i drives CPU i x N; see <see cref="EnginePageFault1.Measure"/>), and, to profile one
/// engine configuration, <c>--only single|shared|separate|machines</c> and <c>--poison on|off|both</c>. The last
/// engine configuration, two threads each on its own machine, is a diagnostic with no kernel counterpart: it shows
/// how the engine scales when the threads share nothing. Before the per-run breakdown the mode also measures
/// <see cref="FrameClearingBaseline"/>, the memory-traffic ceiling of the loop.
/// </summary>
public static class PageFaultHarness
{
    // Name, workers, whether the kernel runs them as processes, and how the engine shares address spaces.
    private static readonly (string Name, int Workers, bool Processes, EngineSharing Sharing)[] s_rows =
    [
        ("1 thread", 1, false, EngineSharing.SingleThread),
        ("2 threads, one process", 2, false, EngineSharing.SharedProcess),
        ("2 processes", 2, true, EngineSharing.SeparateProcesses),
        ("2 machines (diagnostic)", 2, false, EngineSharing.SeparateMachines),
    ];

    /// <summary>Runs the mode; returns the process exit code.</summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var duration = TimeSpan.FromSeconds(5);
        var warmup = TimeSpan.FromSeconds(1);
        var skipNative = false;
        var skipBaseline = false;
        var cpuStride = 1;
        EngineSharing? only = null;
        bool[] poisonSettings = [true, false];
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--duration" when i + 1 < args.Length:
                    duration = TimeSpan.FromSeconds(double.Parse(args[++i], CultureInfo.InvariantCulture));
                    break;
                case "--warmup" when i + 1 < args.Length:
                    warmup = TimeSpan.FromSeconds(double.Parse(args[++i], CultureInfo.InvariantCulture));
                    break;
                case "--skip-native":
                    skipNative = true;
                    break;
                case "--skip-baseline":
                    skipBaseline = true;
                    break;
                case "--cpu-stride" when i + 1 < args.Length:
                    cpuStride = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--only" when i + 1 < args.Length:
                    only = args[++i] switch
                    {
                        "single" => EngineSharing.SingleThread,
                        "shared" => EngineSharing.SharedProcess,
                        "separate" => EngineSharing.SeparateProcesses,
                        "machines" => EngineSharing.SeparateMachines,
                        _ => null,
                    };
                    if (only is null)
                    {
                        Console.Error.WriteLine($"--only takes single, shared, separate or machines, not '{args[i]}'");
                        return 2;
                    }

                    break;
                case "--poison" when i + 1 < args.Length:
                    poisonSettings = args[++i] switch
                    {
                        "on" => [true],
                        "off" => [false],
                        _ => [true, false],
                    };
                    break;
                default:
                    Console.Error.WriteLine(
                        $"unknown argument '{args[i]}'; usage: pagefault [--duration S] [--warmup S] [--skip-native] [--skip-baseline] [--cpu-stride N] [--only single|shared|separate|machines] [--poison on|off|both]");
                    return 2;
            }
        }

        if (SchedulingHook.IsEnabled)
        {
            Console.Error.WriteLine(
                $"The scheduling hook is enabled ({SchedulingHook.EnvironmentVariable}=1?): page-fault speed is measured with it off. Unset it and rerun.");
            return 1;
        }

        Console.WriteLine(
            $"page_fault1: 128 MiB private anonymous regions, one write per 4 KiB page, then munmap; {warmup.TotalSeconds:0.#} s warm-up, " +
            $"{duration.TotalSeconds:0.#} s measured per configuration; .NET {Environment.Version}, {Environment.ProcessorCount} logical cores, " +
            $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        Console.WriteLine($"load average at start: {LoadAverage()} (other work on the machine skews every figure below)");

        var rows = only is null ? s_rows : s_rows.Where(r => r.Sharing == only).ToArray();
        var kernel = new double?[rows.Length];
        if (skipNative)
        {
            Console.WriteLine("kernel: skipped (--skip-native)");
        }
        else
        {
            var binary = NativePageFault1.Build(out var problem);
            if (binary is null)
            {
                Console.WriteLine($"kernel: not measured, {problem}; continuing with the engine only");
            }
            else
            {
                for (var i = 0; i < rows.Length; i++)
                {
                    var row = rows[i];
                    if (row.Sharing == EngineSharing.SeparateMachines)
                    {
                        continue;
                    }

                    kernel[i] = NativePageFault1.Run(binary, row.Workers, row.Processes, warmup, duration, out problem);
                    Console.WriteLine(kernel[i] is { } rate
                        ? $"kernel {row.Name}: {rate:N0} faults/s"
                        : $"kernel {row.Name}: not measured, {problem}");
                }
            }
        }

        var poisoned = new PageFaultRunResult?[rows.Length];
        var unpoisoned = new PageFaultRunResult?[rows.Length];
        for (var i = 0; i < rows.Length; i++)
        {
            var row = rows[i];
            foreach (var poison in poisonSettings)
            {
                var result = EnginePageFault1.Measure(row.Sharing, row.Workers, poison, warmup, duration, cpuStride);
                (poison ? poisoned : unpoisoned)[i] = result;
                Console.WriteLine($"engine {row.Name}, poison {(poison ? "on" : "off")}: {result.FaultsPerSecond:N0} faults/s");
            }
        }

        Console.WriteLine();
        Console.WriteLine("| configuration | kernel faults/s | engine faults/s (poison on) | engine / kernel | engine faults/s (poison off) | engine / kernel |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        for (var i = 0; i < rows.Length; i++)
        {
            Console.WriteLine(
                $"| {rows[i].Name} | {Format(kernel[i])} | {Format(poisoned[i]?.FaultsPerSecond)} | {Ratio(poisoned[i]?.FaultsPerSecond, kernel[i])} " +
                $"| {Format(unpoisoned[i]?.FaultsPerSecond)} | {Ratio(unpoisoned[i]?.FaultsPerSecond, kernel[i])} |");
        }

        if (!skipBaseline)
        {
            PrintBaseline(rows.Select(r => r.Workers).Distinct(), warmup, duration);
        }

        Console.WriteLine();
        Console.WriteLine("Engine breakdown (regions wholly inside the window; times are each worker's wall time, averaged over workers):");
        Console.WriteLine();
        Console.WriteLine("| configuration | poison | regions | touch ns/page | munmap ns/page | mmap µs | alloc B/page (touch) | alloc B/munmap | alloc B/mmap | anon faults/page | shootdowns/region | targets/shootdown | fault retries |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for (var i = 0; i < rows.Length; i++)
        {
            foreach (var (label, run) in new[] { ("on", poisoned[i]), ("off", unpoisoned[i]) })
            {
                if (run is not { } r)
                {
                    continue;
                }

                Console.WriteLine(
                    $"| {rows[i].Name} | {label} | {r.Regions:N0} | {r.TouchNsPerPage:N1} | {r.MunmapNsPerPage:N1} | {r.MmapNsPerRegion / 1000:N1} " +
                    $"| {r.TouchBytesAllocatedPerPage:N3} | {r.MunmapBytesAllocatedPerRegion:N0} | {r.MmapBytesAllocatedPerRegion:N0} " +
                    $"| {r.AnonymousFaultsPerPage:N3} | {r.ShootdownsPerRegion:N2} | {r.ShootdownTargetsPerShootdown:N2} | {r.FaultRetries:N0} |");
            }
        }

        Console.WriteLine();
        Console.WriteLine($"load average at end: {LoadAverage()}");
        return 0;
    }

    /// <summary>Measures and prints <see cref="FrameClearingBaseline"/> for each thread count.</summary>
    private static void PrintBaseline(IEnumerable<int> threadCounts, TimeSpan warmup, TimeSpan duration)
    {
        Console.WriteLine();
        Console.WriteLine("Memory-traffic ceiling (FrameClearingBaseline: clear a cold 4 KiB frame and store one word, per thread over its own 128 MiB; poison = also refill every frame with the pattern after each pass):");
        Console.WriteLine();
        Console.WriteLine("| threads | frames/s, clear only | frames/s, clear + poison |");
        Console.WriteLine("|---:|---:|---:|");
        foreach (var threads in threadCounts)
        {
            var clear = FrameClearingBaseline.Measure(threads, poison: false, warmup, duration);
            var clearPoison = FrameClearingBaseline.Measure(threads, poison: true, warmup, duration);
            Console.WriteLine($"| {threads} | {clear:N0} | {clearPoison:N0} |");
        }
    }

    /// <summary>The 1, 5 and 15-minute load averages from /proc/loadavg, or "unknown".</summary>
    private static string LoadAverage()
    {
        try
        {
            return string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3));
        }
        catch (IOException)
        {
            return "unknown";
        }
        catch (UnauthorizedAccessException)
        {
            return "unknown";
        }
    }

    private static string Format(double? rate) => rate is { } r ? r.ToString("N0", CultureInfo.InvariantCulture) : "n/a";

    private static string Ratio(double? engine, double? kernel)
        => engine is { } e && kernel is { } k && k > 0 ? (e / k).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "n/a";
}
