using System.Diagnostics;
using System.Globalization;
using Engine.Sync;
using Engine.Systematic;

namespace Engine.Benchmarks;

/// <summary>
/// The quick, non-BenchmarkDotNet throughput harness (<c>-- scheduler</c>): runs <see cref="IncrementWorkload"/>
/// under each strategy at parallelism 1 and 2, several times after a warm-up, and prints iterations/s as reported by
/// <see cref="TestReport.IterationsPerSecond"/> (exploration wall time; the engine's set-up and tear-down of its lanes
/// is included, minimisation does not happen because no bug is found).
/// <para>
/// The caller (<see cref="Program"/>) must have set the <c>Engine.Sync.Systematic</c> switch before any
/// <c>Engine.Sync</c> type was touched.
/// </para>
/// </summary>
public static class SchedulerHarness
{
    private static readonly (string Name, Strategy Strategy)[] s_strategies =
    [
        ("portfolio", Strategy.Portfolio),
        ("random", Strategy.Random),
        ("pct", Strategy.Pct),
        ("probabilistic", Strategy.Probabilistic),
    ];

    private static readonly int[] s_parallelisms = [1, 2];

    /// <summary>
    /// Runs the harness. Options: <c>--iterations N</c> (default 10,000) and <c>--repeats N</c> (default 3).
    /// Returns the process exit code.
    /// </summary>
    public static int Run(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var iterations = 10_000;
        var repeats = 3;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--iterations" when i + 1 < args.Length:
                    iterations = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                case "--repeats" when i + 1 < args.Length:
                    repeats = int.Parse(args[++i], CultureInfo.InvariantCulture);
                    break;
                default:
                    Console.Error.WriteLine($"unknown argument '{args[i]}'; usage: scheduler [--iterations N] [--repeats N]");
                    return 2;
            }
        }

        if (!SchedulingHook.IsEnabled)
        {
            Console.Error.WriteLine(
                $"The scheduling hook is disabled ({SchedulingHook.EnvironmentVariable} is set to a false value?); the harness cannot run.");
            return 1;
        }

        Console.WriteLine(
            $"3 threads x 33 Atomic.Increment, {iterations:N0} iterations per run, {repeats} run(s) per row after a warm-up; " +
            $".NET {Environment.Version}, {Environment.ProcessorCount} logical cores, {RuntimeOs()}");

        // Warm-up: every strategy and parallelism once, so that the JIT has reached tier 1 and pools are primed.
        foreach (var (_, strategy) in s_strategies)
        {
            foreach (var parallelism in s_parallelisms)
            {
                IncrementWorkload.Run(Build(strategy, parallelism, Math.Min(iterations, 2_000)));
            }
        }

        Console.WriteLine();
        Console.WriteLine("| strategy | parallelism | runs (iterations/s) | median iterations/s | steps/iteration | OS threads created |");
        Console.WriteLine("|---|---:|---|---:|---:|---:|");
        foreach (var (name, strategy) in s_strategies)
        {
            foreach (var parallelism in s_parallelisms)
            {
                var rates = new double[repeats];
                TestReport? last = null;
                for (var r = 0; r < repeats; r++)
                {
                    last = IncrementWorkload.Run(Build(strategy, parallelism, iterations));
                    rates[r] = last.IterationsPerSecond;
                }

                var median = Median(rates);
                var runs = string.Join(", ", rates.Select(x => x.ToString("N0", CultureInfo.InvariantCulture)));
                var stepsPerIteration = (double)last!.TotalSteps / last.Iterations;
                Console.WriteLine(
                    $"| {name} | {parallelism} | {runs} | {median.ToString("N0", CultureInfo.InvariantCulture)} | " +
                    $"{stepsPerIteration.ToString("F1", CultureInfo.InvariantCulture)} | {last.ThreadsCreated} |");
            }
        }

        return 0;
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
}
