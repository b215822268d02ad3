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

    [Theory]
    [MemberData(nameof(Entries))]
    public void TheBuggyScenariosReportCarriesItsEntrysKindAndItsReplayToo(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var bug = ZooRunner.FindBug(entry, seed: 0, budget: 1_000).FirstBug!;
        Assert.Equal(BugKind.Assertion, bug.Kind);
        Assert.Equal(entry.Kind, bug.Category);
        Assert.Equal(entry.Kind, bug.Trace.BugCategory);

        var replay = TestingEngine.Replay(bug.ReplayString, entry.Buggy);
        Assert.Null(replay.Divergence);
        Assert.Equal(entry.Kind, replay.FirstBug!.Category);
    }

    [Fact]
    public void AFailureOfAnotherKindIsNotTheEntrysBugWhateverItsMessageSays()
    {
        var entry = BugZooCatalog.Get("free-before-flush");

        // The words of the entry's own assertion, but another kind (or none): another bug.
        var other = Fail(() => Specification.Assert(false, ZooBugKind.LostStore, "use-after-free through a stale TLB entry"));
        Assert.Contains("that is not its bug (kind LostStore, not UseAfterFree)", ZooRunner.Mismatch(entry, other), StringComparison.Ordinal);
        Assert.Contains("(kind none, not UseAfterFree)", ZooRunner.Mismatch(entry, Fail(() => Specification.Assert(false, "use-after-free through a stale TLB entry"))), StringComparison.Ordinal);
        Assert.Contains("failed with a Exception that is not its bug (kind none", ZooRunner.Mismatch(entry, Fail(() => throw new InvalidOperationException("use-after-free"))), StringComparison.Ordinal);

        // Its kind, whatever the words.
        Assert.Null(ZooRunner.Mismatch(entry, Fail(() => Specification.Assert(false, ZooBugKind.UseAfterFree, "worded otherwise"))));

        // A real report of one entry is no other entry's bug: the kinds are distinct.
        Assert.Equal(BugZooCatalog.All.Count, BugZooCatalog.All.Select(e => e.Kind).Distinct().Count());
        var wrongCow = BugZooCatalog.Get("wrong-cow");
        var found = ZooRunner.FindBug(wrongCow, seed: 0, budget: 1_000).FirstBug!;
        Assert.Null(ZooRunner.Mismatch(wrongCow, found));
        Assert.All(BugZooCatalog.All.Where(e => e != wrongCow), e => Assert.NotNull(ZooRunner.Mismatch(e, found)));
    }

    [Fact]
    public void ABrokenInvariantIsReportedWithTheKindOfTheFirstViolation()
    {
        var bug = Fail(() =>
        {
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64 });
            var leaked = machine.Allocator.AllocatePage(0);
            Assert.True(leaked >= 0);
            ZooScenario.AssertInvariants(machine);
        });

        Assert.Equal(nameof(Invariants.ViolationKind.LeakedFrame), bug.Category);
        Assert.Contains("but nothing maps or holds it (leak)", bug.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheCatalogueNumbersItsTenEntriesInOrderWithDistinctNames()
    {
        Assert.Equal(Enumerable.Range(1, 10), BugZooCatalog.All.Select(e => e.Number));
        Assert.Equal(BugZooCatalog.All.Count, BugZooCatalog.All.Select(e => e.Name).Distinct().Count());
        Assert.All(BugZooCatalog.All, e => Assert.False(string.IsNullOrWhiteSpace(e.Kind)));
        Assert.Throws<ArgumentException>(() => BugZooCatalog.Get("no-such-bug"));
    }

    private static BugReport Fail(Action body)
        => TestingEngine.Run(Configuration.Create().WithTestingIterations(1).WithTraceFiles(false), body).FirstBug
            ?? throw new InvalidOperationException("the body did not fail");
}
