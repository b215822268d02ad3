using Engine;

namespace Conformance;

/// <summary>
/// cow.c's table, one cell at a time, on a fresh machine of given settings: the scenario, then what CowSelftestTests and
/// CowSelftestLargeFolioTests check around it (the invariants; every frame and swap slot given back; on a large folio, one
/// large-folio fault, no fallback and no split). A cell never throws: an exception is its <see cref="CowSelftestCellResult.Problem"/>.
/// </summary>
public static class CowSelftestCells
{
    /// <summary>How a large-folio row names its runner.</summary>
    public static string Describe(CowSelftestMemory memory) => memory switch
    {
        CowSelftestMemory.BasePage => "base page",
        CowSelftestMemory.SwappedOutBasePage => "swapped-out base page",
        CowSelftestMemory.PteMappedFolio => "PTE-mapped",
        CowSelftestMemory.SinglePteOfFolio => "single PTE",
        CowSelftestMemory.PartiallyUnmappedFolio => "partially munmap()'ed",
        _ => "partially shared",
    };

    /// <summary>The name of a large-folio row: <c>basic COW after fork on PTE-mapped</c>.</summary>
    public static string RowName(string scenario, CowSelftestMemory memory) => $"{scenario} on {Describe(memory)}";

    /// <summary>
    /// The base-page row <paramref name="scenario"/> (any of <see cref="CowSelftestScenarios.All"/>) on a machine of
    /// <paramref name="options"/> (<see cref="CowSelftestScenarios.Options"/>, changed as wanted).
    /// </summary>
    public static CowSelftestCellResult RunBasePage(string scenario, MachineOptions options)
        => Run(scenario, options, machine => CowSelftestScenarios.Run(scenario, machine), machine =>
        {
            machine.EvictCleanPages();
            return machine.Stats.SwapSlotsInUse == 0 ? null : $"{machine.Stats.SwapSlotsInUse} swap slot(s) still in use";
        });

    /// <summary>
    /// The anonymous scenario <paramref name="scenario"/> on the large-folio runner <paramref name="memory"/>, on a
    /// machine of <paramref name="options"/>, which must have large anonymous folios.
    /// </summary>
    public static CowSelftestCellResult RunLargeFolio(string scenario, CowSelftestMemory memory, MachineOptions options)
        => Run(RowName(scenario, memory), options, machine => CowSelftestScenarios.Run(scenario, memory, machine), machine =>
        {
            // Nothing split the folio after the preparation checked it, so every step met it large; one large folio was
            // faulted in, and no fault fell back to a page.
            var stats = machine.Stats;
            return (stats.FolioSplits, stats.AnonFolioFaults, stats.AnonFolioFallbacks) == (0, 1, 0)
                ? null
                : $"{stats.FolioSplits} split(s), {stats.AnonFolioFaults} folio fault(s), {stats.AnonFolioFallbacks} fallback(s) (expected 0, 1, 0)";
        });

    private static CowSelftestCellResult Run(string row, MachineOptions options, Func<Machine, CowSelftestOutcome> scenario, Func<Machine, string?> after)
    {
        CowSelftestOutcome? outcome = null;
        try
        {
            using var machine = new Machine(options);
            var free = machine.FreeFrames;
            outcome = scenario(machine);
            machine.CheckInvariants();
            var problem = after(machine);
            if (problem is null && machine.FreeFrames != free)
            {
                problem = $"{free - machine.FreeFrames} frame(s) not given back";
            }

            string? held = null;
            if (problem is not null && HeldOnlyUntilReclaim(machine, free))
            {
                // The design's word kept a page cached or in the swap cache (eviction and free_swap_cache trust it);
                // reclaim walks the rmap, finds nothing mapping it and gives everything back: a cost, not a leak.
                (held, problem) = (problem, null);
            }

            machine.CheckInvariants();
            return new CowSelftestCellResult(row, outcome, problem, held);
        }
        catch (Exception e)
        {
            // Anything the scenario or the engine threw fails the cell with what it said (no stack trace: the row
            // replays as it is, one thread, deterministic).
            return new CowSelftestCellResult(row, outcome, $"{e.GetType().Name}: {Summary(e.Message)}");
        }
    }

    /// <summary>
    /// Under a scheme that keeps no count (the tri-state, none), whether what every process's exit left held is given back
    /// by reclaim (whose rmap walk is exact) and a last eviction: every frame and every swap slot.
    /// </summary>
    public static bool HeldOnlyUntilReclaim(Machine machine, long freeFrames)
    {
        if (machine.Options.Mapcount is not (MapcountScheme.TriState or MapcountScheme.None))
        {
            return false;
        }

        machine.Reclaim(machine.Options.Frames);
        machine.EvictCleanPages();
        return machine.FreeFrames == freeFrames && machine.Stats.SwapSlotsInUse == 0;
    }

    /// <summary>
    /// The message's first two lines, on one line: what went wrong and its first instance (an invariant check's message is
    /// a count, then one violation a line).
    /// </summary>
    private static string Summary(string message)
        => string.Join(" ", message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Take(2));
}
