using System.Globalization;
using Engine.Coyote;
using Engine.Sync;
using Engine.Systematic;

namespace Engine.Benchmarks;

/// <summary>
/// The quick, non-BenchmarkDotNet throughput harness (<c>-- scheduler</c>): runs <see cref="IncrementWorkload"/>
/// under the built-in scheduler with each of its strategies at parallelism 1 and 2, and under Microsoft Coyote
/// (<see cref="CoyoteScheduler"/>) with each of its main strategies at parallelism 1 (the only parallelism Coyote
/// takes), several times after a warm-up. Prints iterations/s as reported by <see cref="TestReport.IterationsPerSecond"/>
/// (exploration wall time: for the built-in scheduler the set-up and tear-down of its lanes is included, for Coyote
/// the creation of its testing engine is not; minimisation and replay do not happen because no bug is found), then the
/// built-in/Coyote ratio of the medians for the strategies both have under the same name at parallelism 1.
/// <para>
/// The caller (<see cref="Program"/>) must have set the <c>Engine.Sync.Systematic</c> switch before any
/// <c>Engine.Sync</c> type was touched.
/// </para>
/// </summary>
public static class SchedulerHarness
{
    private static readonly (string Name, Strategy Strategy)[] s_builtinStrategies =
    [
        ("portfolio", Strategy.Portfolio),
        ("random", Strategy.Random),
        ("pct", Strategy.Pct),
        ("probabilistic", Strategy.Probabilistic),
    ];

    private static readonly int[] s_builtinParallelisms = [1, 2];

    /// <summary>
    /// Coyote's strategies measured: its default portfolio and the four it rotates through. The fair variants of
    /// prioritization and delay-bounding are left out: they differ from the unfair ones only past a step count this
    /// 112-step workload does not reach.
    /// </summary>
    private static readonly CoyoteStrategy[] s_coyoteStrategies =
    [
        CoyoteStrategy.Portfolio,
        CoyoteStrategy.Random,
        CoyoteStrategy.Prioritization,
        CoyoteStrategy.Probabilistic,
        CoyoteStrategy.DelayBounding,
    ];

    /// <summary>
    /// Runs the harness. Options: <c>--iterations N</c> (built-in scheduler, default 10,000),
    /// <c>--coyote-iterations N</c> (default 1,000: Coyote is an order of magnitude slower on this workload, so a tenth
    /// of the built-in count keeps each of its runs to a few seconds), <c>--repeats N</c> (default 3) and
    /// <c>--schedulers builtin|coyote|both</c> (default both). Returns the process exit code.
    /// </summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var iterations = 10_000;
        var coyoteIterations = 1_000;
        var repeats = 3;
        var schedulers = "both";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--iterations" when i + 1 < args.Length:
                    iterations = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--coyote-iterations" when i + 1 < args.Length:
                    coyoteIterations = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--repeats" when i + 1 < args.Length:
                    repeats = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--schedulers" when i + 1 < args.Length && args[i + 1] is "builtin" or "coyote" or "both":
                    schedulers = args[++i];
                    break;
                default:
                    Console.Error.WriteLine(
                        $"unknown argument '{args[i]}'; usage: scheduler [--iterations N] [--coyote-iterations N] [--repeats N] [--schedulers builtin|coyote|both]");
                    return 2;
            }
        }

        if (iterations <= 0 || coyoteIterations <= 0 || repeats <= 0)
        {
            Console.Error.WriteLine("--iterations, --coyote-iterations and --repeats must be positive.");
            return 2;
        }

        if (!SchedulingHook.IsEnabled)
        {
            Console.Error.WriteLine(
                $"The scheduling hook is disabled ({SchedulingHook.EnvironmentVariable} is set to a false value?); the harness cannot run.");
            return 1;
        }

        var rows = new List<Row>();
        if (schedulers is "builtin" or "both")
        {
            foreach (var (name, strategy) in s_builtinStrategies)
            {
                foreach (var parallelism in s_builtinParallelisms)
                {
                    rows.Add(new Row(BuiltinScheduler.Instance, name, Build(strategy, parallelism, iterations)));
                }
            }
        }

        if (schedulers is "coyote" or "both")
        {
            foreach (var strategy in s_coyoteStrategies)
            {
                var coyote = new CoyoteScheduler(strategy);
                rows.Add(new Row(coyote, coyote.StrategyName, Build(Strategy.Portfolio, 1, coyoteIterations)));
            }
        }

        Console.WriteLine(
            $"3 threads x 33 Atomic.Increment; {iterations:N0} iterations per run (builtin), {coyoteIterations:N0} (coyote); " +
            $"{repeats} run(s) per row after a warm-up; .NET {Environment.Version}, {Environment.ProcessorCount} logical cores, {RuntimeOs()}");

        // Warm-up: every row once with a fifth of its iterations, so that the JIT has reached tier 1 and pools are primed.
        foreach (var row in rows)
        {
            IncrementWorkload.Run(row.Scheduler, row.Configuration.WithTestingIterations(Math.Max(1, row.Configuration.TestingIterations / 5)));
        }

        Console.WriteLine();
        Console.WriteLine("| scheduler | strategy | parallelism | runs (iterations/s) | median iterations/s | steps/iteration | OS threads created |");
        Console.WriteLine("|---|---|---:|---|---:|---:|---:|");
        foreach (var row in rows)
        {
            var rates = new double[repeats];
            TestReport? last = null;
            for (var r = 0; r < repeats; r++)
            {
                last = IncrementWorkload.Run(row.Scheduler, row.Configuration);
                rates[r] = last.IterationsPerSecond;
            }

            row.Median = Median(rates);
            var runs = string.Join(", ", rates.Select(x => x.ToString("N0", CultureInfo.InvariantCulture)));
            var stepsPerIteration = (double)last!.TotalSteps / last.Iterations;
            Console.WriteLine(
                $"| {row.Scheduler.Name} | {row.Strategy} | {row.Configuration.Parallelism} | {runs} | " +
                $"{row.Median.ToString("N0", CultureInfo.InvariantCulture)} | " +
                $"{stepsPerIteration.ToString("F1", CultureInfo.InvariantCulture)} | {last.ThreadsCreated} |");
        }

        PrintRatios(rows);
        return 0;
    }

    /// <summary>
    /// The ratio line: built-in median over Coyote median, at parallelism 1, for each strategy name both schedulers
    /// have (the two default portfolios, which rotate different strategies, and random, the same algorithm in both).
    /// </summary>
    private static void PrintRatios(List<Row> rows)
    {
        var ratios = new List<string>();
        foreach (var builtin in rows.Where(r => r.Scheduler is BuiltinScheduler && r.Configuration.Parallelism == 1))
        {
            var coyote = rows.FirstOrDefault(r => r.Scheduler is CoyoteScheduler && r.Strategy == builtin.Strategy);
            if (coyote is not null && coyote.Median > 0)
            {
                ratios.Add(string.Create(CultureInfo.InvariantCulture,
                    $"{builtin.Strategy} {builtin.Median / coyote.Median:F1}x ({builtin.Median:N0} / {coyote.Median:N0} iterations/s)"));
            }
        }

        if (ratios.Count > 0)
        {
            Console.WriteLine();
            Console.WriteLine($"builtin / coyote, median iterations/s at parallelism 1: {string.Join("; ", ratios)}");
        }
    }

    private static Configuration Build(Strategy strategy, int parallelism, int iterations) => Configuration.Create()
        .WithTestingIterations(iterations)
        .WithStrategy(strategy)
        .WithParallelism(parallelism)
        .WithTestName("harness-3x33");

    private static double Median(double[] values)
    {
        var sorted = values.Order().ToArray();
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }

    private static string RuntimeOs() => System.Runtime.InteropServices.RuntimeInformation.OSDescription;

    /// <summary>One row of the table: a scheduler, the strategy as printed, and the configuration it runs.</summary>
    private sealed class Row(ISystematicScheduler scheduler, string strategy, Configuration configuration)
    {
        public ISystematicScheduler Scheduler { get; } = scheduler;

        public string Strategy { get; } = strategy;

        public Configuration Configuration { get; } = configuration;

        public double Median { get; set; }
    }
}
