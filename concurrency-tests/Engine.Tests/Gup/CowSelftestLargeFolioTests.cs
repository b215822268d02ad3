using Conformance;
using Engine.Testing;
using static Conformance.CowSelftestCheck;
using static Conformance.CowSelftestMemory;

namespace Engine.Tests.Gup;

/// <summary>
/// cow.c's large-folio rows: every anonymous scenario of <see cref="CowSelftestScenarios"/> on the THP runners that
/// cow.c has run at every mTHP size since Linux 6.8 (<see cref="CowSelftestMemory"/>), on machines with large anonymous
/// folios of order 2 (16 KiB) and, on the kernels that have mTHP, 4 (64 KiB), against the kernels that had PTE-mapped
/// large folios: the four generations before AnonExclusive and the AnonExclusive one with per-page mapcounts
/// (<see cref="MapcountScheme.PerPage"/>), and 6.15's MM owner tracking (<see cref="MapcountScheme.MmId"/>). Every cell
/// is a test case and must pass or fail as the table says, with that check broken and no other; each also checks that
/// the preparation left the large folio its row names (in <see cref="CowSelftestScenarios"/>) and that nothing split it
/// afterwards, so no row can pass on order-0 pages. The table, and how it compares with the kernel's history, is in
/// docs/folios.md ("cow.c's large-folio rows").
/// </summary>
public sealed class CowSelftestLargeFolioTests
{
    private static readonly CowSelftestCheck? Passes = null;

    /// <summary>
    /// Scenario × variant × kernel → pass (<see cref="Passes"/>) or the check that fails. Columns: MapCount (≤ 5.8),
    /// PageCount before 5.18 (5.9–5.17), PageCount (5.18), AnonExclusive before 6.2 (5.19–6.1), AnonExclusive (6.2–6.14),
    /// all with per-page mapcounts; and AnonExclusive with MM ids (6.15).
    /// </summary>
    private static readonly (string Scenario, CowSelftestMemory Memory, CowSelftestCheck? MapCount, CowSelftestCheck? Before518, CowSelftestCheck? PageCount, CowSelftestCheck? Before62, CowSelftestCheck? AnonExclusive, CowSelftestCheck? MmId)[] Table =
    [
        ("basic COW after fork", PteMappedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork, the child stores", PteMappedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork with mprotect", PteMappedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child", PteMappedFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child with mprotect", PteMappedFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice before fork, unmap in parent after fork", PteMappedFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in parent after fork", PteMappedFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("R/O-mapping an io_uring fixed buffer", PteMappedFolio, Passes, LongTermWritePinIsReliable, LongTermWritePinIsReliable, Passes, Passes, Passes),
        ("fork with an io_uring fixed buffer", PteMappedFolio, LongTermWritePinIsReliable, Passes, Passes, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped shared page", PteMappedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped shared page", PteMappedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped previously-shared page", PteMappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", PteMappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped exclusive page", PteMappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", PteMappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("basic COW after fork", SinglePteOfFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork, the child stores", SinglePteOfFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork with mprotect", SinglePteOfFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child", SinglePteOfFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child with mprotect", SinglePteOfFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice before fork, unmap in parent after fork", SinglePteOfFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in parent after fork", SinglePteOfFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("R/O-mapping an io_uring fixed buffer", SinglePteOfFolio, Passes, LongTermWritePinIsReliable, LongTermWritePinIsReliable, Passes, Passes, Passes),
        ("fork with an io_uring fixed buffer", SinglePteOfFolio, LongTermWritePinIsReliable, Passes, Passes, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped shared page", SinglePteOfFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped shared page", SinglePteOfFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped previously-shared page", SinglePteOfFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", SinglePteOfFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped exclusive page", SinglePteOfFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", SinglePteOfFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("basic COW after fork", PartiallyUnmappedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork, the child stores", PartiallyUnmappedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork with mprotect", PartiallyUnmappedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child", PartiallyUnmappedFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child with mprotect", PartiallyUnmappedFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice before fork, unmap in parent after fork", PartiallyUnmappedFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in parent after fork", PartiallyUnmappedFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("R/O-mapping an io_uring fixed buffer", PartiallyUnmappedFolio, Passes, LongTermWritePinIsReliable, LongTermWritePinIsReliable, Passes, Passes, Passes),
        ("fork with an io_uring fixed buffer", PartiallyUnmappedFolio, LongTermWritePinIsReliable, Passes, Passes, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped shared page", PartiallyUnmappedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped shared page", PartiallyUnmappedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped previously-shared page", PartiallyUnmappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", PartiallyUnmappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped exclusive page", PartiallyUnmappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", PartiallyUnmappedFolio, Passes, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("basic COW after fork", PartiallySharedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork, the child stores", PartiallySharedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("basic COW after fork with mprotect", PartiallySharedFolio, Passes, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child", PartiallySharedFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in child with mprotect", PartiallySharedFolio, NoLeakFromParentIntoChild, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice before fork, unmap in parent after fork", PartiallySharedFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("vmsplice + unmap in parent after fork", PartiallySharedFolio, NoLeakFromChildIntoParent, Passes, Passes, Passes, Passes, Passes),
        ("R/O-mapping an io_uring fixed buffer", PartiallySharedFolio, Passes, LongTermWritePinIsReliable, LongTermWritePinIsReliable, Passes, Passes, Passes),
        ("fork with an io_uring fixed buffer", PartiallySharedFolio, LongTermWritePinIsReliable, Passes, Passes, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped shared page", PartiallySharedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped shared page", PartiallySharedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped previously-shared page", PartiallySharedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", PartiallySharedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O pin on R/O-mapped exclusive page", PartiallySharedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", PartiallySharedFolio, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, LongTermReadOnlyPinIsReliable, Passes, Passes, Passes),
    ];

    /// <summary>
    /// The table, one row per cell: every cell with folios of order 2 (16 KiB); the two columns of the kernels that have
    /// mTHP (6.8 on, the only ones where cow.c runs mTHP sizes) again with order 4 (64 KiB). Before 6.8 the only
    /// PTE-mapped large folios were PMD-sized THPs; the small order stands in for them.
    /// </summary>
    public static TheoryData<string, CowSelftestMemory, int, CowGeneration, MapcountScheme, CowSelftestCheck?> Cells
    {
        get
        {
            var cells = new TheoryData<string, CowSelftestMemory, int, CowGeneration, MapcountScheme, CowSelftestCheck?>();
            foreach (var row in Table)
            {
                cells.Add(row.Scenario, row.Memory, 2, CowGeneration.MapCount, MapcountScheme.PerPage, row.MapCount);
                cells.Add(row.Scenario, row.Memory, 2, CowGeneration.PageCountBefore518, MapcountScheme.PerPage, row.Before518);
                cells.Add(row.Scenario, row.Memory, 2, CowGeneration.PageCount, MapcountScheme.PerPage, row.PageCount);
                cells.Add(row.Scenario, row.Memory, 2, CowGeneration.AnonExclusiveBefore62, MapcountScheme.PerPage, row.Before62);
                foreach (var order in (int[])[2, 4])
                {
                    cells.Add(row.Scenario, row.Memory, order, CowGeneration.AnonExclusive, MapcountScheme.PerPage, row.AnonExclusive);
                    cells.Add(row.Scenario, row.Memory, order, CowGeneration.AnonExclusive, MapcountScheme.MmId, row.MmId);

                    // Seed 002's proposals keep no count to reuse a large folio by: their pages are copied as per-page's are.
                    cells.Add(row.Scenario, row.Memory, order, CowGeneration.AnonExclusive, MapcountScheme.TriState, row.AnonExclusive);
                    cells.Add(row.Scenario, row.Memory, order, CowGeneration.AnonExclusive, MapcountScheme.None, row.AnonExclusive);
                }
            }

            return cells;
        }
    }

    [Theory]
    [MemberData(nameof(Cells))]
    public void EachScenarioOnALargeFolioPassesOrFailsAsItsGenerationsRuleSays(string scenario, CowSelftestMemory memory, int order, CowGeneration generation, MapcountScheme mapcount, CowSelftestCheck? fails)
    {
        using var machine = CowSelftestScenarios.CreateMachine(generation, folioOrder: order, mapcount: mapcount);
        var free = machine.FreeFrames;

        var outcome = CowSelftestScenarios.Run(scenario, memory, machine);

        var cell = $"{scenario} on {memory} (order {order}), {generation}/{mapcount}";
        machine.CheckInvariants();
        if (fails is { } check)
        {
            Assert.False(outcome.Passed, $"{cell}: expected to break {check}, but it passed");
            Assert.True(outcome.FailedChecks.SequenceEqual([check]), $"{cell}: expected to break only {check}, got {outcome}");
        }
        else
        {
            Assert.True(outcome.Passed, $"{cell}: expected to pass, got {outcome}");
        }

        // The preparation checked that it left a large folio; nothing split it afterwards, so every step of the
        // scenario met it large. One large folio was faulted in, and none fell back to a page.
        var stats = machine.Stats;
        Assert.True(
            (stats.FolioSplits, stats.AnonFolioFaults, stats.AnonFolioFallbacks) == (0, 1, 0),
            $"{cell}: {stats.FolioSplits} split(s), {stats.AnonFolioFaults} folio fault(s), {stats.AnonFolioFallbacks} fallback(s)");

        // The scenario gave back every process, pin and reference, and with them every frame of the folio.
        Assert.Equal(free, machine.FreeFrames);
        machine.CheckInvariants();
    }

    [Fact]
    public void TheTableHasOneRowPerScenarioAndVariant()
    {
        var expected = CowSelftestScenarios.LargeFolioMemories.SelectMany(m => CowSelftestScenarios.AnonymousScenarios.Select(s => (s, m)));
        Assert.Equal(expected, Table.Select(r => (r.Scenario, r.Memory)));
    }

    /// <summary>
    /// Why the partially mapped variants hold a reference across their zap (and the scenarios across an mprotect of
    /// part of a folio): without one, the engine splits a folio that nothing but one mm's mappings holds wherever a
    /// munmap, <c>MADV_DONTNEED</c> or mprotect cuts through it. The kernel splits such a folio later, from its
    /// deferred-split queue (munmap, MADV_DONTNEED), or never (mprotect). Should the engine stop splitting at once, this
    /// test fails and the holds can go.
    /// </summary>
    [Theory]
    [InlineData("munmap")]
    [InlineData("MADV_DONTNEED")]
    [InlineData("mprotect")]
    public void WithoutAHeldReferenceTheEngineSplitsAFolioThatAnOperationCutsThrough(string operation)
    {
        const ulong page = CowSelftestScenarios.Page;
        using var machine = CowSelftestScenarios.CreateMachine(CowGeneration.AnonExclusive, folioOrder: 2);
        using var process = machine.CreateProcess();
        var mem = process.Mmap(4 * page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, mem, 1);
        Assert.Equal(4, machine.Inspect().FolioAt(process, mem)!.Value.Pages);

        switch (operation)
        {
            case "munmap":
                process.Munmap(mem + (2 * page), 2 * page);
                break;
            case "MADV_DONTNEED":
                process.MadviseDontNeed(mem + page, 3 * page);
                break;
            default:
                process.Mprotect(mem, page, Prot.Read);
                break;
        }

        Assert.Equal((1L, 0L), (machine.Stats.FolioSplits, machine.Stats.FolioSplitsRefused));
        Assert.Equal(1, machine.Inspect().FolioAt(process, mem)!.Value.Pages);
        machine.CheckInvariants();
    }
}
