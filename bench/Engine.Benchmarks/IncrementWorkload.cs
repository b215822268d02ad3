using System.Runtime.CompilerServices;
using Engine.Sync;
using Engine.Systematic;

namespace Engine.Benchmarks;

/// <summary>
/// The scheduler's speed target: <see cref="Threads"/> controlled threads each doing <see cref="IncrementsPerThread"/>
/// <see cref="Atomic.Increment(ref int, string, int)"/>s on one shared counter, joined by the test body, which then
/// checks the total. About a hundred scheduling points per iteration (99 increments, plus thread starts, joins and
/// ends, and the final read). The counter is allocated per iteration, so the body touches no static state and may run
/// with parallelism above 1.
/// </summary>
public static class IncrementWorkload
{
    /// <summary>Controlled threads started by the body.</summary>
    public const int Threads = 3;

    /// <summary>Increments done by each thread.</summary>
    public const int IncrementsPerThread = 33;

    /// <summary>One test iteration.</summary>
    public static void Body()
    {
        var counter = new StrongBox<int>();
        var threads = new ControlledThread[Threads];
        for (var t = 0; t < Threads; t++)
        {
            threads[t] = ControlledThread.Start(() =>
            {
                for (var i = 0; i < IncrementsPerThread; i++)
                {
                    Atomic.Increment(ref counter.Value);
                }
            });
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        var total = Atomic.Read(ref counter.Value);
        Specification.Assert(total == Threads * IncrementsPerThread, $"counter is {total}, expected {Threads * IncrementsPerThread}");
    }

    /// <summary>Runs the workload under the built-in scheduler and fails loudly if the run found a bug (it never should).</summary>
    public static TestReport Run(Configuration configuration) => Run(BuiltinScheduler.Instance, configuration);

    /// <summary>
    /// Runs the workload under <paramref name="scheduler"/> (the built-in one or Coyote) and fails loudly if the run
    /// found a bug (it never should).
    /// </summary>
    public static TestReport Run(ISystematicScheduler scheduler, Configuration configuration)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        var report = scheduler.Run(configuration, Body);
        if (report.BugsFound > 0)
        {
            throw new InvalidOperationException($"The increment workload reported a bug:{Environment.NewLine}{report}");
        }

        return report;
    }
}
