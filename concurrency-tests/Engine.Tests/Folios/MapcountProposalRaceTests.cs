using Engine.Testing;
using BugZoo;
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

    /// <summary>
    /// The tri-state's way down: writeback's <c>folio_mkclean</c> walks a dirty page-cache page whose word says "maybe
    /// more" but that nothing maps any more, while another process's read fault maps it. The walk may lower the word
    /// to "not mapped" only because no mapping can appear while it holds the page lock, which the read fault takes
    /// (<paramref name="readFaultLocksPage"/>); the checker then finds the word exact whatever the interleaving.
    /// </summary>
    private static Action WalkRacingAReadFault(bool readFaultLocksPage, ZooProbe? probe) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, Mapcount = MapcountScheme.TriState, ReadFaultLocksPage = readFaultLocksPage });
        var file = machine.CreateFile("f", (long)Page);
        var a = machine.CreateProcess();
        var b = machine.CreateProcess();
        var inA = a.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var inB = b.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(a, inA, 7);
        Assert.Equal(7UL, machine.Cpus[1].Read(b, inB));
        a.Munmap(inA, Page);
        var pfn = machine.Inspect().PfnAt(b, inB);
        b.MadviseDontNeed(inB, Page);
        Assert.Equal(1, machine.Memmap.MapcountWord(pfn));

        var reader = ControlledThread.Start(() => Assert.Equal(7UL, machine.Cpus[1].Read(b, inB)), "reader");
        machine.Writeback(file);
        reader.Join();
        if (machine.Inspect().PfnAt(b, inB) == pfn && machine.Memmap.MapcountWord(pfn) == 0)
        {
            // The fault mapped the page after the walk had brought the word down: "once", exactly.
            probe?.Saw(0);
        }

        AssertInvariants(machine);
        a.Dispose();
        b.Dispose();
    };

    [Fact]
    public void TheTriStatesWalkNeverLowersTheWordUnderAMappingAReadFaultMakes()
    {
        var probe = new ZooProbe(1);
        AssertClean(TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), WalkRacingAReadFault(readFaultLocksPage: true, probe)));
        Assert.True(probe.Count(0) > 0, "the read fault never mapped the page after the walk lowered the word: the test proved nothing");
    }

    [Fact]
    public void WithoutThePageLockInTheReadFaultTheTriStateSaysNotMappedOfAMappedPage()
    {
        // The walk finds no entry, the fault maps the page ("maybe more" stays), the walk lowers the word: a false
        // negative, which truncation, eviction and mkclean would trust.
        AssertFoundForEachOfTenSeeds(WalkRacingAReadFault(readFaultLocksPage: false, probe: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("tri-state 'not mapped' but 1 entries map it", bug.Message);
        });
    }
}
