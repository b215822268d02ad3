using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>The preemption-bounded exhaustive search visits every schedule within its bound once, and says when it is done.</summary>
public sealed class DfsTests
{
    [Fact]
    public void DataChoicesAreEnumeratedExhaustively()
    {
        var seen = new List<(int, bool)>();
        var report = TestingEngine.Run(Configuration.Create().WithDfsStrategy(0).WithTestingIterations(1_000), () =>
            seen.Add((ControlledRandom.RandomInteger(3), ControlledRandom.RandomBoolean())));

        Assert.True(report.Exhausted);
        Assert.Equal(6, report.Iterations);
        Assert.Equal(6, seen.Distinct().Count());
    }

    [Fact]
    public void LargerPreemptionBoundsExploreMoreSchedules()
    {
        var counts = new int[4];
        for (var bound = 0; bound < counts.Length; bound++)
        {
            var report = TestingEngine.Run(Configuration.Create().WithDfsStrategy(bound).WithTestingIterations(100_000), TwoThreadsThreeSteps);
            Assert.True(report.Exhausted, $"bound {bound} not exhausted");
            Assert.Equal(0, report.BugsFound);
            counts[bound] = report.Iterations;
        }

        for (var bound = 1; bound < counts.Length; bound++)
        {
            Assert.True(counts[bound] > counts[bound - 1], $"bound {bound}: {counts[bound]} schedules, bound {bound - 1}: {counts[bound - 1]}");
        }
    }

    [Fact]
    public void EverySchedulingOrderIsVisitedExactlyOnceWithAnUnboundedBudget()
    {
        // Two threads of two atomic writes each: with enough preemptions DFS must produce all C(4,2) = 6 orders of the
        // four writes, and never the same order twice.
        var orders = new List<string>();
        var report = TestingEngine.Run(Configuration.Create().WithDfsStrategy(10).WithTestingIterations(100_000), () =>
        {
            var log = new char[4];
            var position = new int[1];
            var other = ControlledThread.Start(() =>
            {
                log[Atomic.Increment(ref position[0]) - 1] = 'b';
                log[Atomic.Increment(ref position[0]) - 1] = 'b';
            });
            log[Atomic.Increment(ref position[0]) - 1] = 'a';
            log[Atomic.Increment(ref position[0]) - 1] = 'a';
            other.Join();
            orders.Add(new string(log));
        });

        Assert.True(report.Exhausted);
        Assert.Equal(6, orders.Distinct().Count());
    }

    private static void TwoThreadsThreeSteps()
    {
        var counter = new int[1];
        var other = ControlledThread.Start(() =>
        {
            for (var i = 0; i < 3; i++)
            {
                Atomic.Increment(ref counter[0]);
            }
        });
        for (var i = 0; i < 3; i++)
        {
            Atomic.Increment(ref counter[0]);
        }

        other.Join();
        Specification.Assert(Atomic.Read(ref counter[0]) == 6, "increments lost");
    }
}
