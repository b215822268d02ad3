using ClassicBugs;
using Engine.Systematic;

namespace Engine.Coyote.Tests;

/// <summary>
/// The classic bugs under real Coyote: every buggy version is found with the expected kind of bug (assertion or
/// deadlock) by Coyote's portfolio within 1,000 iterations for each of seeds 0–9 and by its prioritization strategy;
/// every correct version passes 1,000 iterations with no bug, no false deadlock and no step-bound hit.
/// </summary>
public sealed class CoyoteClassicBugTests
{
    public static TheoryData<string> Names => new(ClassicBugCatalog.All.Select(b => b.Name));

    [Theory]
    [MemberData(nameof(Names))]
    public void BuggyVersionIsFoundByCoyotesPortfolioForEachOfTenSeeds(string name)
    {
        var bug = ClassicBugCatalog.Get(name);
        for (var seed = 0; seed < 10; seed++)
        {
            var report = new CoyoteScheduler().Run(Quiet().WithTestingIterations(1_000).WithSeed(seed), bug.Buggy);
            Assert.True(report.FirstBug is not null, $"{name}: seed {seed} found no bug in 1,000 iterations");
            Assert.Equal(bug.Expected, report.FirstBug.Kind);
        }
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void BuggyVersionIsFoundByCoyotesPrioritizationStrategy(string name)
    {
        var bug = ClassicBugCatalog.Get(name);
        var report = new CoyoteScheduler(CoyoteStrategy.Prioritization).Run(Quiet().WithTestingIterations(1_000).WithSeed(1), bug.Buggy);
        Assert.True(report.FirstBug is not null, $"{name} not found by prioritization");
        Assert.Equal(bug.Expected, report.FirstBug.Kind);
    }

    [Theory]
    [MemberData(nameof(Names))]
    public void CorrectVersionPassesOneThousandIterationsWithoutBugOrFalseDeadlock(string name)
    {
        var bug = ClassicBugCatalog.Get(name);
        var report = new CoyoteScheduler().Run(Configuration.Create().WithTestingIterations(1_000), bug.Correct);
        Assert.True(report.BugsFound == 0, report.ToString());
        Assert.Equal(1_000, report.Iterations);
        Assert.Equal(0, report.StepBoundHits);

        // Vacuity guard: the iterations really interleaved the threads.
        Assert.True(report.MaxStepsInIteration > 5, $"iterations took at most {report.MaxStepsInIteration} steps");
    }

    private static Configuration Quiet() => Configuration.Create().WithScheduleMinimization(false).WithFailureReplay(false).WithTraceFiles(false);
}
