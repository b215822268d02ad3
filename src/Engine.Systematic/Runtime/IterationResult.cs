namespace Engine.Systematic.Runtime;

/// <summary>What one controlled iteration ended with.</summary>
internal sealed class IterationResult
{
    public required int Iteration { get; init; }

    public required int Steps { get; init; }

    /// <summary>The strategy had nothing left to explore; the iteration did not run.</summary>
    public bool Exhausted { get; init; }

    /// <summary>The step bound ended the iteration.</summary>
    public bool HitStepBound { get; init; }

    public BugKind? BugKind { get; init; }

    public string? BugMessage { get; init; }

    /// <summary>The kind of bug a failed assertion stated, if any.</summary>
    public string? BugCategory { get; init; }

    public Exception? BugException { get; init; }

    /// <summary>Set when a replaying strategy found the program no longer follows its schedule.</summary>
    public string? Divergence { get; init; }

    /// <summary>The recorded schedule; only kept when asked for or when the iteration found a bug.</summary>
    public IReadOnlyList<TraceStep>? Trace { get; init; }

    /// <summary>The protocol events marked during the iteration, kept with <see cref="Trace"/>.</summary>
    public IReadOnlyList<TraceEvent>? Events { get; init; }

    public IReadOnlyList<string> ThreadNames { get; init; } = [];

    public string StrategyName { get; init; } = "";

    public ulong Seed { get; init; }

    public bool FoundBug => BugKind is not null;

    public int Preemptions => Trace?.Count(s => s.Preemption) ?? 0;
}
