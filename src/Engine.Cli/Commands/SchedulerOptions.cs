using System.CommandLine;
using Engine.Coyote;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>--scheduler</c>, <c>--strategy</c> and <c>--bound</c>: which scheduler explores (ours or Microsoft Coyote) and
/// with which of its strategies. Each scheduler takes its own strategy names.
/// </summary>
internal sealed class SchedulerOptions
{
    /// <summary>The built-in scheduler's strategies by their command-line names.</summary>
    public static readonly IReadOnlyList<(string Name, Strategy Strategy)> BuiltinStrategies =
    [
        ("portfolio", Systematic.Strategy.Portfolio),
        ("random", Systematic.Strategy.Random),
        ("pct", Systematic.Strategy.Pct),
        ("probabilistic", Systematic.Strategy.Probabilistic),
        ("dfs", Systematic.Strategy.Dfs),
    ];

    public Option<string> Scheduler { get; } = new("--scheduler")
    {
        Description = "builtin (our scheduler, the default) or coyote (Microsoft Coyote 1.7.11).",
        DefaultValueFactory = _ => BuiltinScheduler.SchedulerName,
    };

    public Option<string?> Strategy { get; } = new("--strategy", "-s")
    {
        Description = "builtin: portfolio (default), random, pct, probabilistic, dfs. coyote: portfolio (Coyote's default), random, " +
                      "prioritization, fair-prioritization, probabilistic, delay-bounding, fair-delay-bounding.",
    };

    /// <summary>
    /// The largest <c>--bound</c>. Every bound is a count per iteration (change points, preemptions, delays) that PCT
    /// allocates up front and no schedule of the tools' scenarios comes near; the probabilistic strategies' b, a power of
    /// two, stops at <see cref="MaxProbabilisticBound"/>.
    /// </summary>
    public const int MaxBound = 1_000;

    /// <summary>The largest b of the probabilistic strategies (a switch with probability 1/2^b, drawn from 64 random bits).</summary>
    public const int MaxProbabilisticBound = 63;

    public Option<int?> Bound { get; } = Inputs.OptionalInteger("--bound",
        "builtin: PCT change points, probabilistic b or DFS preemption bound (default 3, 2, 2); coyote: priority changes " +
        $"or delays (default 10), probabilistic level (default 3). 1 to {MaxBound:N0} ({MaxProbabilisticBound} for probabilistic).", 1, MaxBound);

    public void AddTo(Command command, bool withStrategy = true)
    {
        command.Options.Add(Scheduler);
        if (withStrategy)
        {
            command.Options.Add(Strategy);
            command.Options.Add(Bound);
        }
    }

    /// <summary>True when the command line chose Coyote.</summary>
    public bool IsCoyote(ParseResult result) => ParseSchedulerName(result.GetValue(Scheduler)) == CoyoteScheduler.SchedulerName;

    /// <summary>The scheduler and strategy chosen; a <see cref="UsageException"/> for a name the scheduler does not know.</summary>
    public ISystematicScheduler Read(ParseResult result)
        => Create(ParseSchedulerName(result.GetValue(Scheduler)), result.GetValue(Strategy), result.GetValue(Bound));

    /// <summary>The scheduler called <paramref name="scheduler"/> running <paramref name="strategy"/> (its default when null).</summary>
    public static ISystematicScheduler Create(string scheduler, string? strategy, int? bound)
    {
        if (bound is < 1 or > MaxBound)
        {
            throw new UsageException($"--bound must be 1 to {MaxBound:N0} (got {bound}).");
        }

        try
        {
            if (scheduler == CoyoteScheduler.SchedulerName)
            {
                var coyote = strategy is null ? CoyoteStrategy.Portfolio : CoyoteStrategies.Parse(strategy);
                CheckProbabilisticBound(coyote == CoyoteStrategy.Probabilistic, bound);
                return new CoyoteScheduler(coyote, bound);
            }

            var builtin = strategy is null ? Systematic.Strategy.Portfolio : ParseBuiltin(strategy);
            CheckProbabilisticBound(builtin == Systematic.Strategy.Probabilistic, bound);
            return BuiltinScheduler.With(builtin, bound);
        }
        catch (ArgumentException e)
        {
            throw UsageException.From(e, "--strategy/--bound: ");
        }
    }

    /// <summary><paramref name="name"/> as a scheduler name, or a <see cref="UsageException"/>.</summary>
    public static string ParseSchedulerName(string? name) => name?.ToLowerInvariant() switch
    {
        BuiltinScheduler.SchedulerName => BuiltinScheduler.SchedulerName,
        CoyoteScheduler.SchedulerName => CoyoteScheduler.SchedulerName,
        _ => throw new UsageException($"--scheduler: unknown scheduler '{name}'; known: builtin, coyote."),
    };

    private static void CheckProbabilisticBound(bool probabilistic, int? bound)
    {
        if (probabilistic && bound > MaxProbabilisticBound)
        {
            throw new UsageException($"--bound: the probabilistic strategy switches with probability 1/2^b; b must be 1 to {MaxProbabilisticBound} (got {bound}).");
        }
    }

    private static Strategy ParseBuiltin(string name)
    {
        foreach (var (known, strategy) in BuiltinStrategies)
        {
            if (string.Equals(known, name, StringComparison.OrdinalIgnoreCase))
            {
                return strategy;
            }
        }

        throw new ArgumentException($"unknown strategy '{name}' for the built-in scheduler; known: {string.Join(", ", BuiltinStrategies.Select(s => s.Name))} " +
                                    "(Coyote's strategies need --scheduler coyote).");
    }
}
