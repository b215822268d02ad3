using BugZoo;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Gup;

/// <summary>
/// The two historical bugs of the older COW reuse rules beyond what the bug zoo checks (<see cref="BugZooTests"/>
/// runs each with the modern rule and with the rule that had the bug): each scenario also passes with the other old
/// rule, the one without that bug.
/// </summary>
public sealed class CowReuseRaceTests
{
    private const int Schedules = 10_000;

    [Fact]
    public void ThePageCountRuleAlreadyKeepsTheChildsReferenceFromTheParentsLaterStores()
    {
        var probe = new ZooProbe(MissedCow.Events.Length);
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), MissedCow.Scenario(CowReuse.PageCount, probe));
        AssertClean(report);
        Assert.True(probe.Count(0) > 0 && probe.Count(1) > 0, $"the parent stored before the child's reference in {probe.Count(0)} schedules and after it in {probe.Count(1)}: both must be seen");
    }

    [Fact]
    public void TheMapCountRuleStillKeepsALongTermPinOnItsPageAfterWriteProtection()
    {
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), WrongCow.Scenario(CowReuse.MapCount, probe: null));
        AssertClean(report);
    }
}
