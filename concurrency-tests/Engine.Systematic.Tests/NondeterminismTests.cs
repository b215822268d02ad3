using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>Each failing schedule is replayed once: a bug that does not come back exposes nondeterminism the tester does not control.</summary>
public sealed class NondeterminismTests
{
    [Fact]
    public void ABugThatDependsOnStateOutsideTheTesterIsFlaggedAsNotReproducible()
    {
        var calls = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10).WithTraceFiles(false), () =>
        {
            // Plain Interlocked: invisible to the scheduler, and it survives from one execution to the next.
            var call = Interlocked.Increment(ref calls);
            var counter = new int[1];
            Atomic.Increment(ref counter[0]);
            Specification.Assert(call != 3, "the third execution fails");
        });

        Assert.Equal(1, report.BugsFound);
        var bug = report.FirstBug!;
        Assert.Equal(2, bug.Iteration);
        Assert.False(bug.Reproducible);
        Assert.Contains("no bug occurred", bug.ReproductionNote);
        Assert.Contains("not reproducible", bug.ToString());
    }

    [Fact]
    public void ADeterministicBugIsReproducible()
    {
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(100).WithTraceFiles(false), () =>
        {
            var counter = new int[1];
            var other = ControlledThread.Start(() => Atomic.Write(ref counter[0], Atomic.Read(ref counter[0]) + 1));
            Atomic.Write(ref counter[0], Atomic.Read(ref counter[0]) + 1);
            other.Join();
            Specification.Assert(Atomic.Read(ref counter[0]) == 2, "lost update");
        });

        Assert.True(report.FirstBug!.Reproducible);
        Assert.Null(report.FirstBug.ReproductionNote);
    }
}
