namespace BugZoo;

/// <summary>The bug zoo (issue 5), in the order of docs/bug-zoo.md's table.</summary>
public static class BugZooCatalog
{
    /// <summary>Every entry.</summary>
    public static IReadOnlyList<ZooEntry> All { get; } =
    [
        new(4, "gup-fast-recheck", "GUP-fast pins a frame freed and handed to another process after it read the entry",
            "GupFastRecheck (with BroadcastTlbInvalidate)",
            "the re-read of the entry after the reference in x86's lockless get_user_pages_fast (Linux 2.6.27), kept in every gup_fast since",
            "GUP-fast without its re-check", GupFastReuse.Events,
            probe => GupFastReuse.Scenario(recheck: true, probe), GupFastReuse.Scenario(recheck: false, probe: null)),
    ];

    /// <summary>The entry called <paramref name="name"/>, or numbered so.</summary>
    public static ZooEntry Get(string name) => All.FirstOrDefault(e => e.Name == name || e.Number.ToString(System.Globalization.CultureInfo.InvariantCulture) == name)
        ?? throw new ArgumentException($"No bug-zoo entry '{name}'. Known: {string.Join(", ", All.Select(e => $"{e.Number} {e.Name}"))}.", nameof(name));
}
