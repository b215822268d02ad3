using Conformance;
using static Conformance.CowSelftestCheck;

namespace Engine.Tests.Gup;

/// <summary>
/// The kernel's COW selftest (tools/testing/selftests/mm/cow.c) on base pages and swapped-out base pages, against five
/// kernels: every cell of the table below is a test case, and a cell that says a scenario fails must fail with that
/// check broken (and no other), as a cell that says pass must pass. The base-page table, and how it compares with the
/// kernel's history, is in docs/bug-zoo.md ("cow.c scenarios"); the swapped-out one in docs/swap.md ("cow.c's
/// swapped-out rows").
/// </summary>
public sealed class CowSelftestTests
{
    private static readonly CowSelftestCheck? Passes = null;

    /// <summary>
    /// Scenario × kernel → pass (<see cref="Passes"/>) or the check that fails. Columns: MapCount (≤ 5.8), PageCount
    /// before 5.18 (5.9–5.17), PageCount (5.18), AnonExclusive before 6.2 (5.19–6.1), AnonExclusive (≥ 6.2). Each
    /// anonymous scenario's swapped-out variant follows it.
    /// </summary>
    private static readonly (string Scenario, CowSelftestCheck? MapCount, CowSelftestCheck? Before518, CowSelftestCheck? PageCount, CowSelftestCheck? Before62, CowSelftestCheck? AnonExclusive)[] Table =
    [
        ("basic COW after fork", Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork (swapped out)", Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork, the child stores", Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork, the child stores (swapped out)", Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork with mprotect", Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork with mprotect (swapped out)", Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child", NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child (swapped out)", NoLeakFromParentIntoChild, NoLeakFromParentIntoChild, Passes, Passes, Passes),
        ("vmsplice + unmap in child with mprotect", NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child with mprotect (swapped out)", NoLeakFromParentIntoChild, NoLeakFromParentIntoChild, Passes, Passes, Passes),
        ("vmsplice before fork, unmap in parent after fork", NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes),
        ("vmsplice before fork, unmap in parent after fork (swapped out)", NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in parent after fork", NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in parent after fork (swapped out)", NoLeakFromChildIntoParent, NoLeakFromChildIntoParent, Passes, Passes, Passes),
        ("R/O-mapping an io_uring fixed buffer", Passes, LongTermWritePinIsReliable, LongTermWritePinIsReliable, Passes, Passes),
        ("R/O-mapping an io_uring fixed buffer (swapped out)", Passes, LongTermWritePinIsReliable, LongTermWritePinIsReliable, Passes, Passes),
        ("fork with an io_uring fixed buffer", LongTermWritePinIsReliable, Passes, Passes, Passes, Passes),
        ("fork with an io_uring fixed buffer (swapped out)", LongTermWritePinIsReliable, Passes, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped shared page", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O pin on R/O-mapped shared page (swapped out)", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped shared page", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped shared page (swapped out)", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O pin on R/O-mapped previously-shared page", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O pin on R/O-mapped previously-shared page (swapped out)", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page (swapped out)", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O pin on R/O-mapped exclusive page", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O pin on R/O-mapped exclusive page (swapped out)", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped exclusive page (swapped out)", Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes),
        ("basic COW, zero page", Passes, Passes, Passes, Passes, Passes),
        ("basic COW, file page", Passes, Passes, Passes, Passes, Passes),
        ("R/O long-term pin, zero page", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes),
        ("R/O long-term GUP-fast pin, zero page", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes),
        ("R/O long-term pin, file page", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes),
        ("R/O long-term GUP-fast pin, file page", LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes),
    ];

    /// <summary>The table, one row per cell.</summary>
    public static TheoryData<string, CowGeneration, CowSelftestCheck?> Cells
    {
        get
        {
            var cells = new TheoryData<string, CowGeneration, CowSelftestCheck?>();
            foreach (var row in Table)
            {
                cells.Add(row.Scenario, CowGeneration.MapCount, row.MapCount);
                cells.Add(row.Scenario, CowGeneration.PageCountBefore518, row.Before518);
                cells.Add(row.Scenario, CowGeneration.PageCount, row.PageCount);
                cells.Add(row.Scenario, CowGeneration.AnonExclusiveBefore62, row.Before62);
                cells.Add(row.Scenario, CowGeneration.AnonExclusive, row.AnonExclusive);
            }

            return cells;
        }
    }

    /// <summary>Every row under each of seed 002's proposals (with the AnonExclusive rule, the only one they run with).</summary>
    public static TheoryData<string, MapcountScheme> ProposalCells
    {
        get
        {
            var cells = new TheoryData<string, MapcountScheme>();
            foreach (var row in Table)
            {
                cells.Add(row.Scenario, MapcountScheme.TriState);
                cells.Add(row.Scenario, MapcountScheme.None);
            }

            return cells;
        }
    }

    /// <summary>Every swapped-out scenario against every kernel.</summary>
    public static TheoryData<string, CowGeneration> SwappedOutCells
    {
        get
        {
            var cells = new TheoryData<string, CowGeneration>();
            foreach (var scenario in CowSelftestScenarios.All.Select(s => s.Name).Where(n => n.EndsWith(CowSelftestScenarios.SwappedOutSuffix, StringComparison.Ordinal)))
            {
                foreach (var generation in Enum.GetValues<CowGeneration>())
                {
                    cells.Add(scenario, generation);
                }
            }

            return cells;
        }
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void EachScenarioPassesOrFailsAsItsGenerationsRuleSays(string scenario, CowGeneration generation, CowSelftestCheck? fails)
    {
        using var machine = CowSelftestScenarios.CreateMachine(generation);
        var free = machine.FreeFrames;

        var outcome = CowSelftestScenarios.Run(scenario, machine);

        machine.CheckInvariants();
        if (fails is { } check)
        {
            Assert.False(outcome.Passed, $"{scenario} on {generation}: expected to break {check}, but it passed");
            Assert.True(outcome.FailedChecks.SequenceEqual([check]), $"{scenario} on {generation}: expected to break only {check}, got {outcome}");
        }
        else
        {
            Assert.True(outcome.Passed, $"{scenario} on {generation}: expected to pass, got {outcome}");
        }

        // The scenario gave back every process, pin and reference: only clean, unmapped page-cache pages remain, and
        // no swap slot is in use.
        machine.EvictCleanPages();
        Assert.Equal(free, machine.FreeFrames);
        Assert.Equal(0, machine.Stats.SwapSlotsInUse);
        machine.CheckInvariants();
    }

    /// <summary>
    /// Under the tri-state and with no mapcount every row is as under AnonExclusive: the rule asks no mapcount. What
    /// changes is what the scenario's end leaves held: a page-cache page eviction cannot tell unmapped, a swap-cache
    /// page <c>free_swap_cache</c> cannot, each kept until reclaim's exact walk gives it back (CowSelftestCells).
    /// </summary>
    [Theory]
    [MemberData(nameof(ProposalCells))]
    public void UnderSeed002sProposalsEveryRowIsAsUnderAnonExclusiveAndOnlyReclaimFreesWhatTheWordKeeps(string scenario, MapcountScheme scheme)
    {
        var expected = Table.Single(r => r.Scenario == scenario).AnonExclusive;
        var cell = CowSelftestCells.RunBasePage(scenario, CowSelftestScenarios.Options(CowGeneration.AnonExclusive, mapcount: scheme));

        Assert.True(cell.Problem is null, $"{scenario} under {scheme}: {cell}");
        Assert.Equal(expected is null, cell.Outcome!.Passed);
        if (cell.HeldUntilReclaim is not null)
        {
            Assert.True(scenario.Contains("file page", StringComparison.Ordinal) || scenario.EndsWith(CowSelftestScenarios.SwappedOutSuffix, StringComparison.Ordinal),
                $"{scenario} under {scheme} held '{cell.HeldUntilReclaim}' though it has no page-cache or swap-cache page");
        }
    }

    [Theory]
    [InlineData(MapcountScheme.TriState, "basic COW, file page")]
    [InlineData(MapcountScheme.None, "basic COW, file page")]
    [InlineData(MapcountScheme.None, "vmsplice + unmap in child" + CowSelftestScenarios.SwappedOutSuffix)]
    public void TheProposalsWordKeepsAFrameOrSlotThatPerPageGivesBackAtOnce(MapcountScheme scheme, string scenario)
    {
        Assert.Null(CowSelftestCells.RunBasePage(scenario, CowSelftestScenarios.Options(CowGeneration.AnonExclusive)).HeldUntilReclaim);
        Assert.NotNull(CowSelftestCells.RunBasePage(scenario, CowSelftestScenarios.Options(CowGeneration.AnonExclusive, mapcount: scheme)).HeldUntilReclaim);
    }

    /// <summary>
    /// Rule (d) changes no cell of the table: cow.c pages its page out before any reference is taken, so reclaim only
    /// write-protects it first (every swapped-out scenario does so once), and what follows is the generation's.
    /// </summary>
    [Theory]
    [MemberData(nameof(Cells))]
    public void UnderRuleDEveryCellIsAsWithout(string scenario, CowGeneration generation, CowSelftestCheck? fails)
    {
        using var machine = CowSelftestScenarios.CreateMachine(generation, ruleD: true);

        var outcome = CowSelftestScenarios.Run(scenario, machine);

        Assert.True(fails is { } check ? outcome.FailedChecks.SequenceEqual([check]) : outcome.Passed, $"{scenario} on {generation} under rule (d): {outcome}");
        Assert.Equal(scenario.EndsWith(" (swapped out)", StringComparison.Ordinal) ? 1 : 0, machine.Stats.ReclaimWriteProtects);
        machine.CheckInvariants();
    }

    /// <summary>
    /// A swapped-out variant does swap: its page is written to a slot once, before the scenario's first step (the
    /// scenario also checks that the entry is then a swap entry), and read back once, when the scenario first touches
    /// it (a second fault on the slot, in the other process, finds the page in the swap cache). When the scenario
    /// returns, before any eviction, no swap slot is in use and every frame is free: the anonymous scenarios leave no
    /// page-cache page behind.
    /// </summary>
    [Theory]
    [MemberData(nameof(SwappedOutCells))]
    public void EachSwappedOutScenarioSwapsItsPageOutAndGivesBackItsSlot(string scenario, CowGeneration generation)
    {
        using var machine = CowSelftestScenarios.CreateMachine(generation);
        var free = machine.FreeFrames;

        CowSelftestScenarios.Run(scenario, machine);

        var stats = machine.Stats;
        Assert.Equal(1, stats.SwapOuts);
        Assert.Equal(1, stats.SwapIns);
        Assert.Equal(0, stats.SwapSlotsInUse);
        Assert.Equal(free, machine.FreeFrames);
        Assert.Equal(0, machine.EvictCleanPages());
        machine.CheckInvariants();
    }

    [Fact]
    public void TheTableHasOneRowPerScenario()
    {
        Assert.Equal(CowSelftestScenarios.All.Select(s => s.Name), Table.Select(r => r.Scenario));
        Assert.Equal(Table.Length, Table.Select(r => r.Scenario).Distinct().Count());
    }

    /// <summary>
    /// The GUP-fast variants do reach the lockless walk, and it declines exactly the pages that must be unshared first
    /// (which the fallback to the slow path then unshares): a shared anonymous page where R/O pins unshare (5.19+), a
    /// page-cache page in a private mapping where R/O long-term pins are reliable (6.2+), and the zero page (a special
    /// entry) always. An exclusive anonymous page it takes in every generation.
    /// </summary>
    [Theory]
    [InlineData(CowGeneration.MapCount)]
    [InlineData(CowGeneration.PageCountBefore518)]
    [InlineData(CowGeneration.PageCount)]
    [InlineData(CowGeneration.AnonExclusiveBefore62)]
    [InlineData(CowGeneration.AnonExclusive)]
    public void TheLocklessWalkLeavesOnlyPagesToBeUnsharedToTheSlowPath(CowGeneration generation)
    {
        const ulong page = CowSelftestScenarios.Page;
        const GupFlags fastOnly = GupFlags.LongTerm | GupFlags.FastOnly;
        var unsharesAnon = generation is CowGeneration.AnonExclusiveBefore62 or CowGeneration.AnonExclusive;
        using var machine = CowSelftestScenarios.CreateMachine(generation);
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();

        var exclusive = process.Mmap(page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        cpu.Write(process, exclusive, 1);
        using (var pin = cpu.PinUserPages(process, exclusive, 1, fastOnly))
        {
            Assert.Equal(1, pin.Count);
        }

        var shared = process.Mmap(page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        cpu.Write(process, shared, 1);
        using (var child = process.Fork())
        using (var pin = cpu.PinUserPages(process, shared, 1, fastOnly))
        {
            Assert.Equal(unsharesAnon ? 0 : 1, pin.Count);
        }

        var zero = process.Mmap(page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Assert.Equal(0UL, cpu.Read(process, zero));
        using (var pin = cpu.PinUserPages(process, zero, 1, fastOnly))
        {
            Assert.Equal(0, pin.Count);
        }

        var file = machine.CreateFile("memfd", (long)page);
        var cached = process.Mmap(page, Prot.ReadWrite, MapFlags.Private, file, 0);
        Assert.Equal(0UL, cpu.Read(process, cached));
        using (var pin = cpu.PinUserPages(process, cached, 1, fastOnly))
        {
            Assert.Equal(generation == CowGeneration.AnonExclusive ? 0 : 1, pin.Count);
        }

        machine.CheckInvariants();
    }
}
