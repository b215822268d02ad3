using Engine.Testing;

namespace Engine.Tests.Folios;

/// <summary>
/// Large anonymous folios (<see cref="MachineOptions.AnonFolioOrder"/>) on one thread: how they are allocated, mapped,
/// shared by fork, reused or copied under each <see cref="MapcountScheme"/>, pinned, split and freed, with the machine's
/// invariants checked after each step.
/// </summary>
public sealed class LargeFolioTests
{
    private const ulong Page = 4096;
    private const int Order = 2;
    private const int Pages = 1 << Order;
    private const ulong FolioSize = Page * Pages;

    private static Engine.Machine NewMachine(MapcountScheme scheme = MapcountScheme.PerPage, int order = Order, int? swapSlots = 0)
        => new(new MachineOptions { Cpus = 2, Frames = 256, AnonFolioOrder = order, Mapcount = scheme, SwapSlots = swapSlots });

    private static ulong MapAnon(Process process, ulong length) => process.Mmap(length, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);

    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void AWriteFaultInAnAlignedEmptyRangeMapsAWholeFolio(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme);
        using var process = machine.CreateProcess();
        var address = MapAnon(process, 2 * FolioSize);
        var free = machine.FreeFrames;
        var tables = machine.Stats.PageTablesAllocated;

        machine.Cpus[0].Write(process, address + Page, 7);

        var head = machine.Inspect().FolioAt(process, address)!.Value;
        Assert.Equal(0, head.Head % Pages);
        for (var i = 0; i < Pages; i++)
        {
            var folio = machine.Inspect().FolioAt(process, address + ((ulong)i * Page))!.Value;
            Assert.Equal((head.Head, i, Pages, Pages, Pages), (folio.Head, folio.Page, folio.Pages, folio.MapCount, folio.RefCount));
            Assert.True(folio.PageAnonExclusive);
            Assert.False(folio.MaybeMappedShared);
        }

        Assert.Equal(7UL, machine.Cpus[1].Read(process, address + Page));
        Assert.Equal(0UL, machine.Cpus[1].Read(process, address + (2 * Page)));
        Assert.Null(machine.Inspect().FolioAt(process, address + FolioSize));
        Assert.Equal((1L, 0L, (long)Pages), (machine.Stats.AnonFolioFaults, machine.Stats.AnonFolioFallbacks, machine.Stats.PagesAllocated));
        Assert.Equal(free - Pages - (machine.Stats.PageTablesAllocated - tables), machine.FreeFrames);
        machine.CheckInvariants();
    }

    [Fact]
    public void ARangeThatIsNotEmptyOrNotInOneVmaGetsOnePage()
    {
        using var machine = NewMachine();
        using var process = machine.CreateProcess();
        var small = MapAnon(process, 2 * Page);
        var big = MapAnon(process, FolioSize);

        // Too small for a folio; and a range whose zero-page read entry is already set.
        machine.Cpus[0].Write(process, small, 1);
        Assert.Equal(0UL, machine.Cpus[0].Read(process, big));
        machine.Cpus[0].Write(process, big + Page, 2);

        Assert.Equal(1, machine.Inspect().FolioAt(process, small)!.Value.Pages);
        Assert.Equal(1, machine.Inspect().FolioAt(process, big + Page)!.Value.Pages);
        Assert.Equal((0L, 2L), (machine.Stats.AnonFolioFaults, machine.Stats.AnonFolioFallbacks));
        machine.CheckInvariants();
    }

    [Fact]
    public void FoliosOffLeaveEveryFaultOrderZero()
    {
        using var machine = NewMachine(order: 0);
        using var process = machine.CreateProcess();
        var address = MapAnon(process, FolioSize);
        machine.Cpus[0].Write(process, address, 1);

        Assert.Equal(1, machine.Inspect().FolioAt(process, address)!.Value.Pages);
        Assert.Null(machine.Inspect().FolioAt(process, address + Page));
        Assert.Equal((0L, 0L, 1L), (machine.Stats.AnonFolioFaults, machine.Stats.AnonFolioFallbacks, machine.Stats.PagesAllocated));
    }

    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void MunmapOfTheWholeFolioFreesEveryFrame(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme);
        using var process = machine.CreateProcess();

        // A second folio's worth of mapping keeps the page tables: only the folio's frames come back.
        var address = MapAnon(process, 2 * FolioSize);
        machine.Cpus[0].Write(process, address, 1);
        var free = machine.FreeFrames;

        process.Munmap(address, FolioSize);

        Assert.Equal(free + Pages, machine.FreeFrames);
        Assert.Equal(0, machine.Stats.FolioSplits);
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void AMunmapThroughAFolioSplitsItAndKeepsTheRestsData(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme);
        using var process = machine.CreateProcess();
        var address = MapAnon(process, FolioSize);
        for (var i = 0; i < Pages; i++)
        {
            machine.Cpus[0].Write(process, address + ((ulong)i * Page), (ulong)(10 + i));
        }

        var free = machine.FreeFrames;
        process.Munmap(address + Page, Page);

        Assert.Equal(1, machine.Stats.FolioSplits);
        Assert.Equal(free + 1, machine.FreeFrames);
        Assert.Equal(10UL, machine.Cpus[1].Read(process, address));
        for (var i = 2; i < Pages; i++)
        {
            var folio = machine.Inspect().FolioAt(process, address + ((ulong)i * Page))!.Value;
            Assert.Equal((1, 1, 1), (folio.Pages, folio.MapCount, folio.RefCount));
            Assert.Equal((ulong)(10 + i), machine.Cpus[1].Read(process, address + ((ulong)i * Page)));
        }

        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void APinnedFolioIsNotSplitAndStaysPartiallyMappedUntilTheLastUnmap(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme);
        using var process = machine.CreateProcess();
        var address = MapAnon(process, 2 * FolioSize);
        machine.Cpus[0].Write(process, address, 5);
        var free = machine.FreeFrames;
        var pin = machine.Cpus[0].PinUserPages(process, address + (3 * Page), 1, GupFlags.Write | GupFlags.LongTerm);
        var pinned = machine.Inspect().FolioAt(process, address)!.Value;
        Assert.Equal((1, Pages + 1), (pinned.PinCount, pinned.RefCount));

        process.Munmap(address, Page);

        Assert.Equal((0L, 1L), (machine.Stats.FolioSplits, machine.Stats.FolioSplitsRefused));
        var rest = machine.Inspect().FolioAt(process, address + Page)!.Value;
        Assert.Equal((Pages, Pages - 1, Pages), (rest.Pages, rest.MapCount, rest.RefCount));
        Assert.Equal(free, machine.FreeFrames);
        machine.CheckInvariants();

        pin.Write(0, 0, 99);
        Assert.Equal(99UL, machine.Cpus[1].Read(process, address + (3 * Page)));
        process.Munmap(address + Page, FolioSize - Page);
        Assert.Equal(free, machine.FreeFrames);
        machine.CheckInvariants();

        pin.Dispose();
        Assert.Equal(free + Pages, machine.FreeFrames);
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void ForkSharesTheFolioAndAWriteCopiesOnePageOutOfIt(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, FolioSize);
        machine.Cpus[0].Write(parent, address, 1);
        using var child = parent.Fork();

        var shared = machine.Inspect().FolioAt(parent, address)!.Value;
        Assert.Equal((2 * Pages, 2 * Pages, true, false), (shared.MapCount, shared.RefCount, shared.MaybeMappedShared, shared.PageAnonExclusive));
        machine.CheckInvariants();

        machine.Cpus[0].Write(parent, address, 2);

        Assert.Equal(1UL, machine.Cpus[1].Read(child, address));
        Assert.Equal(2UL, machine.Cpus[1].Read(parent, address));
        Assert.Equal(1, machine.Inspect().FolioAt(parent, address)!.Value.Pages);
        Assert.Equal(2 * Pages - 1, machine.Inspect().FolioAt(child, address)!.Value.MapCount);
        Assert.Equal((1L, 0L), (machine.Stats.CowCopies, machine.Stats.CowReuses));
        machine.CheckInvariants();
    }

    /// <summary>
    /// After the child is gone the folio is the parent's alone, but its pages are no longer AnonExclusive. Up to 6.14
    /// (<see cref="MapcountScheme.PerPage"/>, 6.9–6.14) the write copies anyway: only AnonExclusive pages are reused; 6.15's MM-id
    /// scheme sees the folio exclusive to the mm and reuses the page in place.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage, false)]
    [InlineData(MapcountScheme.MmId, true)]
    public void AfterTheChildExitsOnlyTheMmIdSchemeReusesTheFolio(MapcountScheme scheme, bool reused)
    {
        using var machine = NewMachine(scheme);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, FolioSize);
        machine.Cpus[0].Write(parent, address, 1);
        parent.Fork().Dispose();
        var before = machine.Inspect().FolioAt(parent, address)!.Value;
        Assert.Equal((Pages, Pages, false, false), (before.MapCount, before.RefCount, before.MaybeMappedShared, before.PageAnonExclusive));

        machine.Cpus[0].Write(parent, address + Page, 2);

        var after = machine.Inspect().FolioAt(parent, address + Page)!.Value;
        Assert.Equal(reused ? Pages : 1, after.Pages);
        Assert.True(after.PageAnonExclusive);
        Assert.Equal(reused ? (1L, 1L, 0L) : (0L, 0L, 1L), (machine.Stats.CowReuses, machine.Stats.LargeFolioReuses, machine.Stats.CowCopies));
        Assert.Equal(2UL, machine.Cpus[1].Read(parent, address + Page));
        machine.CheckInvariants();
    }

    /// <summary>
    /// The false negative of <c>folio_likely_mapped_shared</c> that motivated the MM-id scheme (seed 003): parent and
    /// child each keep half of a forked folio, through different pages. Four mappings of four pages, and the first
    /// page mapped once: the per-page scheme says "not shared"; the MM-id scheme knows two mms map it.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage, false)]
    [InlineData(MapcountScheme.MmId, true)]
    public void AFolioTwoMmsMapThroughDifferentPagesIsSharedOnlyToTheMmIdScheme(MapcountScheme scheme, bool answer)
    {
        using var machine = NewMachine(scheme);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, FolioSize);
        machine.Cpus[0].Write(parent, address, 1);
        using var child = parent.Fork();

        parent.Munmap(address, FolioSize / 2);
        child.Munmap(address + (FolioSize / 2), FolioSize / 2);

        var folio = machine.Inspect().FolioAt(child, address)!.Value;
        Assert.Equal((Pages, Pages), (folio.Pages, folio.MapCount));
        Assert.Equal(answer, folio.MaybeMappedShared);
        Assert.Equal(2, machine.Stats.FolioSplitsRefused);
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void ForkCopiesAPinnedExclusivePageOfAFolioAndSharesTheRest(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme);
        using var parent = machine.CreateProcess();
        var address = MapAnon(parent, FolioSize);
        machine.Cpus[0].Write(parent, address, 1);
        using var pin = machine.Cpus[0].PinUserPages(parent, address, 1, GupFlags.Write | GupFlags.LongTerm);

        using var child = parent.Fork();

        // The pin holds the folio, so every exclusive page of it may be pinned: each is copied for the child.
        Assert.Equal(Pages, machine.Stats.ForkPinnedCopies);
        pin.Write(0, 0, 42);
        Assert.Equal(42UL, machine.Cpus[1].Read(parent, address));
        Assert.Equal(1UL, machine.Cpus[1].Read(child, address));
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void PageOutSplitsTheFolioAndSwapsOutEveryPage(MapcountScheme scheme)
    {
        using var machine = NewMachine(scheme, swapSlots: 64);
        using var process = machine.CreateProcess();
        var address = MapAnon(process, FolioSize);
        for (var i = 0; i < Pages; i++)
        {
            machine.Cpus[0].Write(process, address + ((ulong)i * Page), (ulong)(20 + i));
        }

        Assert.Equal(Pages, process.MadvisePageOut(address, FolioSize));

        Assert.Equal((1L, (long)Pages), (machine.Stats.FolioSplits, machine.Stats.SwapOuts));
        machine.CheckInvariants();
        for (var i = 0; i < Pages; i++)
        {
            Assert.True(machine.Inspect().EntryAt(process, address + ((ulong)i * Page)).IsSwap);
            Assert.Equal((ulong)(20 + i), machine.Cpus[1].Read(process, address + ((ulong)i * Page)));
        }

        machine.CheckInvariants();
    }

    [Fact]
    public void AnMmIdMachineNeedsTheAnonExclusiveRuleAndFolioOrdersAreBounded()
    {
        Assert.Contains("never shipped", Assert.Throws<ArgumentException>(() => new Engine.Machine(new MachineOptions { CowReuse = CowReuse.PageCount, Mapcount = MapcountScheme.MmId })).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { AnonFolioOrder = 10 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { AnonFolioOrder = -1 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { Frames = 64, AnonFolioOrder = 5 }));
    }
}
