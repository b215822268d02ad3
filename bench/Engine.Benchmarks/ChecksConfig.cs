using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// Configuration of the benchmarks that report the engine both ways: every case runs in a job with the run-time
/// checks off (<c>checks-off</c>, the benchmark setting) and in one with them on (<c>checks-on</c>, as the tests, the
/// stress harness and the zoo run), each with the scheduling hook off. The difference is what the lock contracts,
/// the per-store PTL check and the per-access use-after-free check cost.
/// </summary>
public sealed class ChecksConfig : ManualConfig
{
    /// <summary>Creates the configuration.</summary>
    public ChecksConfig()
    {
        AddJob(Job.Default
            .WithEnvironmentVariables(
                new EnvironmentVariable(SchedulingHook.EnvironmentVariable, "0"),
                new EnvironmentVariable(Checks.EnvironmentVariable, "0"))
            .WithId("checks-off")
            .AsBaseline());
        AddJob(Job.Default
            .WithEnvironmentVariables(
                new EnvironmentVariable(SchedulingHook.EnvironmentVariable, "0"),
                new EnvironmentVariable(Checks.EnvironmentVariable, "1"))
            .WithId("checks-on"));
    }
}
