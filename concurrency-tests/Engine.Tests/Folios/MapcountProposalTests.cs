using Engine.Testing;

namespace Engine.Tests.Folios;

/// <summary>
/// Seed 002's two proposals on one thread (<see cref="MapcountScheme.TriState"/>, <see cref="MapcountScheme.None"/>;
/// docs/mapcount.md): what each word says after each step, which answers are exact, which approximate and in which
/// direction, and which cost an rmap walk, with the machine's invariants checked after every step.
/// </summary>
public sealed class MapcountProposalTests
{
    private const ulong Page = 4096;
    private const int NotMapped = -1;
    private const int Once = 0;
    private const int MaybeMore = 1;

    private static Engine.Machine NewMachine(MapcountScheme scheme, int order = 0, int? swapSlots = 0)
        => new(new MachineOptions { Cpus = 2, Frames = 256, AnonFolioOrder = order, Mapcount = scheme, SwapSlots = swapSlots });

    private static ulong MapAnon(Process process, ulong length) => process.Mmap(length, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);

    private static int Word(Engine.Machine machine, long pfn) => machine.Memmap.MapcountWord(pfn);

    [Theory]
    [InlineData(MapcountScheme.TriState, CowReuse.PageCount)]
    [InlineData(MapcountScheme.TriState, CowReuse.MapCount)]
    [InlineData(MapcountScheme.None, CowReuse.PageCount)]
    [InlineData(MapcountScheme.None, CowReuse.MapCount)]
    public void TheProposalsRunOnlyWithTheAnonExclusiveRule(MapcountScheme scheme, CowReuse rule)
    {
        var error = Assert.Throws<ArgumentException>(() => new MachineOptions { Mapcount = scheme, CowReuse = rule }.Validate());
        Assert.Contains("AnonExclusive", error.Message);
        Assert.Throws<ArgumentException>(() => new MachineOptions { Mapcount = scheme, AnonFolioOrder = 1, ReuseLargeFoliosByEstimate = true }.Validate());
    }

    [Fact]
    public void TheTriStateRisesOnMappingsFallsOnTheOnlyUnmappingAndStaysAtMaybeMoreUntilFreed()
    {
        using var machine = NewMachine(MapcountScheme.TriState);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, Page);
        machine.Cpus[0].Write(parent, address, 1);
        var pfn = machine.Inspect().PfnAt(parent, address);
        Assert.Equal(Once, Word(machine, pfn));
        Assert.False(machine.Memmap.MaybeMappedShared(pfn));
        machine.CheckInvariants();

        var child = parent.Fork();
        Assert.Equal(MaybeMore, Word(machine, pfn));
        Assert.True(machine.Memmap.MaybeMappedShared(pfn));
        machine.CheckInvariants();

        // The child goes: one mapping is left, but "maybe more" cannot come down on an unmapping (a false positive).
        child.Dispose();
        Assert.Equal(MaybeMore, Word(machine, pfn));
        Assert.True(machine.Memmap.MaybeMappedShared(pfn));
        machine.CheckInvariants();

        // The reuse rule asks no mapcount: the parent's write reuses the page it alone holds.
        machine.Cpus[0].Write(parent, address, 2);
        Assert.Equal(pfn, machine.Inspect().PfnAt(parent, address));

        // Unmapped and freed: the word is reset with the frame.
        parent.Munmap(address, Page);
        Assert.Equal(NotMapped, Word(machine, pfn));
        machine.CheckInvariants();
    }

    [Fact]
    public void UnderTheTriStateTheOnlyUnmappingOfAPageCacheUnmapsItExactly()
    {
        using var machine = NewMachine(MapcountScheme.TriState);
        var file = machine.CreateFile("f", (long)Page);
        using var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        Assert.Equal(0UL, machine.Cpus[0].Read(process, address));
        var pfn = machine.Inspect().PfnAt(process, address);
        Assert.Equal(Once, Word(machine, pfn));

        process.Munmap(address, Page);
        Assert.Equal(NotMapped, Word(machine, pfn));
        Assert.Equal(1, machine.EvictCleanPages(file));
        machine.CheckInvariants();
    }

    [Fact]
    public void UnderTheTriStateEvictionRefusesAPageOnceSharedUntilAnRmapWalkFindsItUnmapped()
    {
        using var machine = NewMachine(MapcountScheme.TriState);
        var file = machine.CreateFile("f", (long)Page);
        using var a = machine.CreateProcess();
        using var b = machine.CreateProcess();
        var inA = a.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var inB = b.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(a, inA, 5);
        Assert.Equal(5UL, machine.Cpus[1].Read(b, inB));
        var pfn = machine.Inspect().PfnAt(a, inA);
        Assert.Equal(MaybeMore, Word(machine, pfn));

        a.Munmap(inA, Page);
        b.Munmap(inB, Page);
        Assert.Equal(MaybeMore, Word(machine, pfn));
        machine.CheckInvariants();

        // Eviction asks only the word: a false positive keeps the clean, unmapped page.
        machine.Writeback(file);
        Assert.Equal(5UL, file.ReadStored(0));

        // Writeback's folio_mkclean walked the rmap under the page lock and found no mapping: "not mapped" again.
        Assert.Equal(NotMapped, Word(machine, pfn));
        Assert.Equal(1, machine.EvictCleanPages(file));
        machine.CheckInvariants();
    }

    [Fact]
    public void WithNoMapcountTheEverMappedBitIsStickyAndEvictionKeepsAPageOnceMapped()
    {
        using var machine = NewMachine(MapcountScheme.None);
        var file = machine.CreateFile("f", 2 * (long)Page);
        using var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        Assert.Equal(0UL, machine.Cpus[0].Read(process, address));
        var pfn = machine.Inspect().PfnAt(process, address);
        Assert.Equal(Once, Word(machine, pfn));

        process.Munmap(address, Page);
        Assert.Equal(Once, Word(machine, pfn));
        Assert.Equal(0, machine.EvictCleanPages(file));
        machine.CheckInvariants();

        // Reclaim does not trust the bit: its walk finds the page unmapped and drops it, and the frame's bit goes with it.
        Assert.True(machine.Reclaim(8) >= 1);
        Assert.Equal(NotMapped, Word(machine, pfn));
        machine.CheckInvariants();
    }

    [Fact]
    public void WithNoMapcountIsItSharedIsNotAnonExclusiveAndComesBackWithTheReuse()
    {
        using var machine = NewMachine(MapcountScheme.None);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, Page);
        machine.Cpus[0].Write(parent, address, 1);
        var pfn = machine.Inspect().PfnAt(parent, address);
        Assert.False(machine.Memmap.MaybeMappedShared(pfn));

        var child = parent.Fork();
        Assert.True(machine.Memmap.MaybeMappedShared(pfn));
        machine.CheckInvariants();

        // The child's write copies; the parent's page is mapped once but still not exclusive: a false positive.
        machine.Cpus[1].Write(child, address, 2);
        Assert.NotEqual(pfn, machine.Inspect().PfnAt(child, address));
        Assert.True(machine.Memmap.MaybeMappedShared(pfn));

        // The parent's write reuses it by page_count, which makes it exclusive again.
        machine.Cpus[0].Write(parent, address, 3);
        Assert.Equal(pfn, machine.Inspect().PfnAt(parent, address));
        Assert.False(machine.Memmap.MaybeMappedShared(pfn));
        Assert.Equal((3UL, 2UL), (machine.Cpus[0].Read(parent, address), machine.Cpus[1].Read(child, address)));
        child.Dispose();
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.TriState)]
    [InlineData(MapcountScheme.None)]
    public void ALargeFolioKeepsOneWordInItsHeadAndItsPagesAreCopiedUnlessExclusive(MapcountScheme scheme)
    {
        const int order = 2;
        const ulong folio = Page << order;
        using var machine = NewMachine(scheme, order);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, folio);
        machine.Cpus[0].Write(parent, address, 1);
        var view = machine.Inspect().FolioAt(parent, address)!.Value;
        Assert.Equal((4, -1), (view.Pages, view.MapCount));
        Assert.Equal(Once, Word(machine, view.Head));
        Assert.False(view.MaybeMappedShared);
        machine.CheckInvariants();

        var child = parent.Fork();
        Assert.Equal(scheme == MapcountScheme.TriState ? MaybeMore : Once, Word(machine, view.Head));
        Assert.True(machine.Inspect().FolioAt(parent, address + Page)!.Value.MaybeMappedShared);
        machine.CheckInvariants();

        // A page of a large folio that is not AnonExclusive is copied (6.9-6.14's rule: no count to reuse it by).
        machine.Cpus[1].Write(child, address + Page, 2);
        Assert.NotEqual(view.Head + 1, machine.Inspect().PfnAt(child, address + Page));
        child.Dispose();
        machine.Cpus[0].Write(parent, address + Page, 3);
        Assert.NotEqual(view.Head + 1, machine.Inspect().PfnAt(parent, address + Page));
        Assert.Equal(3UL, machine.Cpus[0].Read(parent, address + Page));
        machine.CheckInvariants();

        // Unmapping the rest frees the folio, and with it the head's word.
        parent.Munmap(address, folio);
        Assert.Equal(NotMapped, Word(machine, view.Head));
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.TriState)]
    [InlineData(MapcountScheme.None)]
    public void ReclaimSwapsOutAndInUnderEachProposalWithTheWalkAnsweringStillMapped(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme, swapSlots: 64);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, 4 * Page);
        for (ulong i = 0; i < 4; i++)
        {
            machine.Cpus[0].Write(parent, address + (i * Page), 10 + i);
        }

        using var child = parent.Fork();
        Assert.True(machine.Reclaim(64) >= 4);
        Assert.Equal(-1, machine.Inspect().PfnAt(parent, address));
        machine.CheckInvariants();

        for (ulong i = 0; i < 4; i++)
        {
            Assert.Equal(10 + i, machine.Cpus[1].Read(child, address + (i * Page)));
            machine.Cpus[0].Write(parent, address + (i * Page), 20 + i);
            Assert.Equal(10 + i, machine.Cpus[1].Read(child, address + (i * Page)));
        }

        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.TriState)]
    [InlineData(MapcountScheme.None)]
    public void TheCountingWalkFindsAPinnedFoliosPagesInAVmaThatNoLongerCoversItsHead(MapcountScheme scheme)
    {
        const int pages = 16;
        using var machine = NewMachine(scheme, order: 4);
        using var process = machine.CreateProcess();
        var address = MapAnon(process, 2 * pages * Page);
        machine.Cpus[0].Write(process, address, 5);
        using var pin = machine.Cpus[0].PinUserPages(process, address + (3 * Page), 1, GupFlags.Write | GupFlags.LongTerm);

        // The pin refuses the split: the folio stays large, its head unmapped, its other pages mapped by a VMA that
        // now starts one page after the head.
        process.Munmap(address, Page);
        Assert.Equal(1L, machine.Stats.FolioSplitsRefused);
        var folio = machine.Inspect().FolioAt(process, address + Page)!.Value;
        Assert.Equal(pages, folio.Pages);

        machine.Memmap.LockPage(folio.Head);
        try
        {
            Assert.Equal(pages - 1, machine.Rmap.MapCount(folio.Head));
            Assert.True(machine.Rmap.Mapped(folio.Head));
        }
        finally
        {
            machine.Memmap.UnlockPage(folio.Head);
        }

        // Nothing lowered the word: the invariants still find it consistent with the entries.
        machine.CheckInvariants();
    }
}
