using ClassicBugs;
using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>Failing schedules are reported with the fewest preemptions that still fail, and the minimised schedule replays.</summary>
public sealed class MinimizationTests
{
    [Fact]
    public void LostUpdateIsMinimisedToItsSinglePreemption()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        var shrunk = 0;
        for (var seed = 0; seed < 10; seed++)
        {
            // Random switches often, so its first failing schedule usually carries preemptions the bug does not need.
            var report = TestingEngine.Run(Configuration.Create().WithStrategy(Strategy.Random).WithTestingIterations(1_000).WithSeed(seed).WithTraceFiles(false), bug.Buggy);
            var found = report.FirstBug!;

            // One preemption is necessary (between one thread's read and its write) and sufficient.
            Assert.Equal(1, found.Preemptions);
            Assert.True(found.OriginalPreemptions >= found.Preemptions);
            if (found.OriginalPreemptions > found.Preemptions)
            {
                shrunk++;
                Assert.True(found.MinimizationReplays > 0);
            }

            var replay = TestingEngine.Replay(found.ReplayString, bug.Buggy);
            Assert.Null(replay.Divergence);
            Assert.Equal(found.Message, replay.FirstBug!.Message);
        }

        // Vacuity guard: minimisation actually removed preemptions for some seeds.
        Assert.True(shrunk > 0, "no seed produced a schedule with superfluous preemptions");
    }

    [Fact]
    public void ManyPreemptionsCollapseToTheOneThatMatters()
    {
        // Two threads each do ten increments (correctly) and then one racy read-modify-write on another counter.
        // Random schedules preempt inside the harmless loops many times; only one preemption is needed for the bug.
        static void Body()
        {
            var counters = new int[2];
            void Work()
            {
                for (var i = 0; i < 10; i++)
                {
                    Atomic.Increment(ref counters[0]);
                }

                var seen = Atomic.Read(ref counters[1]);
                Atomic.Write(ref counters[1], seen + 1);
            }

            var other = ControlledThread.Start(Work, "worker");
            Work();
            other.Join();
            Specification.Assert(Atomic.Read(ref counters[1]) == 2, "lost update after the loops");
        }

        var report = TestingEngine.Run(Configuration.Create().WithStrategy(Strategy.Random).WithTestingIterations(2_000).WithSeed(11).WithTraceFiles(false), Body);
        var found = report.FirstBug!;
        Assert.True(found.OriginalPreemptions > 3, $"the random schedule had only {found.OriginalPreemptions} preemptions");
        Assert.Equal(1, found.Preemptions);
    }

    [Fact]
    public void MinimisationCanBeSwitchedOff()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        var report = TestingEngine.Run(Configuration.Create().WithStrategy(Strategy.Random).WithTestingIterations(1_000).WithSeed(11)
            .WithScheduleMinimization(false).WithTraceFiles(false), bug.Buggy);
        Assert.Equal(report.FirstBug!.OriginalPreemptions, report.FirstBug.Preemptions);
        Assert.Equal(0, report.FirstBug.MinimizationReplays);
    }
}
