using Engine;
using Engine.Systematic;

namespace Conformance;

/// <summary>
/// One large-folio race scenario of <see cref="FolioRaceScenarios"/>, ready to run under any scheme it exists for.
/// </summary>
/// <param name="Name">Short name (<c>two-faults</c>): the row of <c>engine mapcount</c>, and the start of its test name.</param>
/// <param name="Claim">What a clean run shows, in a few words.</param>
/// <param name="Iterations">The schedules its test runs.</param>
/// <param name="Schemes">The schemes it exists for; null: every scheme.</param>
/// <param name="Body">The scenario under a scheme, counting into the counters it is given.</param>
/// <param name="Vacuity">Null when the counters show the race ran; otherwise why the run proved nothing.</param>
public sealed record FolioRace(
    string Name,
    string Claim,
    int Iterations,
    IReadOnlyList<MapcountScheme>? Schemes,
    Func<MapcountScheme, FolioRaceCounters, Action> Body,
    Func<FolioRaceCounters, string?> Vacuity)
{
    /// <summary>Whether the scenario exists under <paramref name="scheme"/> (the MM-id slots exist under <see cref="MapcountScheme.MmId"/> only).</summary>
    public bool AppliesTo(MapcountScheme scheme) => Schemes is null || Schemes.Contains(scheme);

    /// <summary>The test name its runs under <paramref name="scheme"/> record in their traces: <c>folio-race-two-faults+tri-state</c>.</summary>
    public string TestName(MapcountScheme scheme) => $"folio-race-{Name}+{MapcountSchemeNames.Of(scheme)}";

    /// <summary>
    /// Runs the scenario under <paramref name="scheme"/> with <paramref name="configuration"/> (its test name set to
    /// <see cref="TestName"/>) on <paramref name="scheduler"/> (the built-in one when null), and applies the vacuity
    /// guard when no bug was found.
    /// </summary>
    public FolioRaceResult Run(MapcountScheme scheme, Configuration configuration, ISystematicScheduler? scheduler = null)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        if (!AppliesTo(scheme))
        {
            throw new ArgumentException($"The race '{Name}' exists only under {string.Join(", ", Schemes!.Select(MapcountSchemeNames.Of))}.", nameof(scheme));
        }

        var counters = new FolioRaceCounters();
        var report = (scheduler ?? BuiltinScheduler.Instance).Run(configuration.WithTestName(TestName(scheme)), Body(scheme, counters));
        return new FolioRaceResult(report, report.FirstBug is null ? Vacuity(counters) : null);
    }
}
