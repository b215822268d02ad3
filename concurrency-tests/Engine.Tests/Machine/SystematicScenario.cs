using Engine.Systematic;

namespace Engine.Tests.Machine;

/// <summary>Helpers for machine scenarios run under the tester.</summary>
internal static class SystematicScenario
{
    public const ulong Page = 4096;

    /// <summary>A machine small enough to build in every iteration.</summary>
    public static Engine.Machine SmallMachine(bool flushBeforeFree = true, bool guardWalks = true, PteLayout layout = PteLayout.Native64)
        => new(new MachineOptions { Cpus = 2, Frames = 64, PteLayout = layout, FlushBeforeFree = flushBeforeFree, GuardWalksInFlight = guardWalks });

    /// <summary>
    /// The protocol-on half of a race test: no bug in the whole budget, and no iteration cut short by the step bound
    /// (which would have explored less than it claims).
    /// </summary>
    public static void AssertClean(TestReport report)
    {
        Assert.True(report.BugsFound == 0, report.ToString());
        Assert.True(report.StepBoundHits == 0, $"{report.StepBoundHits} iteration(s) were cut short by the step bound: they explored less than they claim");
    }

    /// <summary>
    /// The knob-off half of a race test: with the default portfolio, for each of seeds 0–9, the bug is found within
    /// 1,000 schedules, and <paramref name="check"/> accepts it (its kind and message: the race, not some other error).
    /// </summary>
    public static void AssertFoundForEachOfTenSeeds(Action body, Action<BugReport> check)
    {
        for (var seed = 0; seed < 10; seed++)
        {
            var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithSeed(seed).WithTraceFiles(false), body);
            Assert.True(report.BugsFound == 1, $"seed {seed}: not found in 1,000 schedules");
            check(report.FirstBug!);
        }
    }

    /// <summary>Fails the iteration with the invariant checker's report if any invariant is broken.</summary>
    public static void AssertInvariants(Engine.Machine machine) => BugZoo.ZooScenario.AssertInvariants(machine);
}
