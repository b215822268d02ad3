using Engine.Sync;

namespace Engine.Systematic.Strategies;

/// <summary>
/// Follows a recorded schedule decision by decision. When the program stops matching it — the recorded thread is
/// not enabled, a data choice is met where a schedule decision was recorded (or the reverse), the schedule runs out,
/// or (with <c>checkOperations</c>, for JSON traces) a thread performs a different operation or line than recorded —
/// it sets <see cref="SchedulingStrategy.Divergence"/> naming the step, and the runtime ends the iteration.
/// </summary>
internal sealed class ReplayStrategy(IReadOnlyList<TraceStep> steps, bool checkOperations) : SchedulingStrategy
{
    private int _next;

    public override string Name => "replay";

    public override bool UsesFairnessFallback => false;

    /// <summary>Number of recorded decisions consumed so far.</summary>
    public int Consumed => _next;

    public int Recorded => steps.Count;

    public override bool PrepareIteration(int iteration, ulong seed, int stepsEstimate)
    {
        _next = 0;
        Divergence = null;
        return true;
    }

    public override int NextThread(in SchedulingContext context)
    {
        if (_next >= steps.Count)
        {
            Divergence ??= $"step {_next}: the recorded schedule ends after {steps.Count} decisions, but the test went on.";
            return context.NonPreemptiveChoice;
        }

        var step = steps[_next++];
        if (step.Kind != DecisionKind.Schedule)
        {
            Divergence ??= $"step {step.Index}: the schedule records a data choice here, but the test reached a scheduling point.";
            return context.NonPreemptiveChoice;
        }

        if (!context.IsEnabled(step.Thread))
        {
            Divergence ??= $"step {step.Index}: the schedule runs T{step.Thread}, which is not enabled here (enabled: {Format(context.Enabled)}).";
            return context.NonPreemptiveChoice;
        }

        return step.Thread;
    }

    public override int NextInteger(int maxValue, int step)
    {
        if (_next >= steps.Count)
        {
            Divergence ??= $"step {_next}: the recorded schedule ends after {steps.Count} decisions, but the test made a data choice.";
            return 0;
        }

        var recorded = steps[_next++];
        if (recorded.Kind == DecisionKind.Schedule || recorded.Bound != maxValue)
        {
            Divergence ??= $"step {recorded.Index}: the schedule records {Describe(recorded)} here, but the test asked for a value below {maxValue}.";
            return 0;
        }

        return recorded.Value;
    }

    public override string? CheckStep(int step, int thread, OperationKind kind, string file, int line)
    {
        if (!checkOperations || step >= steps.Count)
        {
            return null;
        }

        var recorded = steps[step];
        if (recorded.Thread == thread && recorded.Operation == kind && recorded.Line == line &&
            string.Equals(Path.GetFileName(recorded.File), Path.GetFileName(file), StringComparison.Ordinal))
        {
            return null;
        }

        var actual = new TraceStep(step, recorded.Kind, thread, thread, 0, kind, file, line, -1, 0, false);
        return $"step {step}: the trace records T{recorded.Thread} performing {recorded.Operation} at {recorded.Location}, " +
               $"but T{thread} performed {kind} at {actual.Location}.";
    }

    private static string Describe(TraceStep step) => step.Kind switch
    {
        DecisionKind.Schedule => $"a scheduling decision (T{step.Thread})",
        _ => $"a data choice below {step.Bound}",
    };

    private static string Format(ReadOnlySpan<int> enabled)
    {
        var parts = new string[enabled.Length];
        for (var i = 0; i < enabled.Length; i++)
        {
            parts[i] = $"T{enabled[i]}";
        }

        return string.Join(", ", parts);
    }
}
