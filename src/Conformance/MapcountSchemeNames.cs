using Engine;

namespace Conformance;

/// <summary>
/// The command-line names of the mapcount schemes (<c>engine stress --mapcount</c>, <c>engine mapcount --designs</c>),
/// which the conformance runs also put in the test names their traces record.
/// </summary>
public static class MapcountSchemeNames
{
    /// <summary>Every scheme with its name, in the order of <see cref="MapcountScheme"/>.</summary>
    public static IReadOnlyList<(string Name, MapcountScheme Scheme)> All { get; } =
    [
        ("per-page", MapcountScheme.PerPage),
        ("mm-id", MapcountScheme.MmId),
        ("tri-state", MapcountScheme.TriState),
        ("none", MapcountScheme.None),
    ];

    /// <summary><c>per-page</c>, <c>mm-id</c>, <c>tri-state</c> or <c>none</c>.</summary>
    public static string Of(MapcountScheme scheme) => All.First(n => n.Scheme == scheme).Name;

    /// <summary>The scheme called <paramref name="name"/> (its command-line name or its enum name, in any case), or null.</summary>
    public static MapcountScheme? Parse(string name)
    {
        foreach (var (known, scheme) in All)
        {
            if (string.Equals(known, name, StringComparison.OrdinalIgnoreCase) || string.Equals(scheme.ToString(), name, StringComparison.OrdinalIgnoreCase))
            {
                return scheme;
            }
        }

        return null;
    }
}
