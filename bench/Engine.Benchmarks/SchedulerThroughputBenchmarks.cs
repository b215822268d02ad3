using BenchmarkDotNet.Attributes;
using Engine.Coyote;
using Engine.Sync;
using Engine.Systematic;

namespace Engine.Benchmarks;

/// <summary>
/// Throughput of the two schedulers on <see cref="IncrementWorkload"/> (3 threads x 33 increments), in one
/// BenchmarkDotNet run: the built-in scheduler (the baseline, so BenchmarkDotNet prints the Ratio column) and Microsoft
/// Coyote through <see cref="CoyoteScheduler"/>, each with its default strategy (its own portfolio) at parallelism 1.
/// One benchmark invocation is a whole run of many test iterations; OperationsPerInvoke is that count, so the reported
/// Mean is the time of one test iteration, the Iterations/s column its inverse, and the Ratio Coyote's time per
/// iteration over ours although the two methods run different counts.
/// <para>
/// Iteration counts: on the quiet 2-core development VM the built-in scheduler takes about 0.1 ms per iteration and
/// Coyote about 1.5 ms (up to about 6 ms when the machine is busy), so <see cref="BuiltinIterations"/> and
/// <see cref="CoyoteIterations"/> make one invocation of either 0.15–0.6 s, long enough that the run's own start-up
/// (lanes, Coyote's testing engine) is a small share of it.
/// </para>
/// <para>
/// <c>[ThreadingDiagnoser]</c> counts thread-pool work items and contended Monitor locks per iteration: Coyote's engine
/// uses the thread pool and Monitor locks (and so does the bridge's per-iteration gate), while the built-in scheduler
/// parks and unparks its own pooled threads. Runs in its own process with <c>ENGINE_SYSTEMATIC=1</c> (see
/// <see cref="SystematicConfig"/>).
/// </para>
/// </summary>
[Config(typeof(SystematicConfig))]
[MemoryDiagnoser]
[ThreadingDiagnoser]
public class SchedulerThroughputBenchmarks
{
    /// <summary>Test iterations per invocation of <see cref="Builtin"/>.</summary>
    public const int BuiltinIterations = 2000;

    /// <summary>Test iterations per invocation of <see cref="Coyote"/>.</summary>
    public const int CoyoteIterations = 100;

    private readonly CoyoteScheduler _coyote = new(CoyoteStrategy.Portfolio);

    private Configuration _builtinConfiguration = Configuration.Create();

    private Configuration _coyoteConfiguration = Configuration.Create();

    /// <summary>Checks that the hook is on (otherwise neither scheduler would see anything) and builds the configurations.</summary>
    [GlobalSetup]
    public void Setup()
    {
        if (!SchedulingHook.IsEnabled)
        {
            throw new InvalidOperationException(
                $"SchedulingHook.IsEnabled is false: the scheduler benchmarks need {SchedulingHook.EnvironmentVariable}=1.");
        }

        // Strategy.Portfolio is the built-in default and is ignored by Coyote, which runs its own default portfolio.
        var common = Configuration.Create()
            .WithStrategy(Strategy.Portfolio)
            .WithParallelism(1)
            .WithTestName("bench-3x33");
        _builtinConfiguration = common.WithTestingIterations(BuiltinIterations);
        _coyoteConfiguration = common.WithTestingIterations(CoyoteIterations);
    }

    /// <summary>The built-in scheduler: one run of <see cref="BuiltinIterations"/> iterations.</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = BuiltinIterations)]
    public long Builtin() => IncrementWorkload.Run(BuiltinScheduler.Instance, _builtinConfiguration).TotalSteps;

    /// <summary>Coyote 1.7.11: one run of <see cref="CoyoteIterations"/> iterations.</summary>
    [Benchmark(OperationsPerInvoke = CoyoteIterations)]
    public long Coyote() => IncrementWorkload.Run(_coyote, _coyoteConfiguration).TotalSteps;
}
