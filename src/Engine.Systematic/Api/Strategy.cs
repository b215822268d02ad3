namespace Engine.Systematic;

/// <summary>The exploration strategies.</summary>
public enum Strategy
{
    /// <summary>The default: a rotation of random, PCT (1, 3 and 10 change points) and probabilistic (b = 2, 4), one per iteration.</summary>
    Portfolio,
    /// <summary>A uniformly random enabled thread at every scheduling point.</summary>
    Random,
    /// <summary>Probabilistic Concurrency Testing with <see cref="Configuration.PctChangePoints"/> priority change points.</summary>
    Pct,
    /// <summary>Switch with probability 1/2^<see cref="Configuration.ProbabilisticBound"/> at each point.</summary>
    Probabilistic,
    /// <summary>Exhaustive depth-first search bounded by <see cref="Configuration.DfsPreemptionBound"/> preemptions.</summary>
    Dfs,
}
