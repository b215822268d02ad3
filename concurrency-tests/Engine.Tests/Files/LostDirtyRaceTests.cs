using BugZoo;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Files;

/// <summary>
/// The 2022 lost-dirty race (seed 004; protocol reference section 4; the scenario is <see cref="LostDirty"/>) beyond
/// what the bug zoo checks (<see cref="BugZooTests"/>, madvise as the zap, DelayRmap on and off): with neither of its
/// fixes, and with munmap as the zap.
/// </summary>
public sealed class LostDirtyRaceTests
{
    private const int Schedules = 10_000;

    [Fact]
    public void WithNeitherFixTheLostStoreIsFoundToo()
    {
        AssertFoundForEachOfTenSeeds(LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: false, probe: null), bug =>
        {
            Assert.Contains("lost store", bug.Message);
        });
    }

    [Fact]
    public void WithMunmapInsteadOfMadviseTheSameHolds()
    {
        var probe = new ZooProbe(LostDirty.Events.Length);
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules),
            LostDirty.Scenario(delayRmap: true, flushDirtyUnderPtl: true, probe, munmap: true));
        AssertClean(report);
        Assert.True(probe.Count(0) > 0, "writeback never copied out a store made while munmap's zap ran: the test proved nothing");
        AssertFoundForEachOfTenSeeds(LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: true, probe: null, munmap: true), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("lost store", bug.Message);
        });
    }
}
