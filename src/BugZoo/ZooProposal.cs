using Engine;

namespace BugZoo;

/// <summary>
/// A design the seed threads proposed but no kernel shipped, which the zoo can run every entry under
/// (<c>engine zoo --proposal</c>) to see which races it closes or changes.
/// </summary>
public enum ZooProposal
{
    /// <summary>The entry's own settings, nothing added.</summary>
    None,

    /// <summary>
    /// Rule (d) of seed 001, "we never create a swap cache page out of a writable COW mapping page", with the rule (c)
    /// it relies on (<see cref="MachineOptions.WriteProtectBeforeSwap"/>).
    /// </summary>
    RuleD,
}

/// <summary>How a <see cref="ZooProposal"/> changes a scenario's machine, and its name on the command line and in traces.</summary>
public static class ZooProposals
{
    /// <summary>The proposals a user can name, by their command-line name.</summary>
    public static IReadOnlyList<(string Name, ZooProposal Proposal)> Named { get; } = [("rule-d", ZooProposal.RuleD)];

    /// <summary><paramref name="options"/> with <paramref name="proposal"/>'s settings on top.</summary>
    public static MachineOptions Apply(this ZooProposal proposal, MachineOptions options) => proposal switch
    {
        ZooProposal.RuleD => options with { WriteProtectBeforeSwap = true },
        _ => options,
    };

    /// <summary>The command-line name (<c>rule-d</c>), or null for <see cref="ZooProposal.None"/>.</summary>
    public static string? NameOf(ZooProposal proposal) => Named.FirstOrDefault(n => n.Proposal == proposal).Name;

    /// <summary>What a trace's test name adds for <paramref name="proposal"/>: nothing, or <c>+rule-d</c>.</summary>
    public static string Suffix(ZooProposal proposal) => NameOf(proposal) is { } name ? "+" + name : "";
}
