using Engine.Sync;
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
        var row = lines.First(l => l.TrimStart().StartsWith($"{firstT1Step.Index} |", StringComparison.Ordinal) || l.TrimStart().StartsWith($"{firstT1Step.Index}-", StringComparison.Ordinal));
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
        Assert.Matches(@"^\.\.\. \d+ earlier steps not shown", table);
        Assert.Matches($@"(^|[ -]){found.Trace.Steps.Count - 1} \|", table);
        Assert.Equal(5 + 2, table.Split('\n').Count(l => l.Contains(" | ", StringComparison.Ordinal)));
    }

    [Fact]
    public void RepeatedStepsOfOneThreadAreFoldedIntoOneRow()
    {
        static TraceStep Step(int index, int thread, int line, bool preemption = false)
            => new(index, DecisionKind.Schedule, thread, 0, 0, OperationKind.Read, "Spin.cs", line, thread, index, preemption);
        var trace = new ScheduleTrace
        {
            Threads = ["main", "spinner"],
            Steps = [Step(0, 0, 1), Step(1, 1, 5), Step(2, 1, 5), Step(3, 1, 5), Step(4, 1, 5, preemption: true), Step(5, 0, 2), Step(6, 0, 2)],
        };
        var table = trace.ToTable();
        Assert.Contains("1-3 |", table);
        Assert.Contains("Read Spin.cs:5 x3", table);
        Assert.Contains("* Read Spin.cs:5", table);
        Assert.Contains("5-6 |", table);
        Assert.Contains("Read Spin.cs:2 x2", table);
        Assert.DoesNotContain("earlier steps", table);

        // The row budget counts folded rows: 4 rows cover all 7 steps.
        Assert.DoesNotContain("earlier steps", trace.ToTable(maxRows: 4));
        Assert.StartsWith("... 1 earlier steps not shown", trace.ToTable(maxRows: 3));
    }

    [Fact]
    public void ACutScheduleStillShowsTheThreadSwitchesFarBeforeItsEnd()
    {
        // T0 runs, is preempted at step 10 by T1, gets back at step 13 and then runs 100 distinct steps to the end.
        static TraceStep Step(int index, int thread, bool preemption = false)
            => new(index, DecisionKind.Schedule, thread, 0, 0, OperationKind.Read, "Story.cs", index, thread, index, preemption);
        var steps = new List<TraceStep>();
        for (var i = 0; i < 114; i++)
        {
            steps.Add(Step(i, i is >= 10 and < 13 ? 1 : 0, preemption: i == 10));
        }

        var trace = new ScheduleTrace { Threads = ["main", "other"], Steps = steps };
        var table = trace.ToTable(maxRows: 20);
        Assert.StartsWith("... ", table);
        Assert.Contains("* Read Story.cs:10", table); // the preemption, far before the last 20 rows
        Assert.Contains("Read Story.cs:9 ", table);   // and what T0 did just before it
        Assert.Contains("Read Story.cs:13", table);   // and the switch back
        Assert.Contains("Read Story.cs:113", table);  // the end is still there
        Assert.Matches(@"\n\.\.\. \d+ steps not shown\n", table);
        Assert.Equal(20 + 2, table.Split('\n').Count(l => l.Contains(" | ", StringComparison.Ordinal)));
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
