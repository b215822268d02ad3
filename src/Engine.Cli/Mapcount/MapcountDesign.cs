using BugZoo;
using Conformance;

namespace Engine.Cli.Mapcount;

/// <summary>
/// One of the four mapcount designs <c>engine mapcount</c> compares: a <see cref="MapcountScheme"/>, and the zoo
/// proposal that runs the bug zoo under it with large folios of order 1.
/// </summary>
/// <param name="Scheme">The machine's <see cref="MachineOptions.Mapcount"/>.</param>
/// <param name="Proposal">The zoo proposal with large folios under this scheme.</param>
/// <param name="Title">The column's heading.</param>
internal sealed record MapcountDesign(MapcountScheme Scheme, ZooProposal Proposal, string Title)
{
    /// <summary>The four designs, in the order of the table's columns.</summary>
    public static IReadOnlyList<MapcountDesign> All { get; } =
    [
        new(MapcountScheme.PerPage, ZooProposal.Folios, "per-page (<= 6.14)"),
        new(MapcountScheme.MmId, ZooProposal.MmIdFolios, "mm-id (6.15)"),
        new(MapcountScheme.TriState, ZooProposal.TriStateFolios, "tri-state (seed 002)"),
        new(MapcountScheme.None, ZooProposal.NoMapcountFolios, "none (seed 002)"),
    ];

    /// <summary>The command-line name: <c>per-page</c>, <c>mm-id</c>, <c>tri-state</c>, <c>none</c>.</summary>
    public string Name => MapcountSchemeNames.Of(Scheme);

    /// <summary>The design called <paramref name="name"/> (its command-line name), or null.</summary>
    public static MapcountDesign? Find(string name) => All.FirstOrDefault(d => string.Equals(d.Name, name, StringComparison.OrdinalIgnoreCase));
}
