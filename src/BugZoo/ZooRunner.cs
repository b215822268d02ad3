using Engine.Systematic;

namespace BugZoo;

/// <summary>
/// Runs a zoo entry the way docs/bug-zoo.md states its claims: the buggy scenario seed by seed until the first bug,
/// and the fixed one for a whole budget, counting the interleavings it met. Shared by <c>engine zoo</c> and the tests.
/// </summary>
public static class ZooRunner
{
    /// <summary>
    /// The buggy scenario with the default portfolio (or <paramref name="scheduler"/>), seed <paramref name="seed"/>, until its first bug or
    /// <paramref name="budget"/> schedules. No minimisation, replay or trace files unless <paramref name="full"/>: the
    /// iteration count is what is asked; <paramref name="full"/> gives the report that tells the story.
    /// <paramref name="scheduler"/> explores with its strategy (the built-in scheduler's default portfolio when null).
    /// A full report's trace file goes to <paramref name="traceDirectory"/> (the tester's default folder when null).
    /// <paramref name="proposal"/> runs the scenario under a design no kernel shipped (<see cref="ZooProposal"/>).
    /// </summary>
    public static TestReport FindBug(ZooEntry entry, int seed, int budget, bool full = false, ISystematicScheduler? scheduler = null, string? traceDirectory = null, ZooProposal proposal = ZooProposal.None)
    {
        var configuration = Configuration.Create().WithTestingIterations(budget).WithSeed(seed).WithTestName(entry.BuggyTestNameUnder(proposal)).WithTraceDirectory(traceDirectory);
        if (!full)
        {
            configuration = configuration.WithScheduleMinimization(false).WithFailureReplay(false).WithTraceFiles(false);
        }

        return (scheduler ?? BuiltinScheduler.Instance).Run(configuration, entry.BuggyUnder(proposal));
    }

    /// <summary>
    /// The fixed scenario for <paramref name="iterations"/> schedules with the default portfolio (or
    /// <paramref name="scheduler"/>, as for <see cref="FindBug"/>); returns the report
    /// and how many schedules met each of the entry's <see cref="ZooEntry.Events"/>. <paramref name="proposal"/> as for
    /// <see cref="FindBug"/>.
    /// </summary>
    public static (TestReport Report, long[] Events) RunFixed(ZooEntry entry, int iterations, int parallelism = 1, long seed = 0, ISystematicScheduler? scheduler = null, ZooProposal proposal = ZooProposal.None)
    {
        var probe = new ZooProbe(entry.Events.Count);
        var configuration = Configuration.Create().WithTestingIterations(iterations).WithSeed(seed).WithParallelism(parallelism)
            .WithTestName(entry.FixedTestNameUnder(proposal));
        var report = (scheduler ?? BuiltinScheduler.Instance).Run(configuration, entry.FixedUnder(probe, proposal));
        return (report, Enumerable.Range(0, entry.Events.Count).Select(probe.Count).ToArray());
    }

    /// <summary>
    /// Null when <paramref name="bug"/> is this entry's bug (its report carries the entry's <see cref="ZooEntry.Kind"/>
    /// as its category); otherwise why not. The message plays no part: a failure of another kind is another bug
    /// whatever it says.
    /// </summary>
    public static string? Mismatch(ZooEntry entry, BugReport bug)
        => string.Equals(bug.Category, entry.Kind, StringComparison.Ordinal)
            ? null
            : $"entry {entry.Number} ({entry.Name}) failed with a {bug.Kind} that is not its bug (kind {bug.Category ?? "none"}, not {entry.Kind}): {bug.Message}";

    /// <summary>
    /// Null when a fixed run holds up: no bug, no schedule cut short by the step bound, and every event met at least
    /// once; otherwise what went wrong.
    /// </summary>
    public static string? FixedFailure(ZooEntry entry, TestReport report, long[] events)
    {
        if (report.FirstBug is { } bug)
        {
            return $"entry {entry.Number} ({entry.Name}) with the fix: {bug.Kind} in schedule {bug.Iteration}: {bug.Message}";
        }

        if (report.StepBoundHits > 0)
        {
            return $"entry {entry.Number} ({entry.Name}) with the fix: {report.StepBoundHits} schedule(s) cut short by the step bound explored less than claimed";
        }

        var missed = Enumerable.Range(0, events.Length).Where(i => events[i] == 0).Select(i => $"\"{entry.Events[i]}\"").ToList();
        return missed.Count == 0 ? null : $"entry {entry.Number} ({entry.Name}) with the fix never met {string.Join(", ", missed)} in {report.Iterations} schedules: the pass proves nothing about it";
    }
}
