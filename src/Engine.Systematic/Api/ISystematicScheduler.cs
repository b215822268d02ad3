namespace Engine.Systematic;

/// <summary>
/// A scheduler with its exploration strategy, exploring the schedules of a test body: the built-in one
/// (<see cref="BuiltinScheduler"/>) or Microsoft Coyote (<c>Engine.Coyote.CoyoteScheduler</c>). Both run the same
/// bodies, written against <see cref="ControlledThread"/>, <see cref="Specification"/> and <c>Engine.Sync</c>, and fill
/// the same <see cref="TestReport"/>, so the zoo, the classic bugs and <c>engine test</c> take either.
/// </summary>
public interface ISystematicScheduler
{
    /// <summary>The scheduler's name on the command line: <c>builtin</c> or <c>coyote</c>.</summary>
    string Name { get; }

    /// <summary>The strategy as reports name it, for example <c>pct(3)</c> or <c>prioritization(10)</c>.</summary>
    string StrategyName { get; }

    /// <summary>
    /// Explores schedules of <paramref name="body"/> with the iterations, seed, step bound, parallelism and trace
    /// settings of <paramref name="configuration"/>, and the scheduler's strategy.
    /// </summary>
    TestReport Run(Configuration configuration, Action body);

    /// <summary>Runs the schedule of <paramref name="trace"/> once more; throws <see cref="ArgumentException"/> when this scheduler cannot follow it.</summary>
    TestReport Replay(ScheduleTrace trace, Action body);
}

/// <summary>
/// The built-in controlled scheduler (<see cref="TestingEngine"/>) as an <see cref="ISystematicScheduler"/>:
/// <see cref="Instance"/> runs the strategy the configuration names; <see cref="With"/> fixes one.
/// </summary>
public sealed class BuiltinScheduler : ISystematicScheduler
{
    /// <summary>The name used on the command line and in reports.</summary>
    public const string SchedulerName = "builtin";

    private readonly Func<Configuration, Configuration>? _strategy;

    private BuiltinScheduler(Func<Configuration, Configuration>? strategy, string strategyName)
    {
        _strategy = strategy;
        StrategyName = strategyName;
    }

    /// <summary>The scheduler with whatever strategy each configuration names (by default the portfolio).</summary>
    public static BuiltinScheduler Instance { get; } = new(null, "as configured");

    /// <inheritdoc/>
    public string Name => SchedulerName;

    /// <inheritdoc/>
    public string StrategyName { get; }

    /// <summary>
    /// The scheduler with <paramref name="strategy"/>; <paramref name="bound"/> is PCT's change points, probabilistic's b
    /// or DFS's preemption bound (their defaults when null) and must be null for the others.
    /// </summary>
    public static BuiltinScheduler With(Strategy strategy, int? bound = null)
    {
        var probe = Apply(Configuration.Create(), strategy, bound);
        var name = strategy switch
        {
            Strategy.Pct => $"pct({probe.PctChangePoints})",
            Strategy.Probabilistic => $"probabilistic({probe.ProbabilisticBound})",
            Strategy.Dfs => $"dfs({probe.DfsPreemptionBound})",
            _ => strategy.ToString().ToLowerInvariant(),
        };
        return new BuiltinScheduler(c => Apply(c, strategy, bound), name);
    }

    /// <inheritdoc/>
    public TestReport Run(Configuration configuration, Action body)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        return TestingEngine.Run(_strategy?.Invoke(configuration) ?? configuration, body);
    }

    /// <inheritdoc/>
    public TestReport Replay(ScheduleTrace trace, Action body) => TestingEngine.Replay(trace, body);

    private static Configuration Apply(Configuration configuration, Strategy strategy, int? bound) => (strategy, bound) switch
    {
        (Strategy.Pct, { } b) => configuration.WithPctStrategy(b),
        (Strategy.Probabilistic, { } b) => configuration.WithProbabilisticStrategy(b),
        (Strategy.Dfs, { } b) => configuration.WithDfsStrategy(b),
        (_, null) => configuration.WithStrategy(strategy),
        _ => throw new ArgumentException($"The {strategy.ToString().ToLowerInvariant()} strategy takes no bound: --bound applies to pct, probabilistic and dfs.", nameof(bound)),
    };
}
