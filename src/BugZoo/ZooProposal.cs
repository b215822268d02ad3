using Engine;

namespace BugZoo;

/// <summary>
/// A design the seed threads proposed, which the zoo can run every entry under (<c>engine zoo --proposal</c>) to see
/// which races it closes or changes, and that it breaks none of the fixed scenarios.
/// </summary>
public enum ZooProposal
{
    /// <summary>The entry's own settings, nothing added.</summary>
    None,

    /// <summary>
    /// Rule (d) of seed 001, "we never create a swap cache page out of a writable COW mapping page", with the rule (c)
    /// it relies on (<see cref="MachineOptions.WriteProtectBeforeSwap"/>). No kernel shipped it.
    /// </summary>
    RuleD,

    /// <summary>
    /// Large anonymous folios (seed 003's subject) of order 1 with per-page mapcounts (<see cref="MapcountScheme.PerPage"/>,
    /// Linux ≤ 6.14): a scenario's anonymous ranges of two aligned pages become folios.
    /// </summary>
    Folios,

    /// <summary>
    /// Large anonymous folios of order 1 counted by MM id (<see cref="MapcountScheme.MmId"/>: seed 003's proposal as
    /// Linux 6.15 shipped it). An entry whose copy-on-write rule predates 6.15 keeps per-page mapcounts, the only
    /// scheme that rule met.
    /// </summary>
    MmIdFolios,
}

/// <summary>How a <see cref="ZooProposal"/> changes a scenario's machine, and its name on the command line and in traces.</summary>
public static class ZooProposals
{
    /// <summary>The proposals a user can name, by their command-line name.</summary>
    public static IReadOnlyList<(string Name, ZooProposal Proposal)> Named { get; } =
        [("rule-d", ZooProposal.RuleD), ("folios", ZooProposal.Folios), ("mm-id-folios", ZooProposal.MmIdFolios)];

    /// <summary><paramref name="options"/> with <paramref name="proposal"/>'s settings on top.</summary>
    public static MachineOptions Apply(this ZooProposal proposal, MachineOptions options) => proposal switch
    {
        ZooProposal.RuleD => options with { WriteProtectBeforeSwap = true },
        ZooProposal.Folios => options with { AnonFolioOrder = 1, Mapcount = MapcountScheme.PerPage },
        ZooProposal.MmIdFolios => options with
        {
            AnonFolioOrder = 1,
            Mapcount = options.CowReuse == CowReuse.AnonExclusive ? MapcountScheme.MmId : MapcountScheme.PerPage,
        },
        _ => options,
    };

    /// <summary>The command-line name (<c>rule-d</c>), or null for <see cref="ZooProposal.None"/>.</summary>
    public static string? NameOf(ZooProposal proposal) => Named.FirstOrDefault(n => n.Proposal == proposal).Name;

    /// <summary>What a trace's test name adds for <paramref name="proposal"/>: nothing, or <c>+rule-d</c>.</summary>
    public static string Suffix(ZooProposal proposal) => NameOf(proposal) is { } name ? "+" + name : "";
}
