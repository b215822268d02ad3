using ClassicBugs;
using Engine.Sync;
using Engine.Systematic;

namespace Engine.Coyote.Tests;

/// <summary>
/// What the Coyote backend turns into Coyote's terms, and back: assertions, exceptions, deadlocks, hangs and
/// uncontrolled threads become Coyote bugs in the built-in scheduler's words; waits are blocked operations (no
/// livelock under priority strategies); data choices go through Coyote; an ended iteration unwinds every thread before
/// the next starts.
/// </summary>
public sealed class CoyoteBridgeTests
{
    private static readonly CoyoteScheduler s_coyote = new();

    [Fact]
    public void AFailedAssertionInAStartedThreadIsACoyoteBugInTheBuiltInSchedulersWords()
    {
        var report = s_coyote.Run(Quiet(), () =>
        {
            var worker = ControlledThread.Start(() => Specification.Assert(false, "boom {with braces}"), "worker");
            worker.Join();
        });

        var bug = Assert.Single(report.Bugs);
        Assert.Equal(BugKind.Assertion, bug.Kind);
        Assert.Equal("Assertion failed in T1 'worker': boom {with braces}", bug.Message);
        Assert.Contains("[coyote::error] Assertion failed in T1 'worker': boom {with braces}", bug.SchedulerReport);
        Assert.Equal(CoyoteScheduler.SchedulerName, bug.Trace.Scheduler);
        Assert.False(string.IsNullOrEmpty(bug.Trace.SchedulerTrace));
    }

    [Fact]
    public void AnExceptionAThreadDoesNotHandleIsACoyoteBugWithTheException()
    {
        var report = s_coyote.Run(Quiet(), () =>
        {
            var worker = ControlledThread.Start(() =>
            {
                SchedulingPoint.Interleave();
                throw new InvalidOperationException("oops");
            }, "thrower");
            worker.Join();
        });

        var bug = Assert.Single(report.Bugs);
        Assert.Equal(BugKind.Exception, bug.Kind);
        Assert.Equal("Unhandled exception in T1 'thrower': System.InvalidOperationException: oops", bug.Message);
        Assert.IsType<InvalidOperationException>(bug.Exception);
    }

    [Fact]
    public void ADeadlockCoyoteDetectsNamesEveryWaitingThreadAndWhereItWaits()
    {
        var report = s_coyote.Run(Quiet().WithTestingIterations(1_000), ClassicBugCatalog.Get("lock-order").Buggy);

        var bug = Assert.Single(report.Bugs);
        Assert.Equal(BugKind.Deadlock, bug.Kind);
        Assert.Matches(@"^Deadlock: no thread can run; T\d '[^']+' waits in LockAcquire at LockOrderDeadlock\.cs:\d+; T\d '[^']+' waits in LockAcquire", bug.Message);

        // Coyote's own words name the operations after the threads.
        Assert.Contains("Deadlock detected.", bug.SchedulerReport);
        Assert.Contains("'a-then-b'", bug.SchedulerReport);
    }

    [Fact]
    public void AnUncontrolledThreadUsingEngineSyncIsReportedByName()
    {
        var report = s_coyote.Run(Quiet().WithTestingIterations(3), () =>
        {
            var counter = new int[1];
            var rogue = new Thread(() =>
            {
                try
                {
                    Atomic.Increment(ref counter[0]);
                }
                catch (UncontrolledConcurrencyException)
                {
                }
            })
            { Name = "rogue-worker" };
            rogue.Start();
            rogue.Join();
            Atomic.Increment(ref counter[0]);
        });

        var bug = Assert.Single(report.Bugs);
        Assert.Equal(BugKind.Uncontrolled, bug.Kind);
        Assert.Contains("'rogue-worker'", bug.Message);
        Assert.Contains("Increment at CoyoteBridgeTests.cs", bug.Message);
    }

    [Fact]
    public void AThreadBlockedOutsideEngineSyncIsCaughtByCoyotesHangMonitor()
    {
        using var never = new ManualResetEventSlim();
        try
        {
            var report = s_coyote.Run(Quiet().WithTestingIterations(3).WithWatchdogTimeout(TimeSpan.FromMilliseconds(300)), () =>
            {
                var counter = new int[1];
                var other = ControlledThread.Start(() => Atomic.Increment(ref counter[0]), "other");
                Atomic.Increment(ref counter[0]);
                never.Wait();
                other.Join();
            });

            var bug = Assert.Single(report.Bugs);
            Assert.Equal(BugKind.Uncontrolled, bug.Kind);
            Assert.StartsWith("Watchdog:", bug.Message);
            Assert.Contains("Potential deadlock or hang detected", bug.Message);
        }
        finally
        {
            never.Set();
        }
    }

    [Fact]
    public void AnEndedIterationUnwindsEveryThreadBeforeTheNextOneStarts()
    {
        // Each iteration starts two threads that wait on a gate nobody opens, then fails. Every thread's finally must
        // have run (in order, one at a time) by the time the next iteration starts: no thread of an ended iteration
        // may go on running uncontrolled beside the next.
        var started = 0;
        var unwound = 0;
        var overlaps = 0;
        var report = s_coyote.Run(Quiet().WithTestingIterations(20).WithStopOnFirstBug(false), () =>
        {
            if (Volatile.Read(ref started) != Volatile.Read(ref unwound))
            {
                Interlocked.Increment(ref overlaps);
            }

            var gate = new int[1];
            for (var i = 0; i < 2; i++)
            {
                ControlledThread.Start(() =>
                {
                    Interlocked.Increment(ref started);
                    try
                    {
                        Wait.Until(gate, static g => Atomic.Read(ref g[0]) == 1);
                    }
                    finally
                    {
                        Interlocked.Increment(ref unwound);
                    }
                }, $"waiter{i}");
            }

            SchedulingPoint.Interleave();
            Specification.Assert(false, "stop here");
        });

        Assert.Equal(20, report.BugsFound);
        Assert.All(report.Bugs, b => Assert.Equal("Assertion failed in T0 'main': stop here", b.Message));
        Assert.True(started > 0, "no waiter ever started: the test proved nothing");
        Assert.Equal(started, unwound);
        Assert.Equal(0, overlaps);
    }

    [Fact]
    public void AWaitIsABlockedOperationSoPrioritizationNeverSpinsToTheStepBound()
    {
        // A waiter spinning on yields would be picked again and again by a priority strategy until the step bound; a
        // paused operation is not picked until its condition holds.
        var waited = 0;
        var report = new CoyoteScheduler(CoyoteStrategy.Prioritization).Run(Quiet().WithTestingIterations(200), () =>
        {
            var flag = new int[1];
            var waiter = ControlledThread.Start(() =>
            {
                Wait.Until(flag, static f =>
                {
                    return Volatile.Read(ref f[0]) == 1;
                });
                Interlocked.Increment(ref waited);
            }, "waiter");
            for (var i = 0; i < 5; i++)
            {
                SchedulingPoint.Interleave();
            }

            Atomic.Write(ref flag[0], 1);
            waiter.Join();
        });

        Assert.Equal(0, report.BugsFound);
        Assert.Equal(0, report.StepBoundHits);
        Assert.Equal(200, waited);
        Assert.True(report.MaxStepsInIteration < 50, $"an iteration took {report.MaxStepsInIteration} steps");
    }

    [Fact]
    public void DataChoicesGoThroughCoyoteAndReplayWithTheSchedule()
    {
        var seen = new HashSet<(int, bool)>();
        var all = s_coyote.Run(Quiet().WithTestingIterations(200), () => seen.Add((ControlledRandom.RandomInteger(3), ControlledRandom.RandomBoolean())));
        Assert.Equal(0, all.BugsFound);
        Assert.Equal(6, seen.Count);

        var report = s_coyote.Run(Configuration.Create().WithTestingIterations(500).WithTraceFiles(false), () =>
        {
            var value = (ControlledRandom.RandomInteger(3), ControlledRandom.RandomBoolean());
            Specification.Assert(value != (2, true), "reached (2, true)");
        });

        var bug = Assert.Single(report.Bugs);
        Assert.Equal([DecisionKind.Integer, DecisionKind.Boolean], bug.Trace.Steps.Where(s => s.Kind != DecisionKind.Schedule).Select(s => s.Kind));
        Assert.Equal([2, 1], bug.Trace.Steps.Where(s => s.Kind != DecisionKind.Schedule).Select(s => s.Value));
        Assert.True(bug.Reproducible, bug.ReproductionNote);
    }

    [Fact]
    public void TheStepBoundEndsAnIterationWithoutABugUnlessAskedTo()
    {
        static void Forever()
        {
            var counter = new int[1];
            while (true)
            {
                Atomic.Increment(ref counter[0]);
            }
        }

        var counted = s_coyote.Run(Quiet().WithTestingIterations(3).WithMaxSteps(200), Forever);
        Assert.Equal(0, counted.BugsFound);
        Assert.Equal(3, counted.StepBoundHits);

        var reported = s_coyote.Run(Quiet().WithTestingIterations(3).WithMaxSteps(200).WithStepBoundAsBug(), Forever);
        Assert.Equal(BugKind.Hang, Assert.Single(reported.Bugs).Kind);
    }

    [Theory]
    [InlineData(CoyoteStrategy.Portfolio)]
    [InlineData(CoyoteStrategy.Random)]
    [InlineData(CoyoteStrategy.Probabilistic)]
    [InlineData(CoyoteStrategy.Prioritization)]
    public void EveryStrategyCutsAnIterationAtTheSameStepBound(CoyoteStrategy strategy)
    {
        // Coyote's one-argument step bound gives fair strategies (random, probabilistic, the portfolio's fair members)
        // ten times the steps: a 50-step body under a bound of 20 would then run to its end under them.
        static void FiftySteps()
        {
            var counter = new int[1];
            for (var i = 0; i < 50; i++)
            {
                Atomic.Increment(ref counter[0]);
            }
        }

        var report = new CoyoteScheduler(strategy).Run(Quiet().WithTestingIterations(10).WithMaxSteps(20), FiftySteps);
        Assert.Equal(0, report.BugsFound);
        Assert.Equal(10, report.StepBoundHits);
        Assert.InRange(report.MaxStepsInIteration, 1, 21);
    }

    [Fact]
    public void ACoyoteFoundBugReplaysUnderCoyoteAndUnderTheBuiltInScheduler()
    {
        var bug = ClassicBugCatalog.Get("aba-stack");
        var found = Assert.Single(s_coyote.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false), bug.Buggy).Bugs);
        Assert.True(found.Reproducible, found.ReproductionNote);
        Assert.Equal("the built-in scheduler follows the same schedule to the same bug", found.CrossCheck);

        var own = s_coyote.Replay(found.Trace, bug.Buggy);
        Assert.Null(own.Divergence);
        Assert.Equal(found.Message, Assert.Single(own.Bugs).Message);

        var builtin = TestingEngine.Replay(found.ReplayString, bug.Buggy);
        Assert.Null(builtin.Divergence);
        Assert.Equal(found.Message, Assert.Single(builtin.Bugs).Message);
        Assert.Equal(found.Trace.Steps.Select(s => s.Thread), builtin.FirstBug!.Trace.Steps.Select(s => s.Thread));
    }

    [Fact]
    public void TheKindAnAssertionStatesIsCarriedThroughCoyoteAndBothReplays()
    {
        static void Body()
        {
            var counter = new int[1];
            var other = ControlledThread.Start(() => Atomic.Write(ref counter[0], Atomic.Read(ref counter[0]) + 1), "other");
            Atomic.Write(ref counter[0], Atomic.Read(ref counter[0]) + 1);
            other.Join();
            Specification.Assert(Atomic.Read(ref counter[0]) == 2, "LostUpdate", "lost update");
        }

        var found = Assert.Single(s_coyote.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false), Body).Bugs);
        Assert.Equal("LostUpdate", found.Category);
        Assert.Equal("LostUpdate", found.Trace.BugCategory);
        Assert.EndsWith(": lost update", found.Message, StringComparison.Ordinal);
        Assert.True(found.Reproducible, found.ReproductionNote);
        Assert.Equal("the built-in scheduler follows the same schedule to the same bug", found.CrossCheck);

        var own = s_coyote.Replay(found.Trace, Body);
        Assert.Null(own.Divergence);
        Assert.Equal("LostUpdate", Assert.Single(own.Bugs).Category);

        var builtin = TestingEngine.Replay(found.Trace, Body);
        Assert.Null(builtin.Divergence);
        Assert.Equal("LostUpdate", Assert.Single(builtin.Bugs).Category);

        var plain = Assert.Single(s_coyote.Run(Quiet(), () => Specification.Assert(false, "no kind stated")).Bugs);
        Assert.Equal(BugKind.Assertion, plain.Kind);
        Assert.Null(plain.Category);
    }

    [Fact]
    public void ATraceOfTheBuiltInSchedulerIsRefusedByCoyotesReplay()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        var found = TestingEngine.Run(Quiet().WithTestingIterations(1_000), bug.Buggy).FirstBug!;
        Assert.Throws<ArgumentException>(() => s_coyote.Replay(found.Trace, bug.Buggy));
    }

    [Fact]
    public void TheSameSeedExploresTheSameSchedulesAndUsersSeedsAreSpreadApart()
    {
        var bug = ClassicBugCatalog.Get("aba-stack");
        var first = s_coyote.Run(Quiet().WithTestingIterations(1_000).WithSeed(7), bug.Buggy).FirstBug!;
        var again = s_coyote.Run(Quiet().WithTestingIterations(1_000).WithSeed(7), bug.Buggy).FirstBug!;
        Assert.Equal(first.Iteration, again.Iteration);
        Assert.Equal(first.Trace.Steps, again.Trace.Steps);

        Assert.Equal(0u, CoyoteScheduler.CoyoteSeed(0));
        Assert.Equal(100_003u, CoyoteScheduler.CoyoteSeed(1));
        Assert.Equal(700_021u, CoyoteScheduler.CoyoteSeed(7));
    }

    [Fact]
    public void BothSchedulersTakeTurnsInOneProcess()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        for (var round = 0; round < 2; round++)
        {
            Assert.Equal(BugKind.Assertion, TestingEngine.Run(Quiet().WithTestingIterations(1_000), bug.Buggy).FirstBug?.Kind);
            Assert.Equal(BugKind.Assertion, s_coyote.Run(Quiet().WithTestingIterations(1_000), bug.Buggy).FirstBug?.Kind);
        }

        // Outside both, the same body runs on real threads.
        var plain = new int[1];
        var thread = ControlledThread.Start(() => Atomic.Increment(ref plain[0]));
        thread.Join();
        Assert.Equal(-1, thread.Id);
        Assert.Equal(1, plain[0]);
    }

    [Fact]
    public void SettingsCoyoteCannotHonourAreRefused()
    {
        Assert.Throws<ArgumentException>(() => s_coyote.Run(Configuration.Create().WithParallelism(2), () => { }));
        Assert.Throws<ArgumentException>(() => new CoyoteScheduler(CoyoteStrategy.Random, bound: 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CoyoteScheduler(CoyoteStrategy.Prioritization, bound: 0));
        Assert.Throws<ArgumentException>(() => CoyoteStrategies.Parse("pct"));
        Assert.Equal(CoyoteStrategy.FairPrioritization, CoyoteStrategies.Parse("fair-prioritization"));
        Assert.Equal("prioritization(10)", new CoyoteScheduler(CoyoteStrategy.Prioritization).StrategyName);
        Assert.Equal("probabilistic(3)", new CoyoteScheduler(CoyoteStrategy.Probabilistic).StrategyName);
    }

    private static Configuration Quiet() => Configuration.Create().WithTestingIterations(100).WithTraceFiles(false).WithFailureReplay(false);
}
