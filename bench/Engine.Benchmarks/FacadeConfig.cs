using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// Configuration of <see cref="FacadeBenchmarks"/>: whatever job is chosen (the default, or <c>--job short</c> on the
/// command line), its process runs with <c>ENGINE_SYSTEMATIC=0</c>, so the scheduling hook is off even if the
/// calling shell happens to export the variable, and with <c>ENGINE_CHECKS=0</c>, so the engine's run-time checks are
/// off (the benchmark setting; <see cref="ChecksConfig"/> measures both). The job is a mutator: it adds the variable to the selected jobs
/// instead of becoming a job of its own.
/// </summary>
public sealed class FacadeConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public FacadeConfig()
    {
        AddJob(Job.Default
            .WithEnvironmentVariables(
                new EnvironmentVariable(SchedulingHook.EnvironmentVariable, "0"),
                new EnvironmentVariable(Checks.EnvironmentVariable, "0"))
            .AsMutator());
    }
}
