namespace Engine.Systematic.Strategies;

/// <summary>
/// Keeps running the current thread and switches to a random other one with probability 1/2^b at each point
/// (Coyote's "probabilistic" strategy). Long uninterrupted runs with rare switches: good at bugs that need one
/// thread to make a lot of progress between two steps of another.
/// </summary>
internal sealed class ProbabilisticStrategy(int bound) : SchedulingStrategy
{
    private SplitMix64 _random;

    public override string Name => $"probabilistic({bound})";

    public override bool PrepareIteration(int iteration, ulong seed, int stepsEstimate)
    {
        _random = new SplitMix64(seed);
        return true;
    }

    public override int NextThread(in SchedulingContext context)
    {
        var enabled = context.Enabled;
        if (!context.CurrentEnabled)
        {
            return enabled[_random.NextInt(enabled.Length)];
        }

        if (enabled.Length == 1 || !(context.Yielding || _random.OneIn2Pow(bound)))
        {
            return context.Current;
        }

        return Choices.PickOther(ref _random, enabled, context.Current);
    }

    public override int NextInteger(int maxValue, int step) => _random.NextInt(maxValue);
}
