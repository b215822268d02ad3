using Conformance;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Folios;

/// <summary>
/// Large folios under the tester: two faults allocating one folio, fork against a store into a folio, a munmap that
/// splits a folio against GUP-fast on it, and the MM-id slots under three mms mapping and unmapping at once. The
/// scenarios are <see cref="FolioRaceScenarios"/>' (shared with <c>engine mapcount</c>); each test runs one under a
/// scheme and checks its vacuity guard.
/// </summary>
public sealed class FolioRaceTests
{
    /// <summary>
    /// Two CPUs write the two pages of an empty folio-sized range at once: both faults find the range empty and
    /// allocate a folio, one maps it, the other finds the range taken under the PTL, frees its folio and retries into
    /// the winner's. Both stores land, one folio is mapped, nothing leaks.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void TwoFaultsOnOneFolioMapItOnceAndBothStoresLand(MapcountScheme scheme)
    {
        var counters = new FolioRaceCounters();
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), FolioRaceScenarios.TwoFaultsOnOneFolio(scheme, counters));
        AssertClean(report);
        Assert.True(counters.LostRaces > 0, "no fault ever lost the race for the range: the test proved nothing");
    }

    /// <summary>
    /// Fork while the parent stores into a page of a folio: whatever the order, the child's memory does not change
    /// after fork returned, and the parent keeps its last store (ForkRaceTests' property, on a large folio).
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void AStoreIntoAFolioRacingForkNeverReachesTheChildAfterForkReturns(MapcountScheme scheme)
    {
        var counters = new FolioRaceCounters();
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), FolioRaceScenarios.StoreIntoAFolioRacingFork(scheme, counters));
        AssertClean(report);
        Assert.True(counters.Copied > 0, "the parent never stored after fork shared the folio: the test proved nothing");
    }

    /// <summary>
    /// A munmap of the folio's first page (which splits the folio) against GUP-fast pinning its second page: the pin
    /// is taken on the folio or on the page the split left, never on the wrong one, and the split is refused while the
    /// pin holds the folio. The pin sees the process's store, the unmapped page is freed, nothing leaks.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void APartialMunmapRacingGupFastSplitsOrKeepsTheFolioAndThePinHoldsTheRightPage(MapcountScheme scheme)
    {
        var counters = new FolioRaceCounters();
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), FolioRaceScenarios.PartialMunmapRacingGupFast(scheme, counters));
        AssertClean(report);
        Assert.True(counters.Splits > 0 && counters.RefusedSplits > 0, $"the munmap split the folio in {counters.Splits} schedules and was refused by the pin in {counters.RefusedSplits}: both must happen");
    }

    /// <summary>
    /// Reclaim's hand takes a speculative reference on a tail page while an mprotect through the folio splits it
    /// (found by the zoo's entry 12 under <c>--proposal folios</c>): the reference must land on the page's folio as it is
    /// once taken, not on the old head, or reclaim later drops it from the tail and frees a mapped page. Every page is
    /// either swapped out or still mapped with its data, and the invariants hold.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void ReclaimRacingASplitNeverMisplacesAReference(MapcountScheme scheme)
    {
        var counters = new FolioRaceCounters();
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(3_000), FolioRaceScenarios.ReclaimRacingASplit(scheme, counters));
        AssertClean(report);
        Assert.True(counters.Splits > 0 && counters.SwapOuts > 0, $"{counters.Splits} splits and {counters.SwapOuts} swap-outs in all: the race never ran");
    }

    /// <summary>
    /// The MM-id protocol under three mms: the parent and a child map a folio; the child unmaps it while the parent
    /// forks a second child (which maps it too) and an observer reads the folio's MM-id state under its lock bit at
    /// every one of its steps. Each snapshot must be consistent: a clear "maybe mapped shared" bit only while one slot
    /// counts every mapping, which (slots never count more than their mm maps) means one mm alone maps the folio: no
    /// false negative. At the end the census agrees (CheckInvariants' SharedFalseNegative).
    /// </summary>
    [Fact]
    public void TheMmIdSlotsNeverAnswerNotSharedWhileTwoMmsMapTheFolio()
    {
        var counters = new FolioRaceCounters();
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), FolioRaceScenarios.MmIdSlotsUnderThreeMms(lockBit: true, counters));
        AssertClean(report);
        Assert.True(counters.Cleared > 0, "the observer never saw the bit cleared by the child's unmap: the test proved nothing");
    }

    [Fact]
    public void WithoutTheLockBitTheSlotsLoseTrackAndTheFolioLooksExclusive()
    {
        AssertFoundForEachOfTenSeeds(FolioRaceScenarios.MmIdSlotsUnderThreeMms(lockBit: false, counters: null), bug =>
            Assert.Contains("maybe mapped shared", bug.Message, StringComparison.Ordinal));
    }

    /// <summary>
    /// The list <c>engine mapcount</c> runs holds exactly the scenarios above, with the budgets they run with here,
    /// and each runs under the schemes it is tested under.
    /// </summary>
    [Fact]
    public void TheSharedListHoldsTheseScenariosWithTheirBudgets()
    {
        Assert.Equal(
            [("two-faults", 2_000), ("store-racing-fork", 2_000), ("munmap-racing-gup-fast", 2_000), ("reclaim-racing-split", 3_000), ("mm-id-slots", 2_000),
                ("walk-vs-read-fault", 2_000), ("walk-vs-unlocked-read-fault", 2_000)],
            FolioRaceScenarios.All.Select(r => (r.Name, r.Iterations)));
        Assert.All(FolioRaceScenarios.All.Take(4), r => Assert.True(Enum.GetValues<MapcountScheme>().All(r.AppliesTo), r.Name));
        Assert.Equal([MapcountScheme.MmId], Enum.GetValues<MapcountScheme>().Where(FolioRaceScenarios.Get("mm-id-slots").AppliesTo));
        Assert.Equal([MapcountScheme.TriState], Enum.GetValues<MapcountScheme>().Where(FolioRaceScenarios.Get("walk-vs-read-fault").AppliesTo));
        Assert.Equal([MapcountScheme.TriState], Enum.GetValues<MapcountScheme>().Where(FolioRaceScenarios.Get("walk-vs-unlocked-read-fault").AppliesTo));
    }
}
