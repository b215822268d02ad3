using BugZoo;
using Engine.Systematic;

namespace Engine.Tests;

/// <summary>
/// The bug zoo's claims (docs/bug-zoo.md), entry by entry: with the knob off, the default portfolio finds the entry's
/// bug within 1,000 schedules for each of seeds 0–9; with the fix, 10,000 schedules pass, none cut short by the step
/// bound, and every interleaving the entry names was met (so the pass is not vacuous). <c>engine zoo</c> runs the same.
/// </summary>
public sealed class BugZooTests
{
    public static TheoryData<int> Entries => new(BugZooCatalog.All.Select(e => e.Number));

    [Theory]
    [MemberData(nameof(Entries))]
    public void WithTheKnobOffTheBugIsFoundWithinOneThousandSchedulesForEachOfTenSeeds(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        for (var seed = 0; seed < 10; seed++)
        {
            var report = ZooRunner.FindBug(entry, seed, budget: 1_000);
            Assert.True(report.FirstBug is not null, $"entry {entry.Number} ({entry.Name}), seed {seed}: not found in 1,000 schedules");
            Assert.Null(ZooRunner.Mismatch(entry, report.FirstBug));
        }
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void WithTheFixTenThousandSchedulesPassAndEveryNamedInterleavingIsMet(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // Lanes change nothing in what is explored (iteration i has the same schedule on any lane), only how long the
        // 10,000 schedules take: as many as `engine zoo` uses.
        var (report, events) = ZooRunner.RunFixed(entry, iterations: 10_000, parallelism: Environment.ProcessorCount);
        Assert.Null(ZooRunner.FixedFailure(entry, report, events));
        Assert.Equal(10_000, report.Iterations);
    }

    [Fact]
    public void TheCatalogueNumbersItsTenEntriesInOrderWithDistinctNames()
    {
        Assert.Equal(Enumerable.Range(1, 10), BugZooCatalog.All.Select(e => e.Number));
        Assert.Equal(BugZooCatalog.All.Count, BugZooCatalog.All.Select(e => e.Name).Distinct().Count());
        Assert.All(BugZooCatalog.All, e => Assert.False(string.IsNullOrWhiteSpace(e.Signature)));
        Assert.Throws<ArgumentException>(() => BugZooCatalog.Get("no-such-bug"));
    }
}
