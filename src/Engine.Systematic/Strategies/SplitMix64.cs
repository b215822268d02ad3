namespace Engine.Systematic.Strategies;

/// <summary>
/// SplitMix64 (Steele, Lea and Flood, 2014): the project's only source of randomness. Used instead of
/// <see cref="Random"/> because its sequence is fixed by this code, not by the runtime version, so a seed recorded
/// today replays the same schedule on any later .NET. Mutable struct: do not make readonly.
/// </summary>
internal struct SplitMix64(ulong seed)
{
    private ulong _state = seed;

    /// <summary>Mixes <paramref name="value"/> into a well-distributed 64-bit value (the SplitMix64 finaliser).</summary>
    public static ulong Mix(ulong value)
    {
        value = (value ^ (value >> 30)) * 0xBF58476D1CE4E5B9UL;
        value = (value ^ (value >> 27)) * 0x94D049BB133111EBUL;
        return value ^ (value >> 31);
    }

    /// <summary>The seed of iteration <paramref name="iteration"/> of a run with <paramref name="globalSeed"/>.</summary>
    public static ulong IterationSeed(long globalSeed, int iteration)
        => Mix(unchecked((ulong)globalSeed + (0x9E3779B97F4A7C15UL * (ulong)(iteration + 1))));

    public ulong Next()
    {
        _state = unchecked(_state + 0x9E3779B97F4A7C15UL);
        return Mix(_state);
    }

    /// <summary>A uniform integer in [0, <paramref name="bound"/>) (Lemire's multiply-shift; bias below 2^-32).</summary>
    public int NextInt(int bound)
    {
        if (bound <= 1)
        {
            return 0;
        }

        return (int)(((Next() >> 32) * (ulong)bound) >> 32);
    }

    /// <summary>True with probability 1/2^<paramref name="bits"/>.</summary>
    public bool OneIn2Pow(int bits) => bits <= 0 || (Next() & ((1UL << bits) - 1)) == 0;
}
