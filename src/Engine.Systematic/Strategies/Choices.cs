namespace Engine.Systematic.Strategies;

/// <summary>Small choice helpers shared by the randomised strategies.</summary>
internal static class Choices
{
    /// <summary>A uniformly random enabled thread other than <paramref name="current"/>, which must be enabled.</summary>
    public static int PickOther(ref SplitMix64 random, ReadOnlySpan<int> enabled, int current)
    {
        var index = random.NextInt(enabled.Length - 1);
        return index >= enabled.IndexOf(current) ? enabled[index + 1] : enabled[index];
    }
}
