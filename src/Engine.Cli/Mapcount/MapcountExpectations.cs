using static Engine.Cli.Mapcount.CheckOutcome;
using static Engine.Cli.Mapcount.MapcountCheck;

namespace Engine.Cli.Mapcount;

/// <summary>
/// What <c>engine mapcount</c> expects of each design: the table docs/mapcount.md states. Every check not listed here
/// finds its default (<see cref="MapcountCheck.Default"/>): a zoo entry's race is found with its knob off, and every
/// other check passes (the fixed scenarios hold, every cow.c row passes, the race tests and the stress run pass). A
/// line here says where a design differs, and why. A check the design cannot run (<see cref="NotApplicable"/>) is never
/// compared.
/// <para>
/// To change an expected cell, add, change or remove a line: the design's name, the check (one of
/// <see cref="MapcountCheck"/>'s factories, named as the table names it), and what it finds; for example
/// <c>new("tri-state", ZooBuggy("lost-dirty"), Closed, "…")</c> (the race no longer reproduces),
/// <c>new("none", ZooFixed("lost-dirty"), Fails, "…")</c> (the fixed scenario finds a bug: an unsoundness, whose
/// report is printed), <c>new("none", CowLargeFolio("vmsplice + unmap in child", CowSelftestMemory.PteMappedFolio, 2), Fails, "…")</c>
/// or <c>new("none", CowBasePage("basic COW after fork"), Fails, "…")</c>. <see cref="Problems"/> (and a test) refuse a
/// line that names no design, no check, a check the design cannot run, or a cell twice.
/// </para>
/// </summary>
internal sealed class MapcountExpectations(IReadOnlyList<MapcountExpectation> lines)
{
    /// <summary>The expectations docs/mapcount.md states: <see cref="Table"/>.</summary>
    public static MapcountExpectations Documented { get; } = new(Table);

    /// <summary>Where a design differs from the defaults.</summary>
    public static IReadOnlyList<MapcountExpectation> Table =>
    [
        // Entry 11's direct I/O holds a reference on each page, so reclaim cannot split the folio and never swaps it
        // out: the race cannot start, under any scheme (docs/folios.md, "The zoo with large folios").
        new("per-page", ZooBuggy("reclaim-freeze-dirty"), Closed, "an order-1 folio held by direct I/O is never split, so never swapped (docs/folios.md)"),
        new("mm-id", ZooBuggy("reclaim-freeze-dirty"), Closed, "an order-1 folio held by direct I/O is never split, so never swapped (docs/folios.md)"),
        new("tri-state", ZooBuggy("reclaim-freeze-dirty"), Closed, "as per-page: an order-1 folio held by direct I/O is never split"),
        new("none", ZooBuggy("reclaim-freeze-dirty"), Closed, "as per-page: an order-1 folio held by direct I/O is never split"),

        // Entry 17's bug is the per-page estimate, which MM ids replace by a precise answer (docs/folios.md).
        new("mm-id", ZooBuggy("estimated-sharers-reuse"), Closed, "MM ids answer \"shared\" without false negatives (docs/folios.md)"),

        // Seed 004 without the delayed rmap: with no word to call the page unmapped, folio_mkclean always walks and
        // waits at the PTL the zap holds until it has flushed (FlushDirtyUnderPtl).
        new("none", ZooBuggy("lost-dirty"), Closed, "mkclean cannot skip the page: it walks and waits for the zap's PTL, held until the flush"),

        // The tri-state comes down from "maybe more" by an rmap walk under the page lock, so every mapping of a cached
        // page must be made under that lock: a read fault that maps without it makes the walk's "not mapped" wrong.
        new("tri-state", Race("walk-vs-unlocked-read-fault"), Fails, "the walk lowers the word under a mapping made without the page lock: a false \"not mapped\""),

        // Eviction and free_swap_cache trust the word: a page once mapped twice (tri-state) or ever mapped (none) keeps
        // its frame, and a swap-cache page a GUP user held at the unmap keeps its slot, until reclaim's exact walk.
        new("tri-state", CowBasePage("basic COW, file page"), HeldUntilReclaim, "eviction keeps a page-cache page the fork mapped twice (\"maybe more\" until a walk)"),
        new("tri-state", CowBasePage("R/O long-term pin, file page"), HeldUntilReclaim, "eviction keeps a page-cache page mapped twice (\"maybe more\" until a walk)"),
        new("tri-state", CowBasePage("R/O long-term GUP-fast pin, file page"), HeldUntilReclaim, "eviction keeps a page-cache page mapped twice (\"maybe more\" until a walk)"),
        new("tri-state", CowBasePage("vmsplice before fork, unmap in parent after fork (swapped out)"), HeldUntilReclaim, "free_swap_cache keeps a page the pipe held at the last unmap, \"maybe more\" after fork"),
        new("tri-state", MapcountCheck.Stress, HeldUntilReclaim, "eviction keeps page-cache pages once mapped twice; reclaim gives them back"),
        new("none", CowBasePage("basic COW, file page"), HeldUntilReclaim, "eviction keeps a page ever mapped"),
        new("none", CowBasePage("R/O long-term pin, file page"), HeldUntilReclaim, "eviction keeps a page ever mapped"),
        new("none", CowBasePage("R/O long-term GUP-fast pin, file page"), HeldUntilReclaim, "eviction keeps a page ever mapped"),
        new("none", CowBasePage("vmsplice + unmap in child (swapped out)"), HeldUntilReclaim, "free_swap_cache keeps a page the pipe held at the last unmap"),
        new("none", CowBasePage("vmsplice + unmap in child with mprotect (swapped out)"), HeldUntilReclaim, "free_swap_cache keeps a page the pipe held at the last unmap"),
        new("none", CowBasePage("vmsplice before fork, unmap in parent after fork (swapped out)"), HeldUntilReclaim, "free_swap_cache keeps a page the pipe held at the last unmap"),
        new("none", CowBasePage("vmsplice + unmap in parent after fork (swapped out)"), HeldUntilReclaim, "free_swap_cache keeps a page the pipe held at the last unmap"),
        new("none", MapcountCheck.Stress, HeldUntilReclaim, "eviction keeps every page-cache page ever mapped; reclaim gives them back"),
    ];

    /// <summary>What <paramref name="check"/> is expected to find under the design called <paramref name="design"/>.</summary>
    public CheckOutcome Expected(string design, MapcountCheck check)
        => lines.FirstOrDefault(e => e.Design == design && e.Check == check)?.Expected ?? check.Default;

    /// <summary>Why <paramref name="check"/> is expected to find what it does under <paramref name="design"/>, when the table says.</summary>
    public string? Why(string design, MapcountCheck check) => lines.FirstOrDefault(e => e.Design == design && e.Check == check)?.Why;

    /// <summary>
    /// The table's mistakes: a line that names no design or no check, expects <see cref="NotApplicable"/> (which the
    /// settings decide, not the table) or an outcome its kind of check cannot have, or a cell twice. Empty when the
    /// table is sound; <paramref name="applies"/> says whether a design can run a check at all, so a line for a
    /// check it cannot run is refused too.
    /// </summary>
    public IEnumerable<string> Problems(Func<MapcountDesign, MapcountCheck, bool> applies)
    {
        ArgumentNullException.ThrowIfNull(applies);
        var known = MapcountCheck.All.ToHashSet();
        foreach (var line in lines)
        {
            var design = MapcountDesign.Find(line.Design);
            if (design is null)
            {
                yield return $"{line.Design}: no such design (known: {string.Join(", ", MapcountDesign.All.Select(d => d.Name))})";
            }
            else if (!known.Contains(line.Check))
            {
                yield return $"{line.Design}: no check {line.Check}";
            }
            else if (!Possible(line.Check.Kind).Contains(line.Expected))
            {
                yield return $"{line.Design}: {line.Check} cannot find {line.Expected} (it finds one of {string.Join(", ", Possible(line.Check.Kind))})";
            }
            else if (!applies(design, line.Check))
            {
                yield return $"{line.Design}: {line.Check} does not run under this design (its settings need another copy-on-write rule or scheme)";
            }
        }

        foreach (var twice in lines.GroupBy(e => (e.Design, e.Check)).Where(g => g.Count() > 1))
        {
            yield return $"{twice.Key.Design}: {twice.Key.Check} is listed {twice.Count()} times";
        }
    }

    /// <summary>The outcomes a check of <paramref name="kind"/> can find, not counting <see cref="NotApplicable"/>.</summary>
    public static IReadOnlyList<CheckOutcome> Possible(MapcountCheckKind kind) => kind switch
    {
        MapcountCheckKind.ZooBuggy => [Found, Closed, WrongBug],
        MapcountCheckKind.CowBasePage or MapcountCheckKind.CowLargeFolio => [Passes, HeldUntilReclaim, Fails],
        MapcountCheckKind.Stress => [Passes, HeldUntilReclaim, Fails, Vacuous],
        _ => [Passes, Fails, Vacuous],
    };
}
