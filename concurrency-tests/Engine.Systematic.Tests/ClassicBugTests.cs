using ClassicBugs;

namespace Engine.Systematic.Tests;

/// <summary>
/// The classic bugs of issue 2: every buggy version is found by the default portfolio within 1,000 iterations for each
/// of 10 seeds, and by every single strategy; every correct version passes 10,000 iterations with no bug and no false
/// deadlock, and its DFS space (2 preemptions) is exhausted without a bug. These budgets are the full ones:
/// the examples are small enough to run them in CI (the whole class takes a few seconds).
/// </summary>
public sealed class ClassicBugTests
{
    private const int BugBudget = 1_000;
    private const int CorrectIterations = 10_000;

    public static TheoryData<string> Names => new(ClassicBugCatalog.All.Select(b => b.Name));

    public static TheoryData<string, Strategy> NamesAndStrategies
    {
        get
        {
            var data = new TheoryData<string, Strategy>();
            foreach (var bug in ClassicBugCatalog.All)
            {
                foreach (var strategy in new[] { Strategy.Random, Strategy.Pct, Strategy.Probabilistic, Strategy.Dfs })
                {
                    data.Add(bug.Name, strategy);
                }
            }

            return data;
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void BuggyVersionIsFoundByThePortfolioForEachOfTenSeeds(string name)
    {
        var bug = ClassicBugCatalog.Get(name);
        for (var seed = 0; seed < 10; seed++)
        {
            var report = TestingEngine.Run(Quiet().WithTestingIterations(BugBudget).WithSeed(seed), bug.Buggy);
            Assert.True(report.BugsFound == 1, $"{name}: seed {seed} found no bug in {BugBudget} iterations");
            Assert.Equal(bug.Expected, report.FirstBug!.Kind);
            Assert.InRange(report.Iterations, 1, BugBudget);
        }
    }

    [Theory]
    [MemberData(nameof(NamesAndStrategies))]
    public void BuggyVersionIsFoundByEveryStrategy(string name, Strategy strategy)
    {
        var bug = ClassicBugCatalog.Get(name);
        var report = TestingEngine.Run(Quiet().WithStrategy(strategy).WithTestingIterations(BugBudget).WithSeed(1), bug.Buggy);
        Assert.True(report.BugsFound == 1, $"{name} not found by {strategy}");
        Assert.Equal(bug.Expected, report.FirstBug!.Kind);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void CorrectVersionPassesTenThousandIterationsWithoutBugOrFalseDeadlock(string name)
    {
        var bug = ClassicBugCatalog.Get(name);
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(CorrectIterations), bug.Correct);
        Assert.True(report.BugsFound == 0, report.ToString());
        Assert.Equal(CorrectIterations, report.Iterations);
        Assert.Equal(0, report.StepBoundHits);

        // Vacuity guard: the iterations really interleaved the threads (more than one thread's worth of steps).
        Assert.True(report.MaxStepsInIteration > 5, $"iterations took at most {report.MaxStepsInIteration} steps");
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void CorrectVersionSurvivesExhaustiveSearchWithTwoPreemptions(string name)
    {
        var bug = ClassicBugCatalog.Get(name);
        var report = TestingEngine.Run(Configuration.Create().WithDfsStrategy(2).WithTestingIterations(100_000), bug.Correct);
        Assert.True(report.BugsFound == 0, report.ToString());
        Assert.True(report.Exhausted, $"{name}: DFS did not exhaust its bounded space in {report.Iterations} schedules");
        Assert.True(report.Iterations > 1);
    }

    private static Configuration Quiet() => Configuration.Create().WithScheduleMinimization(false).WithFailureReplay(false).WithTraceFiles(false);
}
