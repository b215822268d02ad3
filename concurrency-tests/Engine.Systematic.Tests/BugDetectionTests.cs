using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>Every kind of bug the tester promises to detect is detected, with a message that says what happened.</summary>
public sealed class BugDetectionTests
{
    [Fact]
    public void UnhandledExceptionInAControlledThreadIsReported()
    {
        var report = TestingEngine.Run(Quiet(), () =>
        {
            var flag = new int[1];
            var thread = ControlledThread.Start(() =>
            {
                if (Atomic.Read(ref flag[0]) == 1)
                {
                    throw new InvalidOperationException("saw the flag");
                }
            }, "checker");
            Atomic.Write(ref flag[0], 1);
            thread.Join();
        });

        Assert.Equal(1, report.BugsFound);
        var bug = report.FirstBug!;
        Assert.Equal(BugKind.Exception, bug.Kind);
        Assert.Contains("T1 'checker'", bug.Message);
        Assert.Contains("System.InvalidOperationException: saw the flag", bug.Message);
        Assert.IsType<InvalidOperationException>(bug.Exception);
    }

    [Fact]
    public void DeadlockNamesTheWaitingThreadsAndWhereTheyWait()
    {
        var report = TestingEngine.Run(Quiet(), () =>
        {
            var flag = new int[1];
            var waiter = ControlledThread.Start(() => Wait.Until(flag, static f => Atomic.Read(ref f[0]) == 1), "waiter");
            waiter.Join();
        });

        Assert.Equal(1, report.BugsFound);
        Assert.Equal(BugKind.Deadlock, report.FirstBug!.Kind);
        Assert.Contains("T1 'waiter' waits in WaitCheck at BugDetectionTests.cs", report.FirstBug.Message);
        Assert.Contains("T0 'main' waits in ThreadJoin", report.FirstBug.Message);
    }

    [Fact]
    public void StepBoundIsCountedByDefaultAndReportedAsAHangWhenConfigured()
    {
        static void Livelock()
        {
            var flag = new int[1];
            while (Atomic.Read(ref flag[0]) == 0)
            {
                SchedulingPoint.Interleave();
            }
        }

        var counted = TestingEngine.Run(Quiet().WithTestingIterations(5).WithMaxSteps(500), Livelock);
        Assert.Equal(0, counted.BugsFound);
        Assert.Equal(5, counted.StepBoundHits);

        var reported = TestingEngine.Run(Quiet().WithTestingIterations(5).WithMaxSteps(500).WithStepBoundAsBug(), Livelock);
        Assert.Equal(1, reported.BugsFound);
        Assert.Equal(BugKind.Hang, reported.FirstBug!.Kind);
        Assert.Contains("step bound (500", reported.FirstBug.Message);
    }

    [Fact]
    public void AWaitingThreadTakesNoStepsUntilItsConditionMayHold()
    {
        const int Increments = 50;
        var report = TestingEngine.Run(Quiet().WithTestingIterations(200), () =>
        {
            var state = new int[2];
            var waiter = ControlledThread.Start(() => Wait.Until(state, static s => Atomic.Read(ref s[1]) == 1), "waiter");
            for (var i = 0; i < Increments; i++)
            {
                Atomic.Increment(ref state[0]);
            }

            Atomic.Write(ref state[1], 1);
            waiter.Join();
        });

        Assert.Equal(0, report.BugsFound);

        // 50 increments, the flag, the start, the join and a handful of wait checks: a spinning waiter would add a
        // step for every step of the incrementer.
        Assert.InRange(report.MaxStepsInIteration, Increments, Increments + 12);
    }

    [Fact]
    public void AnUncontrolledThreadUsingEngineSyncIsReportedByName()
    {
        var report = TestingEngine.Run(Quiet().WithTestingIterations(3), () =>
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

        Assert.Equal(1, report.BugsFound);
        Assert.Equal(BugKind.Uncontrolled, report.FirstBug!.Kind);
        Assert.Contains("'rogue-worker'", report.FirstBug.Message);
        Assert.Contains("Increment at BugDetectionTests.cs", report.FirstBug.Message);
    }

    [Fact]
    public void AControlledThreadBlockedOutsideEngineSyncIsCaughtByTheWatchdog()
    {
        using var never = new ManualResetEventSlim();
        try
        {
            var report = TestingEngine.Run(Quiet().WithTestingIterations(3).WithWatchdogTimeout(TimeSpan.FromMilliseconds(300)), () =>
            {
                var counter = new int[1];
                var other = ControlledThread.Start(() => Atomic.Increment(ref counter[0]), "other");
                Atomic.Increment(ref counter[0]);
                never.Wait();
                other.Join();
            });

            Assert.Equal(1, report.BugsFound);
            Assert.Equal(BugKind.Uncontrolled, report.FirstBug!.Kind);
            Assert.StartsWith("Watchdog: T0 'main' made no scheduling decision", report.FirstBug.Message);
        }
        finally
        {
            // Let the abandoned thread go; its iteration is over, so its next step unwinds it.
            never.Set();
        }
    }

    [Fact]
    public void AssertOutsideTheTesterThrows()
    {
        var failure = Assert.Throws<AssertionFailureException>(() => Specification.Assert(false, "plain failure"));
        Assert.Equal("plain failure", failure.Message);
    }

    [Fact]
    public void AFailedAssertionEndsTheIterationAndUnwindsTheOtherThreads()
    {
        var finallyRan = 0;
        var report = TestingEngine.Run(Quiet(), () =>
        {
            var gate = new int[1];
            var blocked = ControlledThread.Start(() =>
            {
                try
                {
                    Wait.Until(gate, static g => Atomic.Read(ref g[0]) == 1);
                }
                finally
                {
                    Interlocked.Increment(ref finallyRan);
                }
            }, "blocked");
            SchedulingPoint.Interleave();
            Specification.Assert(false, "stop here");
            blocked.Join();
        });

        Assert.Equal(1, report.BugsFound);
        Assert.Equal(BugKind.Assertion, report.FirstBug!.Kind);
        Assert.Equal("Assertion failed in T0 'main': stop here", report.FirstBug.Message);

        // The blocked thread was unwound (its finally ran) in the failing iteration and in every replay of it.
        Assert.True(finallyRan >= 1);
    }

    [Fact]
    public void InvalidSettingsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Configuration.Create().WithTestingIterations(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Configuration.Create().WithMaxSteps(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Configuration.Create().WithParallelism(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => Configuration.Create().WithDfsStrategy(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => Configuration.Create().WithWatchdogTimeout(TimeSpan.Zero));

        // A switch with probability 1/2^b is drawn from 64 random bits: b = 64 would switch at every decision.
        Assert.Throws<ArgumentOutOfRangeException>(() => Configuration.Create().WithProbabilisticStrategy(64));
        Assert.Equal(63, Configuration.Create().WithProbabilisticStrategy(63).ProbabilisticBound);
    }

    private static Configuration Quiet() => Configuration.Create().WithTestingIterations(100).WithTraceFiles(false);
}
