using Engine.Systematic;

namespace Conformance;

/// <summary>What a run of a <see cref="FolioRace"/> found: the tester's report, and the vacuity guard's verdict.</summary>
/// <param name="Report">The tester's report.</param>
/// <param name="Vacuity">Null when the race ran (or a bug was found); otherwise why the run proved nothing.</param>
public sealed record FolioRaceResult(TestReport Report, string? Vacuity)
{
    /// <summary>No bug, no schedule cut at the step bound, and the race ran.</summary>
    public bool Clean => Report.BugsFound == 0 && Report.StepBoundHits == 0 && Vacuity is null;

    /// <summary>
    /// Null for a clean run; otherwise what is wrong with it: the bug, the schedules cut short, or the vacuity guard's
    /// message.
    /// </summary>
    public string? Problem => Report.FirstBug is { } bug
        ? $"{bug.Kind} in schedule {bug.Iteration}: {bug.Message}"
        : Report.StepBoundHits > 0
            ? $"{Report.StepBoundHits} schedule(s) cut short by the step bound explored less than claimed"
            : Vacuity;
}
