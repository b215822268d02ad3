using ClassicBugs;
using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>The same seed and settings give the same schedules, on one lane or several.</summary>
public sealed class DeterminismTests
{
    [Theory]
    [InlineData(Strategy.Portfolio)]
    [InlineData(Strategy.Random)]
    [InlineData(Strategy.Pct)]
    [InlineData(Strategy.Probabilistic)]
    public void SameSeedGivesTheSameSchedules(Strategy strategy)
    {
        var first = RecordInterleavings(strategy, seed: 42, parallelism: 1);
        var second = RecordInterleavings(strategy, seed: 42, parallelism: 1);
        Assert.Equal(first, second);

        // Vacuity guard: the iterations differ from one another, so equality above is not trivial.
        Assert.True(first.Distinct().Count() > 5, $"only {first.Distinct().Count()} distinct interleavings");
    }

    [Fact]
    public void DifferentSeedsGiveDifferentSchedules()
        => Assert.NotEqual(RecordInterleavings(Strategy.Random, seed: 1, parallelism: 1), RecordInterleavings(Strategy.Random, seed: 2, parallelism: 1));

    [Fact]
    public void ParallelLanesRunEachIterationWithTheSameScheduleAsOneLane()
    {
        // Lanes take iterations in an order that depends on timing, so the logs are compared as multisets.
        var sequential = RecordInterleavings(Strategy.Portfolio, seed: 7, parallelism: 1).Order(StringComparer.Ordinal);
        var parallel = RecordInterleavings(Strategy.Portfolio, seed: 7, parallelism: 2).Order(StringComparer.Ordinal);
        Assert.Equal(sequential, parallel);
    }

    [Fact]
    public void ParallelRunReportsTheSameFirstBugAsASequentialRun()
    {
        var bug = ClassicBugCatalog.Get("aba-stack");
        var configuration = Configuration.Create().WithTestingIterations(1_000).WithSeed(3).WithTraceFiles(false);
        var sequential = TestingEngine.Run(configuration, bug.Buggy);
        var parallel = TestingEngine.Run(configuration.WithParallelism(2), bug.Buggy);

        Assert.Equal(1, sequential.BugsFound);
        Assert.Equal(sequential.Iterations, parallel.Iterations);
        Assert.Equal(sequential.FirstBug!.Iteration, parallel.FirstBug!.Iteration);
        Assert.Equal(sequential.FirstBug.ReplayString, parallel.FirstBug.ReplayString);

        // And the parallel run's bug replays on its own.
        var replay = TestingEngine.Replay(parallel.FirstBug.ReplayString, bug.Buggy);
        Assert.Null(replay.Divergence);
        Assert.Equal(1, replay.BugsFound);
    }

    /// <summary>
    /// Runs a 3-thread body that logs which thread performed each increment, and returns one log per iteration, in the
    /// order the iterations started (iteration order on one lane). The slot counter and the lock are plain .NET
    /// primitives, invisible to the scheduler, so they add no scheduling points.
    /// </summary>
    private static string[] RecordInterleavings(Strategy strategy, long seed, int parallelism)
    {
        const int Iterations = 200;
        var logs = new string[Iterations];
        var next = -1;
        var report = TestingEngine.Run(
            Configuration.Create().WithStrategy(strategy).WithSeed(seed).WithTestingIterations(Iterations).WithParallelism(parallelism),
            () =>
            {
                var slot = Interlocked.Increment(ref next);
                var order = new char[6];
                var position = 0;
                var threads = new ControlledThread[3];
                for (var t = 0; t < 3; t++)
                {
                    var name = (char)('a' + t);
                    threads[t] = ControlledThread.Start(() =>
                    {
                        for (var k = 0; k < 2; k++)
                        {
                            order[Atomic.Increment(ref position) - 1] = name;
                        }
                    });
                }

                foreach (var thread in threads)
                {
                    thread.Join();
                }

                lock (logs)
                {
                    logs[slot] = new string(order);
                }
            });
        Assert.Equal(0, report.BugsFound);
        return logs;
    }
}
