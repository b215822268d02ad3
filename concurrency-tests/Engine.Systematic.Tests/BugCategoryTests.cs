using System.Text.Json.Nodes;
using Engine.Sync;

namespace Engine.Systematic.Tests;

/// <summary>
/// An assertion may state what kind of bug it reports (<see cref="Specification.Assert(bool, string, string)"/>): the
/// kind is the report's <see cref="BugReport.Category"/>, kept through replay, trace files and minimisation, and it
/// leaves the message alone.
/// </summary>
public sealed class BugCategoryTests
{
    private const string LostUpdate = "LostUpdate";

    [Fact]
    public void TheKindAnAssertionStatesIsTheReportsCategoryAndSurvivesMinimisation()
    {
        var found = TestingEngine.Run(Configuration.Create().WithStrategy(Strategy.Random).WithTestingIterations(2_000).WithSeed(11).WithTraceFiles(false), Body).FirstBug!;

        Assert.Equal(BugKind.Assertion, found.Kind);
        Assert.Equal(LostUpdate, found.Category);
        Assert.Equal(LostUpdate, found.Trace.BugCategory);
        Assert.EndsWith(": lost update after the loops", found.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(LostUpdate, found.Message, StringComparison.Ordinal);

        // The reported schedule is the minimised one, and it was confirmed to fail with the same kind.
        Assert.True(found.Reproducible, found.ReproductionNote);
        Assert.True(found.OriginalPreemptions > found.Preemptions, $"nothing to minimise: {found.OriginalPreemptions} preemption(s)");
        Assert.Equal(1, found.Preemptions);
    }

    [Fact]
    public void ReplaysFromTheStringAndFromTheTraceFileKeepTheCategory()
    {
        var found = Find();

        var again = TestingEngine.Replay(found.ReplayString, Body);
        Assert.Null(again.Divergence);
        Assert.Equal(LostUpdate, again.FirstBug!.Category);

        var trace = ScheduleTrace.FromJson(found.Trace.ToJson());
        Assert.Equal(LostUpdate, trace.BugCategory);
        var fromFile = TestingEngine.Replay(trace, Body);
        Assert.Null(fromFile.Divergence);
        Assert.Equal(LostUpdate, fromFile.FirstBug!.Category);
    }

    [Fact]
    public void AReplayThatFailsWithAnotherKindEndsInADifferentBug()
    {
        var json = JsonNode.Parse(Find().Trace.ToJson())!;
        json["BugCategory"] = "SomethingElse";

        var replay = TestingEngine.Replay(ScheduleTrace.FromJson(json.ToJsonString()), Body);

        Assert.NotNull(replay.Divergence);
        Assert.StartsWith("the schedule was followed to the end but ended in a different bug", replay.Divergence, StringComparison.Ordinal);
    }

    [Fact]
    public void AnAssertionThatStatesNoKindAndAnyOtherBugHaveNoCategory()
    {
        var plain = TestingEngine.Run(Quiet(), () => Specification.Assert(false, "no kind stated")).FirstBug!;
        Assert.Equal(BugKind.Assertion, plain.Kind);
        Assert.Null(plain.Category);
        Assert.Null(plain.Trace.BugCategory);
        Assert.DoesNotContain("BugCategory", plain.Trace.ToJson(), StringComparison.Ordinal);

        var thrown = TestingEngine.Run(Quiet(), () => throw new InvalidOperationException("LostUpdate")).FirstBug!;
        Assert.Equal(BugKind.Exception, thrown.Kind);
        Assert.Null(thrown.Category);
    }

    [Fact]
    public void OutsideTheTesterTheExceptionCarriesTheKind()
    {
        var failed = Assert.Throws<AssertionFailureException>(() => Specification.Assert(false, LostUpdate, "on real threads"));
        Assert.Equal("on real threads", failed.Message);
        Assert.Equal(LostUpdate, failed.Category);
        Assert.Null(Assert.Throws<AssertionFailureException>(() => Specification.Assert(false, "on real threads")).Category);
        Assert.Throws<ArgumentException>(() => Specification.Fail(" ", "a kind must name something"));
        Specification.Assert(true, LostUpdate, "a passing assertion costs nothing");
    }

    /// <summary>
    /// Two threads each do ten increments (correctly) and then one racy read-modify-write on another counter: random
    /// schedules preempt inside the harmless loops many times, and minimisation keeps only the one that matters.
    /// </summary>
    private static void Body()
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
        Specification.Assert(Atomic.Read(ref counters[1]) == 2, LostUpdate, "lost update after the loops");
    }

    private static BugReport Find() => TestingEngine.Run(Quiet().WithTestingIterations(1_000), Body).FirstBug!;

    private static Configuration Quiet() => Configuration.Create().WithTestingIterations(10).WithTraceFiles(false);
}
