using System.Text.Json.Nodes;
using ClassicBugs;

namespace Engine.Systematic.Tests;

/// <summary>A reported schedule replays its bug exactly; a schedule the program no longer follows is reported with its step.</summary>
public sealed class ReplayTests : IDisposable
{
    private readonly string _traces = Directory.CreateTempSubdirectory("engine-replay-tests-").FullName;

    public void Dispose() => Directory.Delete(_traces, recursive: true);

    [Theory]
    [InlineData("lost-update")]
    [InlineData("aba-stack")]
    [InlineData("lock-order")]
    [InlineData("missed-wakeup")]
    public void ReplayStringReproducesTheBug(string name)
    {
        var bug = ClassicBugCatalog.Get(name);
        var found = Find(bug);

        var replay = TestingEngine.Replay(found.ReplayString, bug.Buggy);

        Assert.Null(replay.Divergence);
        Assert.Equal(1, replay.BugsFound);
        Assert.Equal(found.Kind, replay.FirstBug!.Kind);
        if (found.Kind == BugKind.Assertion)
        {
            Assert.Equal(found.Message, replay.FirstBug.Message);
        }

        Assert.Equal(found.Trace.Steps.Select(s => s.Thread), replay.FirstBug.Trace.Steps.Select(s => s.Thread));
    }

    [Fact]
    public void JsonTraceFileReproducesTheBugStepByStep()
    {
        var bug = ClassicBugCatalog.Get("aba-stack");
        var found = Find(bug);
        Assert.NotNull(found.TraceFile);
        Assert.True(File.Exists(found.TraceFile));

        var loaded = ScheduleTrace.Load(found.TraceFile!);
        Assert.Equal(found.Trace.Steps, loaded.Steps);
        Assert.Equal(found.ReplayString, loaded.ReplayString);
        Assert.Equal(BugKind.Assertion, loaded.BugKind);
        Assert.Equal("0", loaded.Settings["Seed"]);

        var replay = TestingEngine.ReplayFile(found.TraceFile!, bug.Buggy);
        Assert.Null(replay.Divergence);
        Assert.Equal(found.Message, replay.FirstBug!.Message);
    }

    [Fact]
    public void TamperedTraceReportsTheStepAtWhichItDiverged()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        var found = Find(bug);

        // Move one operation to another source line: the replay must stop exactly there.
        var json = JsonNode.Parse(found.Trace.ToJson())!;
        var steps = json["Steps"]!.AsArray();
        var target = steps.Count / 2;
        steps[target]!["Line"] = 9999;
        var tampered = ScheduleTrace.FromJson(json.ToJsonString());

        var replay = TestingEngine.Replay(tampered, bug.Buggy);

        Assert.NotNull(replay.Divergence);
        Assert.StartsWith($"step {target}:", replay.Divergence);
    }

    [Fact]
    public void TamperedReplayStringReportsDivergence()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        var found = Find(bug);

        // Schedule a thread that does not exist at the first decision after the start.
        var decisions = found.Trace.Steps.ToList();
        decisions[1] = decisions[1] with { Thread = 7, Value = 7 };
        var tampered = ReplayString.Encode(decisions, found.Trace.MaxSteps, hangIsBug: false);

        var replay = TestingEngine.Replay(tampered, bug.Buggy);

        Assert.NotNull(replay.Divergence);
        Assert.Contains("step 1:", replay.Divergence);
        Assert.Contains("T7", replay.Divergence);
    }

    [Fact]
    public void TruncatedScheduleReportsThatTheTestWentOn()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        var found = Find(bug);
        var truncated = ReplayString.Encode(found.Trace.Steps.Take(3).ToList(), found.Trace.MaxSteps, hangIsBug: false);

        var replay = TestingEngine.Replay(truncated, bug.Buggy);

        Assert.NotNull(replay.Divergence);
        Assert.Contains("ends after 3 decisions", replay.Divergence);
    }

    [Theory]
    [InlineData("")]
    [InlineData("sys1:")]
    [InlineData("sys1:not-base64!!")]
    [InlineData("coyote:abc")]
    public void MalformedReplayStringIsRejectedClearly(string replay)
        => Assert.Throws<FormatException>(() => TestingEngine.Replay(replay, () => { }));

    [Fact]
    public void AReplayStringWithoutAStepBoundOrWithMoreScheduleStepsThanItAllowsIsRejected()
    {
        // Such strings are corrupt (the tester never records them), and a run length taken on trust fills memory.
        var steps = Enumerable.Range(0, 5).Select(i => new TraceStep(i, DecisionKind.Schedule, 0, 0, 0, default, "", 0, -1, 0, false)).ToList();

        Assert.Equal(5, ReplayString.Decode(ReplayString.Encode(steps, maxSteps: 5, hangIsBug: false)).Decisions.Count);
        Assert.Throws<FormatException>(() => ReplayString.Decode(ReplayString.Encode(steps, maxSteps: 0, hangIsBug: false)));
        Assert.Throws<FormatException>(() => ReplayString.Decode(ReplayString.Encode(steps, maxSteps: 4, hangIsBug: false)));
    }

    [Theory]
    [InlineData("{}")]
    [InlineData("{\"Format\":\"engine-systematic-trace/1\",\"MaxSteps\":0,\"Steps\":[]}")]
    [InlineData("{\"Format\":\"engine-systematic-trace/1\",\"MaxSteps\":10,\"Steps\":null}")]
    [InlineData("{\"Format\":\"engine-systematic-trace/1\",\"MaxSteps\":10,\"Steps\":[{\"Kind\":7,\"File\":\"\"}]}")]
    [InlineData("{\"Format\":\"engine-systematic-trace/1\",\"MaxSteps\":10,\"Steps\":[{\"Kind\":\"Schedule\",\"Thread\":-5,\"File\":\"\"}]}")]
    [InlineData("{\"Format\":\"engine-systematic-trace/1\",\"MaxSteps\":10,\"Steps\":[")]
    public void ATraceThatCannotBeReplayedIsRejectedWhenRead(string json)
    {
        var refused = Record.Exception(() => ScheduleTrace.FromJson(json));
        Assert.True(refused is FormatException or System.Text.Json.JsonException, refused?.ToString() ?? "accepted");
    }

    [Fact]
    public void DataChoicesAreRecordedAndReplayed()
    {
        var chosen = new List<int>();
        void Body()
        {
            var a = ControlledRandom.RandomInteger(5);
            var b = ControlledRandom.RandomBoolean() ? 1 : 0;
            chosen.Add(a * 2 + b);
            Specification.Assert(!(a == 3 && b == 1), "a rare combination");
        }

        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceDirectory(_traces), Body);
        Assert.Equal(1, report.BugsFound);
        var steps = report.FirstBug!.Trace.Steps;
        Assert.Contains(steps, s => s.Kind == DecisionKind.Integer && s.Value == 3 && s.Bound == 5);
        Assert.Contains(steps, s => s.Kind == DecisionKind.Boolean && s.Value == 1);

        chosen.Clear();
        var replay = TestingEngine.Replay(report.FirstBug.ReplayString, Body);
        Assert.Null(replay.Divergence);
        Assert.Equal([7], chosen);
    }

    private BugReport Find(ClassicBug bug)
    {
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceDirectory(_traces).WithTestName(bug.Name), bug.Buggy);
        Assert.Equal(1, report.BugsFound);
        Assert.True(report.FirstBug!.Reproducible, report.FirstBug.ReproductionNote);
        return report.FirstBug;
    }
}
