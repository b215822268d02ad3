using BugZoo;
using Conformance;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Folios;

/// <summary>
/// Seed 002's proposals against the races (docs/mapcount.md): seed 004's lost-dirty race under each, where the only
/// difference is whether <c>folio_mkclean</c> may skip a page its word calls unmapped; and the tri-state's one way
/// down from "maybe more", an rmap walk under the page lock, racing the mappings it must not miss.
/// </summary>
public sealed class MapcountProposalRaceTests
{
    private const int Schedules = 2_000;

    [Fact]
    public void UnderTheTriStateSeed004sRaceIsFoundWithoutTheDelayedRmapAndClosedWithIt()
    {
        // The zap's unmapping of a page mapped once is exact under the tri-state ("once" falls to "not mapped"), so
        // mkclean skips the page exactly as it does with a count.
        AssertFoundForEachOfTenSeeds(LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: true, probe: null, proposal: ZooProposal.TriStateFolios), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("lost store", bug.Message);
        });

        var probe = new ZooProbe(LostDirty.Events.Length);
        AssertClean(TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules),
            LostDirty.Scenario(delayRmap: true, flushDirtyUnderPtl: true, probe, proposal: ZooProposal.TriStateFolios)));
        Assert.True(probe.Count(0) > 0, "writeback never copied out a store made while the zap ran: the test proved nothing");
    }

    [Fact]
    public void WithNoMapcountSeed004sRaceIsClosedWithoutTheDelayedRmapBecauseMkcleanMustTakeTheZapsPtl()
    {
        // No word can say "unmapped" before the flush: mkclean walks, and waits at the PTL the zap holds until it has
        // flushed the TLB (FlushDirtyUnderPtl). The delayed rmap has nothing left to delay.
        var probe = new ZooProbe(LostDirty.Events.Length);
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules),
            LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: true, probe, proposal: ZooProposal.NoMapcountFolios));
        AssertClean(report);
        Assert.True(probe.Count(0) > 0, "writeback never copied out a store made while the zap ran: the test proved nothing");
    }

    [Fact]
    public void WithNoMapcountTheRaceComesBackWhenTheZapFlushesAfterDroppingThePtl()
    {
        // The walk closes the race only through the PTL: a zap that releases it before its flush (neither fix) lets
        // mkclean find the entry gone while a stale TLB entry still writes. The window is narrower than with a count
        // (mkclean takes more steps before it clears the dirty bit): each of three seeds finds it within 5,000 schedules.
        for (var seed = 0; seed < 3; seed++)
        {
            var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(5_000).WithSeed(seed).WithTraceFiles(false),
                LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: false, probe: null, proposal: ZooProposal.NoMapcountFolios));
            Assert.True(report.BugsFound == 1, $"seed {seed}: not found in 5,000 schedules");
            Assert.Contains("lost store", report.FirstBug!.Message);
        }
    }

    [Fact]
    public void TheTriStatesWalkNeverLowersTheWordUnderAMappingAReadFaultMakes()
    {
        // Conformance's scenario, which engine mapcount runs too (its row walk-vs-read-fault).
        var counters = new FolioRaceCounters();
        AssertClean(TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), FolioRaceScenarios.TriStateWalkRacingAReadFault(readFaultLocksPage: true, counters)));
        Assert.True(counters.MappedAfterLowering > 0, "the read fault never mapped the page after the walk lowered the word: the test proved nothing");
    }

    [Fact]
    public void WithoutThePageLockInTheReadFaultTheTriStateSaysNotMappedOfAMappedPage()
    {
        // The walk finds no entry, the fault maps the page ("maybe more" stays), the walk lowers the word: a false
        // negative, which truncation, eviction and mkclean would trust.
        AssertFoundForEachOfTenSeeds(FolioRaceScenarios.TriStateWalkRacingAReadFault(readFaultLocksPage: false, counters: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("tri-state 'not mapped' but 1 entries map it", bug.Message);
        });
    }
}
