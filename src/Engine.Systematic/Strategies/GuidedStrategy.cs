namespace Engine.Systematic.Strategies;

/// <summary>
/// Runs a schedule given as a set of switches, used to minimise failing schedules. A switch is anchored to the
/// thread that makes it and to how many times that thread had run — (T, k) → U means "when T reaches its scheduling
/// point after being chosen k times, run U" — so removing one switch does not shift the others, which stay attached
/// to the same program points. Where no switch applies the current thread goes on, or if it cannot, the lowest
/// enabled id runs. Data choices are replayed in order (then 0).
/// </summary>
internal sealed class GuidedStrategy(IReadOnlyDictionary<(int Thread, int Step), int> switches, IReadOnlyList<int> data) : SchedulingStrategy
{
    private int _nextData;

    public override string Name => "guided";

    public override bool UsesFairnessFallback => false;

    public override bool PrepareIteration(int iteration, ulong seed, int stepsEstimate)
    {
        _nextData = 0;
        return true;
    }

    public override int NextThread(in SchedulingContext context)
        => switches.TryGetValue((context.Current, context.CurrentThreadStep), out var target) && context.IsEnabled(target)
            ? target
            : context.NonPreemptiveChoice;

    public override int NextInteger(int maxValue, int step)
    {
        var value = _nextData < data.Count ? data[_nextData++] : 0;
        return value < maxValue ? value : 0;
    }

    /// <summary>The switches and data choices that reproduce <paramref name="steps"/> under this strategy.</summary>
    public static (Dictionary<(int Thread, int Step), int> Switches, List<int> Data) FromTrace(IReadOnlyList<TraceStep> steps)
    {
        var switches = new Dictionary<(int, int), int>();
        var data = new List<int>();
        foreach (var step in steps)
        {
            if (step.Kind != DecisionKind.Schedule)
            {
                data.Add(step.Value);
            }
            else if (step.From >= 0 && step.Thread != step.From)
            {
                switches[(step.From, step.FromStep)] = step.Thread;
            }
        }

        return (switches, data);
    }
}
