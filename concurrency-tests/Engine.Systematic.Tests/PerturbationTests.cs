using Engine.Cli.Stress;

namespace Engine.Systematic.Tests;

/// <summary>
/// <c>engine stress</c>'s perturbation: what it chooses is a function of the seed and the thread's index (the timing it
/// causes is the OS's), and the raw command line decides whether the scheduling hook is switched on at all.
/// </summary>
public sealed class PerturbationTests
{
    [Fact]
    public void TheChoicesAreTheSameForTheSameSeedAndThread()
    {
        Assert.Equal(PerturbationHook.Choices(7, 2, 100_000), PerturbationHook.Choices(7, 2, 100_000));
        Assert.NotEqual(PerturbationHook.Choices(7, 2, 1_000), PerturbationHook.Choices(8, 2, 1_000));
        Assert.NotEqual(PerturbationHook.Choices(7, 2, 1_000), PerturbationHook.Choices(7, 3, 1_000));
    }

    [Fact]
    public void TheChoicesComeAtTheirStatedRates()
    {
        const int Count = 1 << 21;
        var choices = PerturbationHook.Choices(1, 0, Count);
        double Rate(Perturbation what) => choices.Count(c => c.What == what) / (double)Count;

        Assert.InRange(Rate(Perturbation.Spin), 0.9 / PerturbationHook.SpinOneIn, 1.1 / PerturbationHook.SpinOneIn);
        Assert.InRange(Rate(Perturbation.Yield), 0.9 / PerturbationHook.YieldOneIn, 1.1 / PerturbationHook.YieldOneIn);
        Assert.InRange(Rate(Perturbation.Sleep), 0.5 / PerturbationHook.SleepOneIn, 1.5 / PerturbationHook.SleepOneIn);
        Assert.All(choices.Where(c => c.What == Perturbation.Spin), c => Assert.InRange(c.Amount, 1, PerturbationHook.MaxSpin));
        Assert.All(choices.Where(c => c.What == Perturbation.Sleep), c => Assert.InRange(c.Amount, 0, 1));
    }

    [Fact]
    public void NoSleepInsideALock()
    {
        var state = 42UL;
        for (var i = 0; i < 1 << 20; i++)
        {
            Assert.NotEqual(Perturbation.Sleep, PerturbationHook.Decide(ref state, insideLock: true).What);
        }
    }

    [Theory]
    [InlineData(false, "stress")]
    [InlineData(false, "stress", "--duration", "5")]
    [InlineData(true, "stress", "--disable", "DelayRmap")]
    [InlineData(true, "stress", "--disable=DelayRmap")]
    [InlineData(false, "stress", "--disable", "DelayRmap", "--mix", "general")]
    [InlineData(false, "stress", "--disable", "DelayRmap", "--perturb", "off")]
    [InlineData(true, "stress", "--perturb", "on")]
    [InlineData(true, "stress", "--mix", "tlb")]
    [InlineData(true, "stress", "--mix", "tlb", "--perturb", "auto")]
    [InlineData(false, "stress", "--mix", "auto")]
    public void TheCommandLineDecidesWhetherTheHookIsOn(bool expected, params string[] args) =>
        Assert.Equal(expected, StressMixes.WantsPerturbation(args));
}
