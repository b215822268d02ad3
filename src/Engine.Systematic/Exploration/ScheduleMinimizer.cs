using Engine.Systematic.Runtime;
using Engine.Systematic.Strategies;

namespace Engine.Systematic.Exploration;

/// <summary>
/// Shrinks a failing schedule to the fewest preemptions that still fail the same way, so the reported interleaving
/// shows only the switches the bug needs (Lincheck does the same to its scenarios; CHESS's observation that real
/// bugs need few preemptions is why it pays). Greedy: turn the schedule into switches anchored to program points
/// (<see cref="GuidedStrategy"/>), try dropping one preemptive switch at a time, keep any run that fails the same way
/// with fewer preemptions, and start again from it, until no single drop helps or the replay budget is spent.
/// </summary>
internal static class ScheduleMinimizer
{
    public static (IterationResult Best, int Replays) Minimize(ControlledRuntime runtime, Action body, IterationResult failing, int budget)
    {
        var best = failing;
        var replays = 0;
        var improved = true;
        while (improved && replays < budget)
        {
            improved = false;
            var (switches, data) = GuidedStrategy.FromTrace(best.Trace!);
            var anchors = best.Trace!.Where(s => s.Preemption).Select(s => (s.From, s.FromStep)).ToList();
            foreach (var anchor in anchors)
            {
                if (replays >= budget)
                {
                    break;
                }

                var candidate = new Dictionary<(int Thread, int Step), int>(switches);
                candidate.Remove(anchor);
                var result = runtime.RunIteration(failing.Iteration, failing.Seed, new GuidedStrategy(candidate, data), 0, body, keepTrace: true);
                replays++;
                if (IsSameBug(result, failing) && result.Preemptions < best.Preemptions)
                {
                    best = result;
                    improved = true;
                    break;
                }
            }
        }

        return (best, replays);
    }

    /// <summary>
    /// Same kind and, for assertions and exceptions, the same message. Deadlocks, hangs and uncontrolled
    /// concurrency match on kind alone: their messages name thread positions that a shorter schedule may change.
    /// </summary>
    public static bool IsSameBug(IterationResult result, IterationResult original)
        => result.BugKind == original.BugKind &&
           (original.BugKind is not (BugKind.Assertion or BugKind.Exception) || result.BugMessage == original.BugMessage);
}
