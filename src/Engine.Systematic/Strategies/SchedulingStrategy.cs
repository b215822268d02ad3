namespace Engine.Systematic.Strategies;

/// <summary>
/// Decides, at every scheduling point, which enabled thread runs next, and answers the data choices
/// (<c>ControlledRandom</c>). One instance serves one worker lane; it is reset per iteration by
/// <see cref="PrepareIteration"/> with that iteration's seed, so the schedule depends on the seed alone.
/// </summary>
internal abstract class SchedulingStrategy
{
    /// <summary>A short name for reports and traces, for example <c>pct(3)</c>.</summary>
    public abstract string Name { get; }

    /// <summary>False for strategies whose later decisions may starve a thread (PCT, probabilistic).</summary>
    public virtual bool IsFair => false;

    /// <summary>
    /// True when, past the configured fairness threshold, the runtime should take over with uniformly random
    /// choices (Coyote's "max unfair steps"), so an unfair strategy cannot livelock a spin loop until the step bound.
    /// False for strategies that must see every decision: exhaustive search and replays.
    /// </summary>
    public virtual bool UsesFairnessFallback => !IsFair;

    /// <summary>
    /// Prepares iteration <paramref name="iteration"/>. <paramref name="stepsEstimate"/> is the run's estimate of an
    /// iteration's length (PCT spreads its change points over it). Returns false when nothing is left to explore.
    /// </summary>
    public abstract bool PrepareIteration(int iteration, ulong seed, int stepsEstimate);

    /// <summary>The id of the thread to run next; must be one of <see cref="SchedulingContext.Enabled"/>.</summary>
    public abstract int NextThread(in SchedulingContext context);

    /// <summary>A data choice in [0, <paramref name="maxValue"/>).</summary>
    public abstract int NextInteger(int maxValue, int step);

    /// <summary>Called when a thread is created, before it can be scheduled.</summary>
    public virtual void OnThreadCreated(int id)
    {
    }

    /// <summary>Called after each iteration, with whether it ended in a bug.</summary>
    public virtual void OnIterationEnd(bool bugFound)
    {
    }

    /// <summary>
    /// Called after each step is recorded; a replaying strategy returns a message when the step differs from the
    /// trace it follows.
    /// </summary>
    public virtual string? CheckStep(int step, int thread, Engine.Sync.OperationKind kind, string file, int line) => null;

    /// <summary>
    /// Set by a strategy that follows a recorded schedule when the program no longer matches it; the runtime then
    /// ends the iteration and reports where.
    /// </summary>
    public string? Divergence { get; protected set; }

    /// <summary>True when this strategy has explored everything it can (a bounded DFS).</summary>
    public virtual bool IsExhausted => false;
}
