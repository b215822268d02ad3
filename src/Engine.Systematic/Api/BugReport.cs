using System.Text;

namespace Engine.Systematic;

/// <summary>
/// One bug: what failed, in which iteration and under which strategy, and the schedule that leads to it — as a
/// one-line <see cref="ReplayString"/>, a JSON trace file (<see cref="TraceFile"/>), and a per-thread table of the
/// interleaving (<see cref="Table"/>).
/// </summary>
public sealed class BugReport
{
    internal BugReport(BugKind kind, string message, int iteration, string strategy, ScheduleTrace trace, Exception? exception)
    {
        Kind = kind;
        Message = message;
        Iteration = iteration;
        Strategy = strategy;
        Trace = trace;
        Exception = exception;
    }

    /// <summary>What kind of bug.</summary>
    public BugKind Kind { get; }

    /// <summary>What failed, in words.</summary>
    public string Message { get; }

    /// <summary>
    /// The kind of bug the failed assertion stated (<see cref="Specification.Assert(bool, string, string)"/>), or null
    /// when it stated none or the bug is not an assertion. Tools match it; <see cref="Message"/> is for people.
    /// </summary>
    public string? Category { get; internal init; }

    /// <summary>The iteration that found it (from 0).</summary>
    public int Iteration { get; }

    /// <summary>The strategy (for the portfolio, the member) that found it.</summary>
    public string Strategy { get; }

    /// <summary>The reported schedule: minimised when minimisation is on.</summary>
    public ScheduleTrace Trace { get; internal set; }

    /// <summary>The exception, for <see cref="BugKind.Exception"/>.</summary>
    public Exception? Exception { get; }

    /// <summary>Pass to <see cref="TestingEngine.Replay(string, Action, Configuration?)"/> (or <c>engine replay</c>) to run this schedule again.</summary>
    public string ReplayString => Trace.ReplayString;

    /// <summary>The JSON trace written for this bug, if it could be written.</summary>
    public string? TraceFile { get; internal set; }

    /// <summary>Preemptions in the schedule as first found.</summary>
    public int OriginalPreemptions { get; internal set; }

    /// <summary>Preemptions in the reported schedule.</summary>
    public int Preemptions => Trace.Preemptions;

    /// <summary>Replays spent minimising.</summary>
    public int MinimizationReplays { get; internal set; }

    /// <summary>
    /// False when replaying the schedule did not reproduce the bug: the test has nondeterminism the tester does not
    /// control (time, an unseeded random, uncontrolled threads, state left by an earlier iteration).
    /// </summary>
    public bool Reproducible { get; internal set; } = true;

    /// <summary>Why the replay did not reproduce the bug, when it did not.</summary>
    public string? ReproductionNote { get; internal set; }

    /// <summary>The finding scheduler's own report, when it was not the built-in one (Coyote's bug report and log).</summary>
    public string? SchedulerReport { get; internal set; }

    /// <summary>
    /// For a bug another scheduler found: whether the built-in scheduler follows the recorded schedule to the same bug
    /// (the two schedulers' cross-check), or null when it was not tried.
    /// </summary>
    public string? CrossCheck { get; internal set; }

    /// <summary>The interleaving as a per-thread column table.</summary>
    public string Table => Trace.ToTable();

    /// <summary>
    /// The schedule as a race description (<see cref="StoryView"/>): the protocol events per thread, in schedule
    /// order. Schedules of code that marks no events fall back to <see cref="Table"/>.
    /// </summary>
    public string Story => Trace.Events.Count > 0 ? Trace.ToStory() : Table;

    /// <summary>The whole story: message, where and how found, the table, and how to replay.</summary>
    public override string ToString() => Format(null);

    /// <summary>
    /// The report: the headline, how the bug was found, the schedule as a story (the events, with the low-level steps
    /// too if <paramref name="story"/> asks; the interleaving table for code that marks no events) and the replay.
    /// </summary>
    public string Format(StoryOptions? story)
    {
        var sb = new StringBuilder();
        sb.Append(Kind).Append(": ").AppendLine(Message);
        sb.Append("found in iteration ").Append(Iteration).Append(" by ").Append(Strategy)
          .Append("; schedule of ").Append(Trace.Steps.Count).Append(" steps with ").Append(Preemptions).Append(" preemption(s)");
        if (OriginalPreemptions != Preemptions)
        {
            sb.Append(" (minimised from ").Append(OriginalPreemptions).Append(')');
        }

        sb.AppendLine();
        if (!Reproducible)
        {
            sb.Append("WARNING: not reproducible on replay: ").AppendLine(ReproductionNote);
        }

        sb.AppendLine();
        sb.Append(Trace.Events.Count > 0 ? Trace.ToStory(story) : Table);
        sb.AppendLine();
        if (Trace.Scheduler is { Length: > 0 } scheduler)
        {
            var name = char.ToUpperInvariant(scheduler[0]) + scheduler[1..];
            if (SchedulerReport is not null)
            {
                sb.Append(name).AppendLine("'s report:").AppendLine(SchedulerReport.TrimEnd()).AppendLine();
            }

            if (CrossCheck is not null)
            {
                sb.Append("cross-check: ").AppendLine(CrossCheck);
            }

            if (TraceFile is not null)
            {
                sb.Append("trace:  ").Append(TraceFile).Append(" (engine replay ").Append(TraceFile).Append(": ")
                  .Append(name).AppendLine(" replays its own trace)");
            }

            sb.Append("replay: ").Append(ReplayString).AppendLine(" (the same schedule, for the built-in scheduler)");
            return sb.ToString();
        }

        sb.Append("replay: ").AppendLine(ReplayString);
        if (TraceFile is not null)
        {
            sb.Append("trace:  ").AppendLine(TraceFile);
        }

        return sb.ToString();
    }
}
