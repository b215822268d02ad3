using ClassicBugs;

namespace Engine.Systematic.Tests;

/// <summary>The failure report tells the story: who did what, where, and where control was taken away.</summary>
public sealed class TraceReportTests
{
    [Fact]
    public void TheInterleavingTableHasAColumnPerThreadAndASourceLocationPerStep()
    {
        var bug = ClassicBugCatalog.Get("lost-update");
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false), bug.Buggy);
        var found = report.FirstBug!;
        var table = found.Table;

        Assert.Contains("T0 main", table);
        Assert.Contains("T1 incrementer0", table);
        Assert.Contains("T2 incrementer1", table);
        Assert.Contains("Read LostUpdate.cs:", table);
        Assert.Contains("Write LostUpdate.cs:", table);
        Assert.Contains("* ", table);
        Assert.Contains("=> Assertion: Assertion failed in T0 'main': lost update", table);

        // Each step's operation is in the column of the thread that performed it.
        var lines = table.Split('\n');
        var header = lines.First(l => l.Contains("T1 incrementer0"));
        var column = header.IndexOf("T1 incrementer0", StringComparison.Ordinal);
        var firstT1Step = found.Trace.Steps.First(s => s.Thread == 1);
        var row = lines.First(l => l.TrimStart().StartsWith($"{firstT1Step.Index} |", StringComparison.Ordinal));
        Assert.Equal(firstT1Step.Operation.ToString(), row[column..].Split(' ', StringSplitOptions.RemoveEmptyEntries)[0]);

        var story = found.ToString();
        Assert.Contains("found in iteration", story);
        Assert.Contains("replay: sys1:", story);
    }

    [Fact]
    public void LongSchedulesShowTheirLastSteps()
    {
        var bug = ClassicBugCatalog.Get("aba-stack");
        var found = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false), bug.Buggy).FirstBug!;
        var table = found.Trace.ToTable(maxRows: 5);
        Assert.StartsWith($"... {found.Trace.Steps.Count - 5} earlier steps not shown", table);
        Assert.Contains($"{found.Trace.Steps.Count - 1} |", table);
    }

    [Fact]
    public void TraceJsonRoundTripsEveryField()
    {
        var bug = ClassicBugCatalog.Get("missed-wakeup");
        var found = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false).WithTestName("mw"), bug.Buggy).FirstBug!;
        var copy = ScheduleTrace.FromJson(found.Trace.ToJson());
        Assert.Equal(found.Trace.Steps, copy.Steps);
        Assert.Equal(found.Trace.Threads, copy.Threads);
        Assert.Equal("mw", copy.Test);
        Assert.Equal(found.Trace.BugKind, copy.BugKind);
        Assert.Equal(found.Trace.IterationSeed, copy.IterationSeed);
        Assert.Equal(found.Trace.Settings, copy.Settings);
        Assert.Throws<FormatException>(() => ScheduleTrace.FromJson("{\"Format\":\"something-else\"}"));
    }
}
