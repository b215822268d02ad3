using Engine.Systematic.Runtime;
using Engine.Systematic.Strategies;

namespace Engine.Systematic.Exploration;

/// <summary>
/// Shrinks a failing schedule to the fewest preemptions that still fail the same way, so the reported interleaving
/// shows only the switches the bug needs (Lincheck does the same to its scenarios; CHESS's observation that real
/// bugs need few preemptions is why it pays). Greedy: turn the schedule into switches anchored to program points
/// (<see cref="GuidedStrategy"/>), try dropping one preemptive switch at a time, then two at a time, keep the first
/// run that fails the same way with fewer preemptions, and start again from it, until no drop helps. Then, with the
/// replay budget left, an exhaustive search bounded to 0, 1, ... preemptions looks for the same bug with fewer
/// preemptions than the best so far (on small tests this makes the result a true minimum).
/// </summary>
internal static class ScheduleMinimizer
{
    public static (IterationResult Best, int Replays) Minimize(ControlledRuntime runtime, Action body, IterationResult failing, int budget)
    {
        var best = failing;
        var replays = 0;
        while (replays < budget && best.Preemptions > 0)
        {
            var (switches, data) = GuidedStrategy.FromTrace(best.Trace!);
            var anchors = best.Trace!.Where(s => s.Preemption).Select(s => (s.From, s.FromStep)).ToList();

            // Single drops first; when none helps, pairs: two preemptions often only make sense together (a thread
            // is preempted, and later preempted back), while a different single switch reproduces the bug.
            var improved = TryDrops(anchors.Select(a => new[] { a }));
            if (improved is null && anchors.Count > 1)
            {
                improved = TryDrops(Pairs(anchors));
            }

            if (improved is null)
            {
                break;
            }

            best = improved;
            continue;

            IterationResult? TryDrops(IEnumerable<(int, int)[]> drops)
            {
                foreach (var drop in drops)
                {
                    if (replays >= budget)
                    {
                        return null;
                    }

                    var candidate = new Dictionary<(int Thread, int Step), int>(switches);
                    foreach (var anchor in drop)
                    {
                        candidate.Remove(anchor);
                    }

                    var result = runtime.RunIteration(failing.Iteration, failing.Seed, new GuidedStrategy(candidate, data), 0, body, keepTrace: true);
                    replays++;
                    if (IsSameBug(result, failing) && result.Preemptions < best.Preemptions)
                    {
                        return result;
                    }
                }

                return null;
            }
        }

        // Dropping switches cannot add the one new switch a shorter schedule may need. With the budget left, search
        // for the bug directly among schedules with 0, 1, ... preemptions (CHESS's iterative preemption bounding):
        // the first hit has the fewest preemptions of any schedule that fails the same way, if the search completes.
        for (var bound = 0; bound < best.Preemptions && replays < budget; bound++)
        {
            var search = new DfsStrategy(bound);
            while (replays < budget)
            {
                var result = runtime.RunIteration(failing.Iteration, failing.Seed, search, 0, body, keepTrace: true);
                if (result.Exhausted)
                {
                    break;
                }

                replays++;
                if (IsSameBug(result, failing) && result.Preemptions < best.Preemptions)
                {
                    return (result, replays);
                }
            }
        }

        return (best, replays);
    }

    private static IEnumerable<(int, int)[]> Pairs(List<(int, int)> anchors)
    {
        for (var i = 0; i < anchors.Count; i++)
        {
            for (var j = i + 1; j < anchors.Count; j++)
            {
                yield return [anchors[i], anchors[j]];
            }
        }
    }

    /// <summary>
    /// Same kind and category and, for assertions and exceptions, the same message. Deadlocks, hangs and uncontrolled
    /// concurrency match on kind alone: their messages name thread positions that a shorter schedule may change.
    /// </summary>
    public static bool IsSameBug(IterationResult result, IterationResult original)
        => result.BugKind == original.BugKind && result.BugCategory == original.BugCategory &&
           (original.BugKind is not (BugKind.Assertion or BugKind.Exception) || result.BugMessage == original.BugMessage);
}
