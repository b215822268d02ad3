namespace BugZoo;

/// <summary>
/// One historical race of the bug zoo: the knob whose "off" brings it back, the kernel change that fixed it, and the
/// scenario in both settings.
/// </summary>
/// <param name="Number">Its number in docs/bug-zoo.md.</param>
/// <param name="Name">Short name, used on the command line.</param>
/// <param name="Bug">What goes wrong, in a few words.</param>
/// <param name="Knob">The setting that reproduces it (a <c>MachineOptions</c> property off, or a <c>CowReuse</c> rule).</param>
/// <param name="KernelFix">The kernel change that fixed it: title, commit, release.</param>
/// <param name="Kind">
/// The kind of bug its reports carry (<see cref="ZooBugKind"/>, stated by the scenario's failing assertion and carried
/// to <c>BugReport.Category</c>), so a run that fails for another reason is not taken for it.
/// </param>
/// <param name="Events">
/// The interleavings a run with the fix must meet for its pass to mean something; the scenario reports them to the
/// <see cref="ZooProbe"/> it is given, by index. Empty for bugs of a rule, which every schedule shows.
/// </param>
/// <param name="FixedUnder">
/// The scenario with the protection on, reporting to a probe (or to none), under a proposal (<see cref="ZooProposal"/>,
/// usually none).
/// </param>
/// <param name="BuggyUnder">The scenario with the knob off, under a proposal.</param>
public sealed record ZooEntry(
    int Number,
    string Name,
    string Bug,
    string Knob,
    string KernelFix,
    string Kind,
    IReadOnlyList<string> Events,
    Func<ZooProbe?, ZooProposal, Action> FixedUnder,
    Func<ZooProposal, Action> BuggyUnder)
{
    /// <summary>The scenario with the protection on, reporting to a probe (or to none).</summary>
    public Func<ZooProbe?, Action> Fixed => probe => FixedUnder(probe, ZooProposal.None);

    /// <summary>The scenario with the knob off.</summary>
    public Action Buggy => BuggyUnder(ZooProposal.None);

    /// <summary>
    /// The test name runs of <see cref="Buggy"/> record in their traces (<c>dirty-cow-buggy</c>): the entry and its
    /// setting, all that <c>engine replay</c> needs to rebuild the scenario.
    /// </summary>
    public string BuggyTestName => Name + "-buggy";

    /// <summary>The test name runs of <see cref="Fixed"/> record in their traces (<c>dirty-cow-fixed</c>).</summary>
    public string FixedTestName => Name + "-fixed";

    /// <summary>The test name of the buggy scenario under <paramref name="proposal"/> (<c>lost-dirty-buggy+rule-d</c>).</summary>
    public string BuggyTestNameUnder(ZooProposal proposal) => BuggyTestName + ZooProposals.Suffix(proposal);

    /// <summary>The test name of the fixed scenario under <paramref name="proposal"/>.</summary>
    public string FixedTestNameUnder(ZooProposal proposal) => FixedTestName + ZooProposals.Suffix(proposal);
}
