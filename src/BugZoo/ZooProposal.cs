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

    /// <summary>
    /// Seed 002's tri-state mapcount (<see cref="MapcountScheme.TriState"/>) with large anonymous folios of order 1:
    /// Wilcox's proposal, which no kernel shipped. It is meant for the AnonExclusive rule only; an entry whose rule is
    /// older keeps per-page mapcounts, as under <see cref="MmIdFolios"/>, and so does entry 17's knob-off scenario, whose
    /// reuse by the per-page estimate needs the count this scheme does not keep.
    /// </summary>
    TriStateFolios,

    /// <summary>
    /// Seed 002's "no mapcount at all" (<see cref="MapcountScheme.None"/>) with large anonymous folios of order 1:
    /// Torvalds's proposal, which no kernel shipped. For the AnonExclusive rule only, as <see cref="TriStateFolios"/>.
    /// </summary>
    NoMapcountFolios,
}

/// <summary>How a <see cref="ZooProposal"/> changes a scenario's machine, and its name on the command line and in traces.</summary>
public static class ZooProposals
{
    /// <summary>The proposals a user can name, by their command-line name.</summary>
    public static IReadOnlyList<(string Name, ZooProposal Proposal)> Named { get; } =
        [("rule-d", ZooProposal.RuleD), ("folios", ZooProposal.Folios), ("mm-id-folios", ZooProposal.MmIdFolios),
            ("tri-state-folios", ZooProposal.TriStateFolios), ("no-mapcount-folios", ZooProposal.NoMapcountFolios)];

    /// <summary>
    /// Set on a thread while <see cref="SettingsOf"/> runs a scenario up to its machine: <see cref="Apply"/> then
    /// hands back the settings it was given instead of returning.
    /// </summary>
    [ThreadStatic]
    private static bool t_capturing;

    /// <summary><paramref name="options"/> with <paramref name="proposal"/>'s settings on top.</summary>
    public static MachineOptions Apply(this ZooProposal proposal, MachineOptions options) => proposal switch
    {
        _ when t_capturing => throw new CapturedSettings(options),
        ZooProposal.RuleD => options with { WriteProtectBeforeSwap = true },
        ZooProposal.Folios => options with { AnonFolioOrder = 1, Mapcount = MapcountScheme.PerPage },
        ZooProposal.MmIdFolios => WithFolios(options, MapcountScheme.MmId),
        ZooProposal.TriStateFolios => WithFolios(options, MapcountScheme.TriState),
        ZooProposal.NoMapcountFolios => WithFolios(options, MapcountScheme.None),
        _ => options,
    };

    /// <summary>
    /// The scheme a proposal brings in (<see cref="MapcountScheme.PerPage"/> for those that bring none), and whether an
    /// entry whose rule is <paramref name="rule"/> can run under it: the MM-id scheme and seed 002's proposals only
    /// with the AnonExclusive rule, and seed 002's proposals not with <paramref name="reuseByEstimate"/> (entry 17's
    /// road not taken, which reuses by a count they do not keep).
    /// </summary>
    public static (MapcountScheme Scheme, bool Applies) MapcountUnder(ZooProposal proposal, CowReuse rule, bool reuseByEstimate = false)
    {
        var scheme = proposal switch
        {
            ZooProposal.MmIdFolios => MapcountScheme.MmId,
            ZooProposal.TriStateFolios => MapcountScheme.TriState,
            ZooProposal.NoMapcountFolios => MapcountScheme.None,
            _ => MapcountScheme.PerPage,
        };
        return (scheme, CanRun(scheme, rule, reuseByEstimate));
    }

    /// <summary>
    /// Whether a scenario built with <paramref name="options"/> runs under <paramref name="proposal"/> as proposed:
    /// false when the proposal's mapcount scheme cannot run with the scenario's copy-on-write rule
    /// (<see cref="MapcountUnder"/>), where <see cref="Apply"/> keeps per-page mapcounts instead, or when the machine
    /// refuses the scenario's settings under it (entry 17's <see cref="MachineOptions.ReuseLargeFoliosByEstimate"/> needs
    /// a scheme that keeps a count).
    /// </summary>
    public static bool RunsAsProposed(this ZooProposal proposal, MachineOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!MapcountUnder(proposal, options.CowReuse, options.ReuseLargeFoliosByEstimate).Applies)
        {
            return false;
        }

        try
        {
            proposal.Apply(options).Validate();
            return true;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    /// <summary>
    /// The settings <paramref name="scenario"/> builds its machine with, before any proposal: every zoo scenario's first
    /// step is <c>new Machine(proposal.Apply(settings))</c>, so the scenario is run on this thread up to that call, which
    /// hands the settings back, and no further (nothing of the engine runs, no thread starts).
    /// </summary>
    /// <exception cref="InvalidOperationException">The scenario did not start with its machine.</exception>
    public static MachineOptions SettingsOf(Action scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        t_capturing = true;
        try
        {
            scenario();
        }
        catch (CapturedSettings captured)
        {
            return captured.Options;
        }
        finally
        {
            t_capturing = false;
        }

        throw new InvalidOperationException("The scenario returned without building its machine through ZooProposals.Apply.");
    }

    /// <summary>
    /// Order-1 folios counted by <paramref name="scheme"/>, or per page when the entry's rule predates it (or, under seed
    /// 002's proposals, when it reuses by the per-page estimate: entry 17's knob-off scenario).
    /// </summary>
    private static MachineOptions WithFolios(MachineOptions options, MapcountScheme scheme) => options with
    {
        AnonFolioOrder = 1,
        Mapcount = CanRun(scheme, options.CowReuse, options.ReuseLargeFoliosByEstimate) ? scheme : MapcountScheme.PerPage,
    };

    private static bool CanRun(MapcountScheme scheme, CowReuse rule, bool reuseByEstimate)
        => scheme == MapcountScheme.PerPage
            || (rule == CowReuse.AnonExclusive && !(reuseByEstimate && scheme is MapcountScheme.TriState or MapcountScheme.None));

    /// <summary>The command-line name (<c>rule-d</c>), or null for <see cref="ZooProposal.None"/>.</summary>
    public static string? NameOf(ZooProposal proposal) => Named.FirstOrDefault(n => n.Proposal == proposal).Name;

    /// <summary>What a trace's test name adds for <paramref name="proposal"/>: nothing, or <c>+rule-d</c>.</summary>
    public static string Suffix(ZooProposal proposal) => NameOf(proposal) is { } name ? "+" + name : "";
}

/// <summary>What <see cref="ZooProposals.Apply"/> throws, and <see cref="ZooProposals.SettingsOf"/> catches, to hand a scenario's settings back.</summary>
internal sealed class CapturedSettings(MachineOptions options) : Exception("A zoo scenario's settings, read by ZooProposals.SettingsOf: not an error.")
{
    public MachineOptions Options => options;
}
