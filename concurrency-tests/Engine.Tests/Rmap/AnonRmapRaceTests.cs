using Engine.Mm;
using Engine.PageTables;
using Engine.Rmap;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Rmap;

/// <summary>
/// Races on the anon_vma structure under the tester: two first faults in one VMA making its anon_vma, and an rmap
/// walk that unmaps a page (what reclaim's <c>try_to_unmap</c> does) while the process forks.
/// </summary>
public sealed class AnonRmapRaceTests
{
    private const int Schedules = 10_000;

    [Fact]
    public void TwoFirstFaultsInOneVmaShareOneAnonVma()
    {
        var raced = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), PrepareRace(recheck: true, () => Interlocked.Increment(ref raced)));
        AssertClean(report);
        Assert.True(raced > 0, "the two faults never both found the VMA without an anon_vma: the test proved nothing");
    }

    [Fact]
    public void WithoutTheRecheckTheLosersPagesAreLostToRmapWalksForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(PrepareRace(recheck: false, onRace: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("anon_vma", bug.Message);
        });
    }

    [Fact]
    public void AnUnmappingWalkRacingForkLeavesThePageUnmapped()
    {
        var found = new int[3]; // the walk unmapped 0, 1, 2 entries
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), ForkVersusUnmapWalk(linkFirst: true, unmapped => Interlocked.Increment(ref found[unmapped])));
        AssertClean(report);
        Assert.True(found[1] > 0 && found[2] > 0, $"the walk never saw both outcomes (only the parent's entry: {found[1]}, the child's too: {found[2]}): the test proved nothing");
    }

    [Fact]
    public void WithTheChildLinkedAfterTheCopyTheWalkMissesItsMappingForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(ForkVersusUnmapWalk(linkFirst: false, onWalk: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("still mapped", bug.Message);
        });
    }

    /// <summary>Two CPUs store to different pages of a new VMA: both faults find it without an anon_vma.</summary>
    internal static Action PrepareRace(bool recheck, Action? onRace) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, AnonVmaPrepareRecheck = recheck });
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var other = ControlledThread.Start(() => machine.Cpus[1].Write(process, address + Page, 2), "cpu1");
        machine.Cpus[0].Write(process, address, 1);
        other.Join();
        if (machine.Stats.AnonVmaPrepareRaces > 0)
        {
            onRace?.Invoke();
        }

        Specification.Assert(machine.Cpus[0].Read(process, address + Page) == 2 && machine.Cpus[1].Read(process, address) == 1, "a store was lost");
        AssertInvariants(machine);
    };

    /// <summary>
    /// A page is mapped by a process that forks while a walker, holding the page locked and referenced as reclaim
    /// does, unmaps every entry its rmap walk finds. Once the walk is over the page must be mapped nowhere: each entry
    /// fork copied is in a VMA the walk visits, or was copied from an entry the walk had already cleared (so it is
    /// no copy at all).
    /// </summary>
    internal static Action ForkVersusUnmapWalk(bool linkFirst, Action<int>? onWalk) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, ForkLinksAnonVmaBeforeCopy = linkFirst });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        var pfn = RmapProbe.PfnAt(machine, parent, address);
        Process? child = null;
        var forker = ControlledThread.Start(() => child = parent.Fork(), "fork");

        machine.Memmap.GetPage(pfn);
        machine.Memmap.LockPage(pfn);
        var walk = new UnmapVisitor(machine, pfn);
        machine.Rmap.Walk(pfn, ref walk);
        var left = machine.Memmap.MapCount(pfn);
        machine.Memmap.UnlockPage(pfn);
        machine.Pages.PutPage(-1, pfn);
        forker.Join();

        onWalk?.Invoke(walk.Unmapped);
        Specification.Assert(left == 0, $"the walk unmapped {walk.Unmapped} entr(ies) but the page is still mapped {left} time(s): fork copied an entry into a VMA the walk did not visit");
        AssertInvariants(machine);
        child!.Dispose();
    };

    /// <summary>Clears each entry that maps the page, as <c>try_to_unmap_one</c> does (without leaving a swap entry: the page is dropped).</summary>
    private struct UnmapVisitor(Engine.Machine machine, long pfn) : IRmapVisitor
    {
        public int Unmapped { get; private set; }

        public bool Visit(Vma vma, ulong address)
        {
            var table = machine.Tables.WalkToPteTable(vma.Mm.Pgd, address);
            if (table < 0)
            {
                return true;
            }

            var index = PageTableSet.Index(address, 1);
            var ptl = machine.Tables.Ptl(table);
            ptl.Enter();
            var pte = machine.Ptes.PtepGet(table, index);
            if (pte.IsPresent && !pte.IsSpecial && pte.Pfn == pfn)
            {
                machine.Ptes.PtepGetAndClear(table, index);
                machine.Shootdown.FlushTlbRange(vma.Mm.Context, address, address + Page);
                machine.Memmap.RemoveMapTestLast(pfn);
                ptl.Exit();
                machine.Pages.PutPage(-1, pfn);
                Unmapped++;
                return true;
            }

            ptl.Exit();
            return true;
        }
    }
}
