using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// Configuration of <see cref="SchedulerThroughputBenchmarks"/>: the benchmark process is started with
/// <c>ENGINE_SYSTEMATIC=1</c>, so <see cref="SchedulingHook.IsEnabled"/> is true there and the controlled scheduler
/// sees every <c>Atomic</c> call. Being a separate process, it cannot disturb the facade measurements, whose process
/// runs with the hook off. The job is a mutator: the variable is added to whichever job is selected (the default, or
/// <c>--job short</c>). Adds an iterations-per-second column.
/// </summary>
public sealed class SystematicConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public SystematicConfig()
    {
        AddJob(Job.Default
            .WithEnvironmentVariables(new EnvironmentVariable(SchedulingHook.EnvironmentVariable, "1"))
            .AsMutator());
        AddColumn(new IterationsPerSecondColumn());
    }
}
