using BugZoo;

namespace Engine.Tests;

/// <summary>
/// The zoo under seed 001's rule (d) (<c>engine zoo --proposal rule-d</c>, docs/swap.md): which races it closes and
/// which it leaves, as docs/swap.md states; and the fixed scenarios still pass under it. A smaller budget than
/// <c>engine zoo</c>'s: three seeds and 1,000 fixed schedules per entry.
/// </summary>
public sealed class ZooProposalTests
{
    /// <summary>
    /// The entries rule (d) closes: reclaim keeps a writable page that a GUP user holds (rule (c)), so the page a
    /// direct I/O or a pin writes is never swapped under it. Entry 12 is not closed: the write-protection's flush is
    /// deferred to the end of reclaim's batch, and mprotect finds the entry already read-only and flushes nothing.
    /// </summary>
    private static readonly string[] s_closedByRuleD = ["reclaim-freeze-dirty", "swap-lost-write", "reclaim-pinned"];

    public static TheoryData<int> Entries => new(BugZooCatalog.All.Select(e => e.Number));

    [Theory]
    [MemberData(nameof(Entries))]
    public void RuleDClosesExactlyTheEntriesItsDocumentationNames(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var closed = s_closedByRuleD.Contains(entry.Name);
        for (var seed = 0; seed < 3; seed++)
        {
            var report = ZooRunner.FindBug(entry, seed, budget: 1_000, proposal: ZooProposal.RuleD);
            if (closed)
            {
                Assert.True(report.FirstBug is null, $"entry {entry.Name} under rule (d), seed {seed}: {report.FirstBug}");
                Assert.Equal(1_000, report.Iterations);
            }
            else
            {
                Assert.True(report.FirstBug is not null, $"entry {entry.Name} under rule (d), seed {seed}: not found in 1,000 schedules");
                Assert.Null(ZooRunner.Mismatch(entry, report.FirstBug));
            }
        }

        var (fixedRun, events) = ZooRunner.RunFixed(entry, iterations: 1_000, parallelism: Environment.ProcessorCount, proposal: ZooProposal.RuleD);
        Assert.Null(ZooRunner.FixedFailure(entry, fixedRun, events));
    }

    /// <summary>
    /// Under large folios of order 1 (per-page mapcounts, and MM ids where the entry's rule is 6.15's), every fixed
    /// scenario still passes and every bug is still found, except entry 11's: its direct I/O holds a reference on each
    /// page, so reclaim cannot split the folio (the kernel's <c>can_split_folio</c> refuses too) and never swaps it out;
    /// and, under MM ids, entry 17's, whose bug is the per-page estimate that scheme replaces. One seed and 500 fixed
    /// schedules per entry (docs/folios.md has the full run).
    /// </summary>
    [Theory]
    [MemberData(nameof(Entries))]
    public void UnderLargeFoliosEveryFixedScenarioPassesAndOnlyTheUnsplittableReclaimIsClosed(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        foreach (var proposal in new[] { ZooProposal.Folios, ZooProposal.MmIdFolios })
        {
            var report = ZooRunner.FindBug(entry, seed: 0, budget: 1_000, proposal: proposal);
            if (entry.Name == "reclaim-freeze-dirty" || (entry.Name == "estimated-sharers-reuse" && proposal == ZooProposal.MmIdFolios))
            {
                Assert.True(report.FirstBug is null, $"entry {entry.Name} under {proposal}: {report.FirstBug}");
            }
            else
            {
                Assert.True(report.FirstBug is not null, $"entry {entry.Name} under {proposal}: not found in 1,000 schedules");
                Assert.Null(ZooRunner.Mismatch(entry, report.FirstBug));
            }

            var (fixedRun, events) = ZooRunner.RunFixed(entry, iterations: 500, parallelism: Environment.ProcessorCount, proposal: proposal);
            Assert.Null(ZooRunner.FixedFailure(entry, fixedRun, events));
        }
    }

    [Fact]
    public void AProposalChangesOnlyItsOwnSettingAndNamesItsTraces()
    {
        var options = new MachineOptions { Cpus = 2, Frames = 64, CowReuse = CowReuse.PageCount };
        Assert.Same(options, ZooProposal.None.Apply(options));
        Assert.Equal(options with { WriteProtectBeforeSwap = true }, ZooProposal.RuleD.Apply(options));
        Assert.Equal(options with { AnonFolioOrder = 1 }, ZooProposal.Folios.Apply(options));
        Assert.Equal(options with { AnonFolioOrder = 1 }, ZooProposal.MmIdFolios.Apply(options));
        Assert.Equal(new MachineOptions { AnonFolioOrder = 1, Mapcount = MapcountScheme.MmId }, ZooProposal.MmIdFolios.Apply(new MachineOptions()));
        foreach (var (proposal, scheme) in new[] { (ZooProposal.TriStateFolios, MapcountScheme.TriState), (ZooProposal.NoMapcountFolios, MapcountScheme.None) })
        {
            // As MmIdFolios: the scheme where the rule is AnonExclusive, per-page mapcounts (and "not as proposed") elsewhere.
            Assert.Equal(options with { AnonFolioOrder = 1 }, proposal.Apply(options));
            Assert.False(proposal.RunsAsProposed(options));
            Assert.Equal(new MachineOptions { AnonFolioOrder = 1, Mapcount = scheme }, proposal.Apply(new MachineOptions()));
            Assert.True(proposal.RunsAsProposed(new MachineOptions()));
        }

        Assert.False(ZooProposal.MmIdFolios.RunsAsProposed(options));
        var estimate = ZooProposals.SettingsOf(BugZooCatalog.Get("estimated-sharers-reuse").Buggy);
        Assert.True(ZooProposal.MmIdFolios.RunsAsProposed(estimate));
        Assert.False(ZooProposal.TriStateFolios.RunsAsProposed(estimate));
        Assert.False(ZooProposal.NoMapcountFolios.RunsAsProposed(estimate));

        // engine zoo --proposal runs entry 17's knob-off scenario with per-page mapcounts under seed 002's proposals.
        Assert.Equal(estimate with { AnonFolioOrder = 1 }, ZooProposal.TriStateFolios.Apply(estimate));
        Assert.Equal(estimate with { AnonFolioOrder = 1 }, ZooProposal.NoMapcountFolios.Apply(estimate));
        Assert.True(ZooProposal.Folios.RunsAsProposed(options));
        Assert.True(ZooProposal.RuleD.RunsAsProposed(options));
        var entry = BugZooCatalog.Get("reclaim-pinned");
        Assert.Equal("reclaim-pinned-buggy+tri-state-folios", entry.BuggyTestNameUnder(ZooProposal.TriStateFolios));
        Assert.Equal("reclaim-pinned-fixed+no-mapcount-folios", entry.FixedTestNameUnder(ZooProposal.NoMapcountFolios));
        Assert.Equal("reclaim-pinned-buggy", entry.BuggyTestNameUnder(ZooProposal.None));
        Assert.Equal("reclaim-pinned-buggy+rule-d", entry.BuggyTestNameUnder(ZooProposal.RuleD));
        Assert.Equal("reclaim-pinned-fixed+rule-d", entry.FixedTestNameUnder(ZooProposal.RuleD));
    }

    /// <summary>
    /// <see cref="ZooProposals.SettingsOf"/> reads every scenario's settings without running it (each builds its machine
    /// first), and they are the settings the catalog's knobs name: the old copy-on-write rules of entries 1, 2, 13, 14
    /// and 15, which the mapcount proposals cannot run with (<c>engine mapcount</c> shows them as n/a).
    /// </summary>
    [Fact]
    public void EveryScenariosSettingsCanBeReadWithoutRunningIt()
    {
        var notAnonExclusive = new List<string>();
        foreach (var entry in BugZooCatalog.All)
        {
            var buggy = ZooProposals.SettingsOf(entry.Buggy);
            var fixedSettings = ZooProposals.SettingsOf(entry.Fixed(null));
            buggy.Validate();
            fixedSettings.Validate();
            if (buggy.CowReuse != CowReuse.AnonExclusive)
            {
                notAnonExclusive.Add(entry.Name + "-buggy");
            }

            if (fixedSettings.CowReuse != CowReuse.AnonExclusive)
            {
                notAnonExclusive.Add(entry.Name + "-fixed");
            }
        }

        Assert.Equal(
            ["missed-cow-buggy", "wrong-cow-buggy", "swap-missed-cow-buggy", "swap-missed-cow-fixed", "swap-lost-write-buggy", "reclaim-pinned-buggy", "reclaim-pinned-fixed"],
            notAnonExclusive);
        Assert.Equal(CowReuse.MapCount, ZooProposals.SettingsOf(BugZooCatalog.Get("missed-cow").Buggy).CowReuse);
        Assert.Throws<InvalidOperationException>(() => ZooProposals.SettingsOf(() => { }));

        // The capture is over: the same scenario's proposal applies again on this thread.
        Assert.Equal(1, ZooProposal.Folios.Apply(new MachineOptions()).AnonFolioOrder);
    }
}
