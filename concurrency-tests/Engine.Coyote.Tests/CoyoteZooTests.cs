using BugZoo;
using Engine.Systematic;

namespace Engine.Coyote.Tests;

/// <summary>
/// The bug zoo under real Microsoft Coyote, with Coyote's default exploration (its tuned portfolio): every entry's bug
/// is found with its knob off within 1,000 schedules for each of seeds 0–9, and with the fix <see cref="FixedSchedules"/>
/// schedules pass, none cut short by the step bound, every named interleaving met. The full claim (10,000 schedules
/// with the fix) runs from the command line: <c>engine zoo --scheduler coyote</c> (docs/coyote.md).
/// </summary>
public sealed class CoyoteZooTests
{
    /// <summary>The CI tier of the fixed claim: enough to meet every named interleaving of every entry.</summary>
    private const int FixedSchedules = 500;

    private static readonly CoyoteScheduler s_coyote = new();

    public static TheoryData<int> Entries => new(BugZooCatalog.All.Select(e => e.Number));

    [Theory]
    [MemberData(nameof(Entries))]
    public void WithTheKnobOffCoyoteFindsTheBugWithinOneThousandSchedulesForEachOfTenSeeds(int number)
    {
        var entry = Entry(number);
        for (var seed = 0; seed < 10; seed++)
        {
            var report = ZooRunner.FindBug(entry, seed, budget: 1_000, scheduler: s_coyote);
            Assert.True(report.FirstBug is not null, $"entry {entry.Number} ({entry.Name}), seed {seed}: Coyote did not find it in 1,000 schedules");
            Assert.Null(ZooRunner.Mismatch(entry, report.FirstBug));
            Assert.Equal(CoyoteScheduler.SchedulerName, report.Scheduler);
        }
    }

    [Fact]
    public void CoyotesReportTellsTheRaceInTheSameEventsAsOursWhenBothReplayOneSchedule()
    {
        var entry = Entry(10);
        var bug = ZooRunner.FindBug(entry, seed: 0, budget: 1_000, scheduler: s_coyote).FirstBug!;
        Assert.Contains(bug.Trace.Events, e => e.Function == "faultin_page");
        Assert.Contains(bug.Trace.Events, e => e.Function == "access_remote_vm" && e.Value == 666);
        Assert.Contains("do_read_fault: map page-cache pfn", bug.ToString());

        // The built-in scheduler following the same schedule records the same events.
        var ours = TestingEngine.Replay(bug.ReplayString, entry.Buggy).FirstBug!;
        Assert.Equal(bug.Trace.Events, ours.Trace.Events);
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void WithTheFixCoyotePassesAndMeetsEveryNamedInterleaving(int number)
    {
        var entry = Entry(number);
        var (report, events) = ZooRunner.RunFixed(entry, FixedSchedules, scheduler: s_coyote);
        Assert.Null(ZooRunner.FixedFailure(entry, report, events));
        Assert.Equal(FixedSchedules, report.Iterations);
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void CoyotesReportOfTheBuggyScenarioCarriesItsEntrysKindAndSoDoBothReplays(int number)
    {
        var entry = Entry(number);
        var bug = ZooRunner.FindBug(entry, seed: 0, budget: 1_000, scheduler: s_coyote).FirstBug!;
        Assert.Equal(BugKind.Assertion, bug.Kind);
        Assert.Equal(entry.Kind, bug.Category);
        Assert.Equal(entry.Kind, bug.Trace.BugCategory);

        var own = s_coyote.Replay(bug.Trace, entry.Buggy);
        Assert.Null(own.Divergence);
        Assert.Equal(entry.Kind, own.FirstBug!.Category);

        var builtin = TestingEngine.Replay(bug.Trace, entry.Buggy);
        Assert.Null(builtin.Divergence);
        Assert.Equal(entry.Kind, builtin.FirstBug!.Category);
    }

    private static ZooEntry Entry(int number) => BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
}
