namespace Engine.Coyote;

/// <summary>
/// Coyote's exploration strategies, by the names its own command line uses. <see cref="Portfolio"/> is what Coyote
/// runs when no strategy is set: a tuned, fair rotation of random, probabilistic(3), prioritization(10) and
/// delay-bounding(10), one per iteration.
/// </summary>
public enum CoyoteStrategy
{
    /// <summary>Coyote's default: its tuned portfolio (no strategy set).</summary>
    Portfolio,
    /// <summary><c>random</c>: a uniformly random enabled operation at every scheduling point.</summary>
    Random,
    /// <summary><c>prioritization</c>: PCT-style priorities with a bounded number of priority changes (default 10).</summary>
    Prioritization,
    /// <summary><c>fair-prioritization</c>: prioritization that turns random after a number of steps (liveness).</summary>
    FairPrioritization,
    /// <summary><c>probabilistic</c>: stays with the current operation, switching with probability 0.5^N (default N = 3).</summary>
    Probabilistic,
    /// <summary><c>delay-bounding</c>: a bounded number of delays (default 10).</summary>
    DelayBounding,
    /// <summary><c>fair-delay-bounding</c>: delay-bounding that turns random after a number of steps.</summary>
    FairDelayBounding,
}

/// <summary>Names and defaults of <see cref="CoyoteStrategy"/>.</summary>
public static class CoyoteStrategies
{
    /// <summary>Every strategy with its command-line name.</summary>
    public static IReadOnlyList<(string Name, CoyoteStrategy Strategy)> All { get; } =
    [
        ("portfolio", CoyoteStrategy.Portfolio),
        ("random", CoyoteStrategy.Random),
        ("prioritization", CoyoteStrategy.Prioritization),
        ("fair-prioritization", CoyoteStrategy.FairPrioritization),
        ("probabilistic", CoyoteStrategy.Probabilistic),
        ("delay-bounding", CoyoteStrategy.DelayBounding),
        ("fair-delay-bounding", CoyoteStrategy.FairDelayBounding),
    ];

    /// <summary>The command-line name of <paramref name="strategy"/>.</summary>
    public static string Name(CoyoteStrategy strategy) => All.First(s => s.Strategy == strategy).Name;

    /// <summary>The strategy called <paramref name="name"/>; throws <see cref="ArgumentException"/> naming the known ones.</summary>
    public static CoyoteStrategy Parse(string name)
    {
        foreach (var (known, strategy) in All)
        {
            if (string.Equals(known, name, StringComparison.OrdinalIgnoreCase))
            {
                return strategy;
            }
        }

        throw new ArgumentException($"Unknown Coyote strategy '{name}'. Known: {string.Join(", ", All.Select(s => s.Name))}.");
    }

    /// <summary>True when <paramref name="strategy"/> takes a bound (<c>--bound</c>).</summary>
    public static bool TakesBound(CoyoteStrategy strategy) => strategy is not (CoyoteStrategy.Portfolio or CoyoteStrategy.Random);

    /// <summary>Coyote's default bound for <paramref name="strategy"/>: 3 for probabilistic, 10 for the others that take one.</summary>
    public static int DefaultBound(CoyoteStrategy strategy) => strategy == CoyoteStrategy.Probabilistic ? 3 : 10;

    /// <summary>How reports name the strategy, with its bound.</summary>
    public static string Describe(CoyoteStrategy strategy, int? bound) => TakesBound(strategy)
        ? $"{Name(strategy)}({bound ?? DefaultBound(strategy)})"
        : Name(strategy);
}
