using System.Text;

namespace Engine.Systematic;

/// <summary>What a systematic test run found, and how fast it ran.</summary>
public sealed class TestReport
{
    internal TestReport()
    {
    }

    /// <summary>
    /// Iterations explored. When the run stops on its first bug this is that bug's iteration + 1, whatever the
    /// parallelism, so the figure is the one a sequential run reports.
    /// </summary>
    public int Iterations { get; internal init; }

    /// <summary>Iterations that found a bug.</summary>
    public int BugsFound => Bugs.Count;

    /// <summary>The bugs, ordered by iteration.</summary>
    public IReadOnlyList<BugReport> Bugs { get; internal init; } = [];

    /// <summary>The first bug, if any.</summary>
    public BugReport? FirstBug => Bugs.Count > 0 ? Bugs[0] : null;

    /// <summary>The first failing schedule, if any.</summary>
    public ScheduleTrace? FirstFailingTrace => FirstBug?.Trace;

    /// <summary>Iterations executed per second of exploration (all lanes, minimisation excluded).</summary>
    public double IterationsPerSecond { get; internal init; }

    /// <summary>Scheduling decisions per second of exploration.</summary>
    public double StepsPerSecond { get; internal init; }

    /// <summary>Wall time of the exploration.</summary>
    public TimeSpan Elapsed { get; internal init; }

    /// <summary>Scheduling decisions taken over all iterations.</summary>
    public long TotalSteps { get; internal init; }

    /// <summary>The longest iteration, in decisions.</summary>
    public int MaxStepsInIteration { get; internal init; }

    /// <summary>Iterations ended by the step bound without being reported as bugs.</summary>
    public int StepBoundHits { get; internal init; }

    /// <summary>For <see cref="Strategy.Dfs"/>: true when every schedule within the preemption bound was run.</summary>
    public bool Exhausted { get; internal init; }

    /// <summary>The scheduler that ran it: <c>builtin</c> or <c>coyote</c>.</summary>
    public string Scheduler { get; internal init; } = BuiltinScheduler.SchedulerName;

    /// <summary>The strategy of the run.</summary>
    public string Strategy { get; internal init; } = "";

    /// <summary>The global seed of the run.</summary>
    public long Seed { get; internal init; }

    /// <summary>OS threads the run created (the built-in scheduler pools and reuses them across iterations; Coyote does not).</summary>
    public int ThreadsCreated { get; internal init; }

    /// <summary>For a replay: where the program stopped following the schedule, or null when it followed it to the end.</summary>
    public string? Divergence { get; internal init; }

    /// <summary>A readable summary, with the first bug's story.</summary>
    public override string ToString() => Format(null);

    /// <summary>A readable summary, with the first bug's story rendered with <paramref name="story"/> (see <see cref="BugReport.Format"/>).</summary>
    public string Format(StoryOptions? story)
    {
        var sb = new StringBuilder();
        if (Scheduler != BuiltinScheduler.SchedulerName)
        {
            sb.Append(Scheduler).Append(' ');
        }

        sb.Append(Strategy).Append(", seed ").Append(Seed).Append(": ")
          .Append(Iterations).Append(" iteration(s), ").Append(BugsFound).Append(" bug(s), ")
          .Append(IterationsPerSecond.ToString("N0", System.Globalization.CultureInfo.InvariantCulture)).Append(" iterations/s, ")
          .Append(TotalSteps).Append(" steps (max ").Append(MaxStepsInIteration).Append(" in one iteration)");
        if (StepBoundHits > 0)
        {
            sb.Append(", ").Append(StepBoundHits).Append(" hit the step bound");
        }

        if (Exhausted)
        {
            sb.Append(", bounded search space exhausted");
        }

        sb.AppendLine();
        if (Divergence is not null)
        {
            sb.Append("replay diverged: ").AppendLine(Divergence);
        }

        if (FirstBug is { } bug)
        {
            sb.AppendLine().Append(bug.Format(story));
        }

        return sb.ToString();
    }
}
