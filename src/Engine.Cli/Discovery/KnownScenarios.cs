using BugZoo;
using ClassicBugs;
using Conformance;

namespace Engine.Cli.Discovery;

/// <summary>
/// The scenarios this program runs itself (the bug zoo and the classic bugs), found again by the test name their runs
/// write into traces, so <c>engine replay</c> needs no assembly for them: <c>&lt;entry&gt;-buggy</c> (the zoo entry
/// with its knob off), <c>&lt;entry&gt;-fixed</c> (with the fix), <c>&lt;classic&gt;-buggy</c>,
/// <c>&lt;classic&gt;-correct</c>; a zoo run under a proposal adds its name (<c>lost-dirty-buggy+rule-d</c>); the
/// large-folio races of <c>engine mapcount</c> are <c>folio-race-&lt;race&gt;+&lt;scheme&gt;</c>. The name says which entry and which setting: each entry's scenario is fixed but for
/// that one setting, so the name alone rebuilds it. A replay string carries no name: <c>--scenario</c> gives it.
/// </summary>
internal static class KnownScenarios
{
    /// <summary>Every scenario's name with its body, zoo entries first.</summary>
    public static IReadOnlyList<(string Name, Func<Action> Body)> All { get; } =
    [
        .. BugZooCatalog.All.SelectMany(entry => Enum.GetValues<ZooProposal>().SelectMany(proposal => new (string, Func<Action>)[]
        {
            (entry.BuggyTestNameUnder(proposal), () => entry.BuggyUnder(proposal)),
            (entry.FixedTestNameUnder(proposal), () => entry.FixedUnder(null, proposal)),
        })),
        .. FolioRaceScenarios.All.SelectMany(race => Enum.GetValues<MapcountScheme>().Where(race.AppliesTo).Select(scheme =>
            (race.TestName(scheme), (Func<Action>)(() => race.Body(scheme, new FolioRaceCounters()))))),
        .. ClassicBugCatalog.All.SelectMany(bug => new (string, Func<Action>)[]
        {
            (bug.Name + "-buggy", () => bug.Buggy),
            (bug.Name + "-correct", () => bug.Correct),
        }),
    ];

    /// <summary>The body recorded under <paramref name="testName"/>, or null when it is none of this program's.</summary>
    public static Action? Find(string? testName)
    {
        foreach (var (name, body) in All)
        {
            if (name == testName)
            {
                return body();
            }
        }

        return null;
    }
}
