using BenchmarkDotNet.Attributes;
using Engine.Sync;
using Engine.Systematic;

namespace Engine.Benchmarks;

/// <summary>
/// Throughput of the controlled scheduler on <see cref="IncrementWorkload"/> (3 threads x 33 increments). One
/// benchmark invocation is a whole <see cref="TestingEngine.Run"/> of <see cref="Iterations"/> iterations on one lane;
/// OperationsPerInvoke makes the reported Mean the time of one test iteration, and the Iterations/s column its
/// inverse. Runs in its own process with <c>ENGINE_SYSTEMATIC=1</c> (see <see cref="SystematicConfig"/>).
/// </summary>
[Config(typeof(SystematicConfig))]
[MemoryDiagnoser]
public class SchedulerThroughputBenchmarks
{
    /// <summary>Test iterations per benchmark invocation.</summary>
    public const int Iterations = 2000;

    private Configuration _configuration = Configuration.Create();

    /// <summary>The exploration strategy.</summary>
    [Params(Strategy.Portfolio, Strategy.Random)]
    public Strategy Strategy { get; set; }

    /// <summary>Checks that the hook is on (otherwise the scheduler would see nothing) and builds the configuration.</summary>
    [GlobalSetup]
    public void Setup()
    {
        if (!SchedulingHook.IsEnabled)
        {
            throw new InvalidOperationException(
                $"SchedulingHook.IsEnabled is false: the scheduler benchmarks need {SchedulingHook.EnvironmentVariable}=1.");
        }

        _configuration = Configuration.Create()
            .WithTestingIterations(Iterations)
            .WithStrategy(Strategy)
            .WithParallelism(1)
            .WithTestName("bench-3x33");
    }

    /// <summary>One run of <see cref="Iterations"/> iterations.</summary>
    [Benchmark(OperationsPerInvoke = Iterations)]
    public long ThreeThreadsBy33Increments() => IncrementWorkload.Run(_configuration).TotalSteps;
}
