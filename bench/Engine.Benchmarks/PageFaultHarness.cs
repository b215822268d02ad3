using System.Globalization;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// The <c>pagefault</c> mode: will-it-scale's page_fault1, page_fault2 and page_fault3 (<see cref="PageFaultTest"/>)
/// on the kernel (<see cref="NativePageFault"/>) for 1 thread, 2 threads and 2 processes, then the same loops on the
/// engine (<see cref="EnginePageFault"/>) for 1 thread, 2 threads sharing a process and 2 threads with a process
/// each, with freed-frame poisoning on and off; for each test a table of pages touched per second and the
/// engine/kernel ratio; then each engine run's per-phase breakdown. The file tests run on the kernel once per
/// directory of <c>--kernel-dirs</c> (default <c>/tmp</c>, where will-it-scale puts its files, and <c>/dev/shm</c>,
/// tmpfs): the filesystem decides how many pages one kernel fault maps, and the native program reports it (minor
/// faults per page).
/// <para>
/// Options: <c>--test pf1|pf2|pf3|all</c> (or a comma-separated list; default all), <c>--duration S</c> (measured
/// seconds per configuration, default 5), <c>--warmup S</c> (default 1), <c>--skip-native</c>,
/// <c>--skip-baseline</c>, <c>--kernel-dirs DIR[,DIR]</c>, <c>--cpu-stride N</c> (worker i drives CPU i x N; see
/// <see cref="EnginePageFault.Measure"/>), and, to profile one engine configuration, <c>--only
/// single|shared|separate|machines</c> and <c>--poison on|off|both</c>; <c>--working-set F</c> (1 to 16, default 1)
/// gives the engine's machine F times less memory than the workers' peak and swap for all of it, so page_fault1 runs
/// on direct reclaim (the kernel runs are unaffected; use <c>--skip-native</c>). The last engine configuration, two threads
/// each on its own machine, is a diagnostic with no kernel counterpart: it shows how the engine scales when the
/// threads share nothing. When page_fault1 is among the tests the mode also measures
/// <see cref="FrameClearingBaseline"/>, the memory-traffic ceiling of its loop.
/// </para>
/// </summary>
public static class PageFaultHarness
{
    private const string Usage =
        "usage: pagefault [--test pf1|pf2|pf3|all|LIST] [--duration S] [--warmup S] [--skip-native] [--skip-baseline] " +
        "[--kernel-dirs DIR[,DIR]] [--cpu-stride N] [--only single|shared|separate|machines] [--poison on|off|both] [--working-set F]";

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
        var workingSet = 1.0;
        EngineSharing? only = null;
        bool[] poisonSettings = [true, false];
        IReadOnlyList<PageFaultTest> tests = PageFaultTest.All;
        string?[] kernelDirs = Directory.Exists("/dev/shm") ? ["/tmp", "/dev/shm"] : ["/tmp"];
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--test" when i + 1 < args.Length:
                    var selected = ParseTests(args[++i]);
                    if (selected is null)
                    {
                        Console.Error.WriteLine($"--test takes pf1, pf2, pf3, all or a comma-separated list, not '{args[i]}'");
                        return 2;
                    }

                    tests = selected;
                    break;
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
                case "--kernel-dirs" when i + 1 < args.Length:
                    kernelDirs = args[++i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    if (kernelDirs.Length == 0)
                    {
                        Console.Error.WriteLine("--kernel-dirs needs at least one directory");
                        return 2;
                    }

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
                case "--working-set" when i + 1 < args.Length:
                    if (!double.TryParse(args[++i], NumberStyles.Float, CultureInfo.InvariantCulture, out workingSet) || !(workingSet >= 1 && workingSet <= 16))
                    {
                        Console.Error.WriteLine($"--working-set takes a factor from 1 to 16, not '{args[i]}'");
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
                    Console.Error.WriteLine($"unknown argument '{args[i]}'; {Usage}");
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
            $"{string.Join(", ", tests)}: one write per 4 KiB page of a 128 MiB mapping, then munmap; {warmup.TotalSeconds:0.#} s warm-up, " +
            $"{duration.TotalSeconds:0.#} s measured per configuration; .NET {Environment.Version}, {Environment.ProcessorCount} logical cores, " +
            $"{System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
        Console.WriteLine($"load average at start: {LoadAverage()} (other work on the machine skews every figure below)");
        if (workingSet > 1)
        {
            Console.WriteLine($"engine working set: {workingSet:0.##} x the memory left for it, swap for all of it (direct reclaim in the faults)");
        }

        Console.WriteLine($"engine run-time checks: {(Engine.Invariants.Checks.Enabled ? "on" : "off")} ({Engine.Invariants.Checks.EnvironmentVariable}=1 turns them on, 0 off; off by default here)");

        var rows = only is null ? s_rows : s_rows.Where(r => r.Sharing == only).ToArray();
        string? nativeDirectory = null;
        if (skipNative)
        {
            Console.WriteLine("kernel: skipped (--skip-native)");
        }
        else
        {
            nativeDirectory = NativePageFault.Build(out var problem);
            if (nativeDirectory is null)
            {
                Console.WriteLine($"kernel: not measured, {problem}; continuing with the engine only");
            }
        }

        var results = new List<TestResults>();
        foreach (var test in tests)
        {
            var result = RunTest(test, rows, nativeDirectory, test.MapsFile ? kernelDirs : [(string?)null], poisonSettings, warmup, duration, cpuStride, workingSet);
            results.Add(result);
            PrintTestTable(result, rows);
        }

        if (!skipBaseline && tests.Contains(PageFaultTest.PageFault1))
        {
            PrintBaseline(rows.Select(r => r.Workers).Distinct(), warmup, duration);
        }

        if (results.Count > 1)
        {
            PrintSummary(results, rows);
        }

        PrintBreakdown(results, rows);
        Console.WriteLine();
        Console.WriteLine($"load average at end: {LoadAverage()}");
        return 0;
    }

    /// <summary>The tests named by a <c>--test</c> value, or null when a name is unknown.</summary>
    private static PageFaultTest[]? ParseTests(string text)
    {
        if (text == "all")
        {
            return [.. PageFaultTest.All];
        }

        var tests = new List<PageFaultTest>();
        foreach (var name in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (PageFaultTest.Parse(name) is not { } test)
            {
                return null;
            }

            tests.Add(test);
        }

        return tests.Count > 0 ? [.. tests] : null;
    }

    /// <summary>Measures one test: the kernel for each row and directory, then the engine for each row and poisoning setting.</summary>
    private static TestResults RunTest(
        PageFaultTest test,
        (string Name, int Workers, bool Processes, EngineSharing Sharing)[] rows,
        string? nativeDirectory,
        string?[] kernelDirs,
        bool[] poisonSettings,
        TimeSpan warmup,
        TimeSpan duration,
        int cpuStride,
        double workingSet)
    {
        Console.WriteLine();
        Console.WriteLine($"## {test.Name}: {test.Description}; each store is one {test.FaultKind} in the engine");
        Console.WriteLine();
        var result = new TestResults(test, kernelDirs, rows.Length);
        if (nativeDirectory is not null)
        {
            for (var i = 0; i < rows.Length; i++)
            {
                var row = rows[i];
                if (row.Sharing == EngineSharing.SeparateMachines)
                {
                    continue;
                }

                for (var d = 0; d < kernelDirs.Length; d++)
                {
                    var run = NativePageFault.Run(nativeDirectory, test, row.Workers, row.Processes, warmup, duration, kernelDirs[d], out var problem);
                    result.Kernel[i, d] = run;
                    var where = kernelDirs[d] is { } dir ? $" (file in {dir})" : "";
                    Console.WriteLine(run is { } r
                        ? $"kernel {test.Name} {row.Name}{where}: {r.PagesPerSecond:N0} pages/s, {FormatFaultsPerPage(r.MinorFaultsPerPage)} minor faults/page"
                        : $"kernel {test.Name} {row.Name}{where}: not measured, {problem}");
                }
            }
        }

        for (var i = 0; i < rows.Length; i++)
        {
            var row = rows[i];
            foreach (var poison in poisonSettings)
            {
                var run = EnginePageFault.Measure(test, row.Sharing, row.Workers, poison, warmup, duration, cpuStride, workingSet);
                (poison ? result.Poisoned : result.Unpoisoned)[i] = run;
                Console.WriteLine($"engine {test.Name} {row.Name}, poison {(poison ? "on" : "off")}: {run.FaultsPerSecond:N0} pages/s");
            }
        }

        return result;
    }

    /// <summary>One test's table: kernel (per directory) and engine (poisoning on and off) pages/s and the ratios.</summary>
    private static void PrintTestTable(TestResults result, (string Name, int Workers, bool Processes, EngineSharing Sharing)[] rows)
    {
        var dirs = result.KernelDirs;
        var kernelHeader = string.Concat(dirs.Select(d => $" kernel pages/s{Where(d)} | minflt/page |"));
        var ratioHeader = dirs.Length == 1 ? "engine / kernel" : $"engine / kernel ({string.Join(" / ", dirs)})";
        Console.WriteLine();
        Console.WriteLine($"{result.Test.Name}, pages touched per second (minflt/page: the kernel's minor faults per page touched, 1.000 = one fault per store):");
        Console.WriteLine();
        Console.WriteLine($"| configuration |{kernelHeader} engine pages/s (poison on) | {ratioHeader} | engine pages/s (poison off) | {ratioHeader} |");
        Console.WriteLine($"|---|{string.Concat(dirs.Select(_ => "---:|---:|"))}---:|---:|---:|---:|");
        for (var i = 0; i < rows.Length; i++)
        {
            var kernelCells = string.Concat(Enumerable.Range(0, dirs.Length).Select(d =>
                $" {Format(result.Kernel[i, d]?.PagesPerSecond)} | {FormatFaultsPerPage(result.Kernel[i, d]?.MinorFaultsPerPage)} |"));
            Console.WriteLine(
                $"| {rows[i].Name} |{kernelCells} {Format(result.Poisoned[i]?.FaultsPerSecond)} | {Ratios(result, i, result.Poisoned[i])} " +
                $"| {Format(result.Unpoisoned[i]?.FaultsPerSecond)} | {Ratios(result, i, result.Unpoisoned[i])} |");
        }
    }

    /// <summary>Every test side by side, engine with poisoning on against the kernel in the first directory.</summary>
    private static void PrintSummary(List<TestResults> results, (string Name, int Workers, bool Processes, EngineSharing Sharing)[] rows)
    {
        Console.WriteLine();
        Console.WriteLine("Summary, pages/s (kernel: file tests in the first --kernel-dirs directory; engine: poisoning on):");
        Console.WriteLine();
        Console.WriteLine($"| configuration |{string.Concat(results.Select(r => $" {r.Test.Name} kernel | {r.Test.Name} engine | ratio |"))}");
        Console.WriteLine($"|---|{string.Concat(results.Select(_ => "---:|---:|---:|"))}");
        for (var i = 0; i < rows.Length; i++)
        {
            var cells = string.Concat(results.Select(r =>
                $" {Format(r.Kernel[i, 0]?.PagesPerSecond)} | {Format(r.Poisoned[i]?.FaultsPerSecond)} | {Ratio(r.Poisoned[i]?.FaultsPerSecond, r.Kernel[i, 0]?.PagesPerSecond)} |"));
            Console.WriteLine($"| {rows[i].Name} |{cells}");
        }
    }

    /// <summary>The per-phase breakdown of every engine run.</summary>
    private static void PrintBreakdown(List<TestResults> results, (string Name, int Workers, bool Processes, EngineSharing Sharing)[] rows)
    {
        Console.WriteLine();
        Console.WriteLine("Engine breakdown (regions wholly inside the window; times are each worker's wall time, averaged over workers):");
        Console.WriteLine();
        Console.WriteLine("| test | configuration | poison | regions | touch ns/page | munmap ns/page | mmap µs | alloc B/page (touch) | alloc B/munmap | alloc B/mmap | faults/page | cache fills/page | shootdowns/region | targets/shootdown | fault retries | swap-outs/page | file drops/page |");
        Console.WriteLine("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var result in results)
        {
            for (var i = 0; i < rows.Length; i++)
            {
                foreach (var (label, run) in new[] { ("on", result.Poisoned[i]), ("off", result.Unpoisoned[i]) })
                {
                    if (run is not { } r)
                    {
                        continue;
                    }

                    Console.WriteLine(
                        $"| {result.Test.Name} | {rows[i].Name} | {label} | {r.Regions:N0} | {r.TouchNsPerPage:N1} | {r.MunmapNsPerPage:N1} | {r.MmapNsPerRegion / 1000:N1} " +
                        $"| {r.TouchBytesAllocatedPerPage:N3} | {r.MunmapBytesAllocatedPerRegion:N0} | {r.MmapBytesAllocatedPerRegion:N0} " +
                        $"| {r.FaultsPerPage:N3} {result.Test.FaultKind} | {r.PageCacheFillsPerPage:N3} | {r.ShootdownsPerRegion:N2} | {r.ShootdownTargetsPerShootdown:N2} | {r.FaultRetries:N0} | {r.SwapOutsPerPage:N3} | {r.FileDropsPerPage:N3} |");
                }
            }
        }
    }

    /// <summary>Measures and prints <see cref="FrameClearingBaseline"/> for each thread count.</summary>
    private static void PrintBaseline(IEnumerable<int> threadCounts, TimeSpan warmup, TimeSpan duration)
    {
        Console.WriteLine();
        Console.WriteLine("Memory-traffic ceiling of page_fault1 (FrameClearingBaseline: clear a cold 4 KiB frame and store one word, per thread over its own 128 MiB; poison = also refill every frame with the pattern after each pass):");
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

    private static string Where(string? dir) => dir is null ? "" : $" ({dir})";

    private static string Ratios(TestResults result, int row, PageFaultRunResult? engine)
        => string.Join(" / ", Enumerable.Range(0, result.KernelDirs.Length).Select(d => Ratio(engine?.FaultsPerSecond, result.Kernel[row, d]?.PagesPerSecond)));

    private static string Format(double? rate) => rate is { } r ? r.ToString("N0", CultureInfo.InvariantCulture) : "n/a";

    private static string FormatFaultsPerPage(double? perPage) => perPage is { } p ? p.ToString("0.000", CultureInfo.InvariantCulture) : "n/a";

    private static string Ratio(double? engine, double? kernel)
        => engine is { } e && kernel is { } k && k > 0 ? (e / k).ToString("0.00", CultureInfo.InvariantCulture) + "x" : "n/a";

    /// <summary>What one test measured: kernel runs by row and directory, engine runs by row with poisoning on and off.</summary>
    private sealed class TestResults(PageFaultTest test, string?[] kernelDirs, int rows)
    {
        public PageFaultTest Test { get; } = test;

        public string?[] KernelDirs { get; } = kernelDirs;

        public NativeRunResult?[,] Kernel { get; } = new NativeRunResult?[rows, kernelDirs.Length];

        public PageFaultRunResult?[] Poisoned { get; } = new PageFaultRunResult?[rows];

        public PageFaultRunResult?[] Unpoisoned { get; } = new PageFaultRunResult?[rows];
    }
}
