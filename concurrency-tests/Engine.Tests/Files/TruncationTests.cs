namespace Engine.Tests.Files;

/// <summary>
/// Single-threaded behaviour of <see cref="Engine.Machine.Truncate"/>: pages beyond the new end, mapped or not, clean
/// or dirty, are unmapped, removed and freed, their contents discarded; accesses beyond the end fault with
/// <see cref="SegmentationFaultReason.BeyondEndOfFile"/>; private copies beyond the end go too (Linux's
/// <c>even_cows</c>); an unaligned length zeroes the rest of the last page; growing reads zeros; bad input changes
/// nothing. Invariants are checked after every step; the tests that unmap run under every mapcount scheme.
/// </summary>
public sealed class TruncationTests
{
    private const ulong Page = 4096;

    /// <summary>Every mapcount scheme: truncation asks each its "is it mapped?" (<c>MaybeMapped</c>).</summary>
    public static TheoryData<MapcountScheme> Schemes => new(MapcountScheme.PerPage, MapcountScheme.MmId, MapcountScheme.TriState, MapcountScheme.None);

    private static Engine.Machine Small(int swapSlots = 0, MapcountScheme scheme = MapcountScheme.PerPage)
        => new(new MachineOptions { Cpus = 2, Frames = 256, SwapSlots = swapSlots, Mapcount = scheme });

    [Theory]
    [MemberData(nameof(Schemes))]
    public void ACleanUnmappedPageBeyondTheEndIsRemovedAndReadsZeroWhenTheFileGrowsBack(MapcountScheme scheme)
    {
        using var machine = Small(scheme: scheme);
        var initial = machine.FreeFrames;
        var file = machine.CreateFile("clean", 4 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address + (3 * Page), 33);
        machine.Writeback(file);
        process.Munmap(address, 4 * Page);
        Assert.Equal(33UL, file.ReadStored(3 * (long)Page));
        machine.CheckInvariants();

        Assert.Equal(1, machine.Truncate(file, 2 * (long)Page));
        Assert.Equal(2 * (long)Page, file.Size);
        Assert.Equal(1, machine.Stats.PagesTruncated);

        // Unmapped by munmap: a count says so; the "ever mapped" bit cannot, and truncation walks the rmap for nothing.
        Assert.Equal(scheme == MapcountScheme.None ? 1 : 0, machine.Stats.TruncateRmapWalks);
        Assert.Throws<ArgumentException>(() => file.ReadStored(3 * (long)Page));
        machine.CheckInvariants();

        Assert.Equal(0, machine.Truncate(file, 4 * (long)Page));
        Assert.Equal(0UL, file.ReadStored(3 * (long)Page));
        var again = process.Mmap(4 * Page, Prot.Read, MapFlags.Shared, file, 0);
        Assert.Equal(0UL, machine.Cpus[1].Read(process, again + (3 * Page)));
        machine.CheckInvariants();

        // Truncation to 0 drops every cached page, mapped once or not, under every scheme (eviction, which must not
        // walk, keeps a page the "ever mapped" bit cannot rule out).
        process.Dispose();
        machine.Truncate(file, 0);
        Assert.Equal(initial, machine.FreeFrames);
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void AMappedDirtyPageIsUnmappedAndDiscardedAndEveryLaterAccessIsBeyondTheEnd(MapcountScheme scheme)
    {
        using var machine = Small(scheme: scheme);
        var initial = machine.FreeFrames;
        var file = machine.CreateFile("dirty", 2 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 1);
        cpu.Write(process, address + Page, 2);
        var written = machine.Stats.PagesWrittenBack;

        Assert.Equal(1, machine.Truncate(file, (long)Page));
        machine.CheckInvariants();
        foreach (var write in new[] { false, true })
        {
            var fault = Assert.Throws<SegmentationFault>(() =>
            {
                if (write)
                {
                    cpu.Write(process, address + Page, 3);
                }
                else
                {
                    _ = cpu.Read(process, address + Page);
                }
            });
            Assert.Equal(SegmentationFaultReason.BeyondEndOfFile, fault.Reason);
            Assert.Equal(address + Page, fault.Address);
            Assert.Equal(write, fault.IsWrite);
        }

        // The dirty page beyond the end was dropped, not written: writeback writes page 0 alone.
        Assert.Equal(1UL, cpu.Read(process, address));
        machine.Writeback(file);
        Assert.Equal(written + 1, machine.Stats.PagesWrittenBack);
        Assert.Equal(1UL, file.ReadStored(0));
        machine.CheckInvariants();

        // Grown back, the page reads as zeros, in the mapping and on the store.
        machine.Truncate(file, 2 * (long)Page);
        Assert.Equal(0UL, cpu.Read(process, address + Page));
        Assert.Equal(0UL, file.ReadStored((long)Page));
        machine.CheckInvariants();

        // Truncation to 0 drops every cached page, mapped once or not, under every scheme (eviction, which must not
        // walk, keeps a page the "ever mapped" bit cannot rule out).
        process.Dispose();
        machine.Truncate(file, 0);
        Assert.Equal(initial, machine.FreeFrames);
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void ADirtyUnmappedPageIsDiscardedNotWritten(MapcountScheme scheme)
    {
        using var machine = Small(scheme: scheme);
        var file = machine.CreateFile("dirty-unmapped", 2 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address + Page, 7);
        process.MadviseDontNeed(address, 2 * Page);
        var cache = machine.Files.All[0].Cache;
        var pfn = cache.Peek(1);
        Assert.True(pfn >= 0 && cache.IsTaggedDirty(1) && machine.Memmap.TestFlags(pfn, Engine.Memory.PageFlags.Dirty));

        Assert.Equal(1, machine.Truncate(file, (long)Page));
        Assert.Equal(-1L, cache.Peek(1));
        Assert.False(cache.IsTaggedDirty(1));
        machine.Writeback(file);
        Assert.Equal(0, machine.Stats.PagesWrittenBack);
        machine.CheckInvariants();
        machine.Truncate(file, 2 * (long)Page);
        Assert.Equal(0UL, file.ReadStored((long)Page));
        Assert.Equal(0UL, machine.Cpus[0].Read(process, address + Page));
        machine.CheckInvariants();
    }

    [Fact]
    public void ACleanPageMappedByTwoProcessesIsUnmappedFromBoth()
    {
        using var machine = Small();
        var file = machine.CreateFile("two", 2 * (long)Page);
        var a = machine.CreateProcess();
        var b = machine.CreateProcess();
        var inA = a.Mmap(2 * Page, Prot.Read, MapFlags.Shared, file, 0);
        var inB = b.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, (long)Page);
        Assert.Equal(0UL, machine.Cpus[0].Read(a, inA + Page));
        Assert.Equal(0UL, machine.Cpus[1].Read(b, inB));
        var pfn = Rmap.RmapProbe.PfnAt(machine, a, inA + Page);
        Assert.Equal(2, machine.Memmap.MapCount(pfn));

        Assert.Equal(1, machine.Truncate(file, 100));
        Assert.Equal(-1, Rmap.RmapProbe.PfnAt(machine, a, inA + Page));
        Assert.Equal(-1, Rmap.RmapProbe.PfnAt(machine, b, inB));
        Assert.Equal(SegmentationFaultReason.BeyondEndOfFile, Assert.Throws<SegmentationFault>(() => machine.Cpus[1].Read(b, inB)).Reason);
        Assert.Equal(0UL, machine.Cpus[0].Read(a, inA));
        machine.CheckInvariants();
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void APrivateCopyBeyondTheEndIsDiscardedAndOneBeforeItIsKept(MapcountScheme scheme)
    {
        using var machine = Small(scheme: scheme);
        var file = machine.CreateFile("private", 2 * (long)Page);
        var writer = machine.CreateProcess();
        var shared = writer.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(writer, shared, 1);
        machine.Cpus[0].Write(writer, shared + Page, 2);
        var owner = machine.CreateProcess();
        var copy = owner.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        machine.Cpus[1].Write(owner, copy, 11);
        machine.Cpus[1].Write(owner, copy + Page, 12);
        Assert.Equal(2, machine.Stats.FilePrivateWriteFaults);

        // Linux's truncate_pagecache zaps with even_cows: the private copy of page 1 goes with the file's page.
        machine.Truncate(file, (long)Page);
        Assert.Equal(SegmentationFaultReason.BeyondEndOfFile, Assert.Throws<SegmentationFault>(() => machine.Cpus[1].Read(owner, copy + Page)).Reason);
        Assert.Equal(11UL, machine.Cpus[1].Read(owner, copy));
        Assert.Equal(1UL, machine.Cpus[0].Read(writer, shared));
        machine.CheckInvariants();
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void ASwappedOutPrivateCopyBeyondTheEndLosesItsSwapEntry(MapcountScheme scheme)
    {
        using var machine = Small(swapSlots: 16, scheme: scheme);
        var file = machine.CreateFile("swapped", 2 * (long)Page);
        var owner = machine.CreateProcess();
        var copy = owner.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        machine.Cpus[0].Write(owner, copy + Page, 12);
        Assert.Equal(1, owner.MadvisePageOut(copy + Page, Page));
        Assert.Equal(1, machine.Stats.SwapSlotsInUse);
        machine.CheckInvariants();

        machine.Truncate(file, (long)Page);
        Assert.Equal(0, machine.Stats.SwapSlotsInUse);
        Assert.Equal(SegmentationFaultReason.BeyondEndOfFile, Assert.Throws<SegmentationFault>(() => machine.Cpus[0].Read(owner, copy + Page)).Reason);
        machine.CheckInvariants();
    }

    [Fact]
    public void AnUnalignedLengthKeepsTheLastPageMappedAndZeroesItFromTheEndByteExactly()
    {
        using var machine = Small();
        var file = machine.CreateFile("tail", 2 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address + Page, 0x1122_3344_5566_7788);
        cpu.Write(process, address + Page + 8, 0x99);
        cpu.Write(process, address + Page + Page - 8, 0xAB);
        machine.Writeback(file);
        var pfn = Rmap.RmapProbe.PfnAt(machine, process, address + Page);

        Assert.Equal(0, machine.Truncate(file, (long)Page + 3));
        Assert.Equal((long)Page + 3, file.Size);
        Assert.Equal(pfn, Rmap.RmapProbe.PfnAt(machine, process, address + Page));
        Assert.Equal(0x66_7788UL, cpu.Read(process, address + Page));
        Assert.Equal(0UL, cpu.Read(process, address + Page + 8));
        Assert.Equal(0UL, cpu.Read(process, address + Page + Page - 8));
        Assert.Equal(0x66_7788UL, file.ReadStored((long)Page));
        machine.CheckInvariants();

        // A store beyond the end within the last page is allowed (the page is mapped); growing zeroes it again.
        cpu.Write(process, address + Page + 16, 5);
        machine.Writeback(file);
        machine.Truncate(file, 2 * (long)Page);
        Assert.Equal(0UL, cpu.Read(process, address + Page + 16));
        Assert.Equal(0UL, file.ReadStored((long)Page + 16));
        Assert.Equal(0x66_7788UL, file.ReadStored((long)Page));
        machine.CheckInvariants();
    }

    [Theory]
    [MemberData(nameof(Schemes))]
    public void TruncatingToZeroLeavesNothingCachedAndAPinnedPageLivesUntilItsUnpin(MapcountScheme scheme)
    {
        using var machine = Small(scheme: scheme);
        var initial = machine.FreeFrames;
        var file = machine.CreateFile("pinned", 2 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address, 1);
        machine.Cpus[0].Write(process, address + Page, 2);
        var pin = machine.Cpus[0].PinUserPages(process, address + Page, 1, GupFlags.Write);

        Assert.Equal(2, machine.Truncate(file, 0));
        Assert.Equal(0, file.Size);
        Assert.Equal(2, machine.Stats.PagesTruncated);
        Assert.Equal(-1L, machine.Files.All[0].Cache.Peek(1));

        // The device still holds the page: it stays allocated, outside the file, until the unpin frees it.
        Assert.Equal(2UL, pin.Read(0, 0));
        pin.Write(0, 0, 9);
        machine.CheckInvariants();
        pin.Dispose();
        machine.CheckInvariants();

        Assert.Equal(SegmentationFaultReason.BeyondEndOfFile, Assert.Throws<SegmentationFault>(() => machine.Cpus[0].Read(process, address)).Reason);
        process.Dispose();
        Assert.Equal(initial, machine.FreeFrames);
        machine.Truncate(file, 2 * (long)Page);
        Assert.Equal(0UL, file.ReadStored((long)Page));
    }

    [Fact]
    public void BadInputIsRefusedAndChangesNothing()
    {
        using var machine = Small();
        using var other = Small();
        var file = machine.CreateFile("bad", 2 * (long)Page);
        var foreign = other.CreateFile("foreign", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address + Page, 4);

        Assert.Throws<ArgumentException>(() => machine.Truncate(foreign, 0));
        Assert.Throws<ArgumentNullException>(() => machine.Truncate(null!, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => machine.Truncate(file, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => machine.Truncate(file, file.MaxSize + 1));
        Assert.Equal(2 * (long)Page, file.MaxSize);
        Assert.Equal(2 * (long)Page, file.Size);
        Assert.Equal((long)Page, foreign.Size);
        Assert.Equal(4UL, machine.Cpus[0].Read(process, address + Page));
        Assert.Equal(0, machine.Stats.PagesTruncated);
        machine.CheckInvariants();
        other.CheckInvariants();
    }

    [Fact]
    public void AMappingMayReachBeyondTheEndAndFaultsThereUntilTheFileGrows()
    {
        using var machine = Small();
        var file = machine.CreateFile("short", 4 * (long)Page);
        machine.Truncate(file, (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        Assert.Equal(0UL, machine.Cpus[0].Read(process, address));
        Assert.Equal(SegmentationFaultReason.BeyondEndOfFile, Assert.Throws<SegmentationFault>(() => machine.Cpus[0].Write(process, address + (2 * Page), 1)).Reason);
        Assert.Equal(0, machine.Stats.PageCacheFills - 1);
        machine.Truncate(file, 3 * (long)Page);
        machine.Cpus[0].Write(process, address + (2 * Page), 1);
        Assert.Equal(1UL, machine.Cpus[0].Read(process, address + (2 * Page)));
        machine.CheckInvariants();
    }
}
