using System.Globalization;
using BugZoo;
using Conformance;

namespace Engine.Cli.Mapcount;

/// <summary>
/// One check <c>engine mapcount</c> makes under each design, and the key of its expectation
/// (<see cref="MapcountExpectations"/>): a zoo entry's buggy or fixed scenario, a row of cow.c's table, a large-folio race,
/// or the stress run. The factories name them as the expectation table does.
/// </summary>
/// <param name="Kind">What it runs.</param>
/// <param name="Name">The entry, the cow.c row (a large-folio row with its runner), the race, or the stress run.</param>
/// <param name="Order">For a large-folio cow.c row, the folio order; otherwise 0.</param>
internal sealed record MapcountCheck(MapcountCheckKind Kind, string Name, int Order = 0)
{
    /// <summary>The folio orders cow.c's large-folio rows run at: 16 KiB and 64 KiB, as CowSelftestLargeFolioTests does for 6.8 on.</summary>
    public static IReadOnlyList<int> CowFolioOrders { get; } = [2, 4];

    /// <summary>The stress run's one check.</summary>
    public static MapcountCheck Stress { get; } = new(MapcountCheckKind.Stress, "stress");

    /// <summary>Zoo entry <paramref name="entry"/> (its name) with its knob off.</summary>
    public static MapcountCheck ZooBuggy(string entry) => new(MapcountCheckKind.ZooBuggy, entry);

    /// <summary>Zoo entry <paramref name="entry"/> with the fix.</summary>
    public static MapcountCheck ZooFixed(string entry) => new(MapcountCheckKind.ZooFixed, entry);

    /// <summary>cow.c's base-page row <paramref name="scenario"/> (a name of <see cref="CowSelftestScenarios.All"/>).</summary>
    public static MapcountCheck CowBasePage(string scenario) => new(MapcountCheckKind.CowBasePage, scenario);

    /// <summary>cow.c's anonymous <paramref name="scenario"/> on the large-folio runner <paramref name="memory"/>, at folio order <paramref name="order"/>.</summary>
    public static MapcountCheck CowLargeFolio(string scenario, CowSelftestMemory memory, int order) => new(MapcountCheckKind.CowLargeFolio, CowSelftestCells.RowName(scenario, memory), order);

    /// <summary>The large-folio race <paramref name="name"/> (a name of <see cref="FolioRaceScenarios.All"/>).</summary>
    public static MapcountCheck Race(string name) => new(MapcountCheckKind.Race, name);

    /// <summary>Every check, in the order of the table: the zoo (buggy, then fixed, per entry), cow.c, the races, stress.</summary>
    public static IReadOnlyList<MapcountCheck> All { get; } =
    [
        .. BugZooCatalog.All.SelectMany(e => new[] { ZooBuggy(e.Name), ZooFixed(e.Name) }),
        .. CowSelftestScenarios.All.Select(s => CowBasePage(s.Name)),
        .. CowFolioOrders.SelectMany(order => CowSelftestScenarios.LargeFolioMemories.SelectMany(m => CowSelftestScenarios.AnonymousScenarios.Select(s => CowLargeFolio(s, m, order)))),
        .. FolioRaceScenarios.All.Select(r => Race(r.Name)),
        Stress,
    ];

    /// <summary>What the check finds when the design behaves as its scheme's neighbours do: a race found, every other check passing.</summary>
    public CheckOutcome Default => Kind == MapcountCheckKind.ZooBuggy ? CheckOutcome.Found : CheckOutcome.Passes;

    /// <summary>How the check is named in the list of differences: <c>zoo lost-dirty, with the fix</c>.</summary>
    public override string ToString() => Kind switch
    {
        MapcountCheckKind.ZooBuggy => $"zoo {Name}, knob off",
        MapcountCheckKind.ZooFixed => $"zoo {Name}, with the fix",
        MapcountCheckKind.CowBasePage => $"cow.c \"{Name}\"",
        MapcountCheckKind.CowLargeFolio => string.Create(CultureInfo.InvariantCulture, $"cow.c \"{Name}\" (order {Order})"),
        MapcountCheckKind.Race => $"race {Name}",
        _ => "stress",
    };
}
