namespace Engine.Systematic.Strategies;

/// <summary>Uniformly random choice among the enabled threads at every scheduling point. Fair with probability 1.</summary>
internal sealed class RandomStrategy : SchedulingStrategy
{
    private SplitMix64 _random;

    public override string Name => "random";

    public override bool IsFair => true;

    public override bool PrepareIteration(int iteration, ulong seed, int stepsEstimate)
    {
        _random = new SplitMix64(seed);
        return true;
    }

    public override int NextThread(in SchedulingContext context)
    {
        var enabled = context.Enabled;
        if (context.Yielding && context.CurrentEnabled && enabled.Length > 1)
        {
            // Yield asks to step aside: pick among the others.
            return Choices.PickOther(ref _random, enabled, context.Current);
        }

        return enabled[_random.NextInt(enabled.Length)];
    }

    public override int NextInteger(int maxValue, int step) => _random.NextInt(maxValue);
}
