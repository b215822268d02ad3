using Engine.Memory;
using static Engine.Tests.Rmap.RmapProbe;

namespace Engine.Tests.Swap;

/// <summary>Reclaim to swap and swap-in, single-threaded: values survive, counts and invariants hold, pins are kept.</summary>
public sealed class ReclaimTests
{
    private const ulong Page = 4096;

    private static Engine.Machine Small(int frames = 128, int? swapSlots = null)
        => new(new MachineOptions { Cpus = 2, Frames = frames, SwapSlots = swapSlots });

    private static (Process Process, ulong Address) Written(Engine.Machine machine, int pages, ulong seed)
    {
        var process = machine.CreateProcess();
        var address = process.Mmap((ulong)pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var i = 0; i < pages; i++)
        {
            machine.Cpus[0].Write(process, address + ((ulong)i * Page), seed + (ulong)i);
            machine.Cpus[0].Write(process, address + ((ulong)i * Page) + 8, ~(seed + (ulong)i));
        }

        return (process, address);
    }

    [Fact]
    public void ReclaimedPagesGoToSwapAndComeBackWithTheirData()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 16, 1000);
        var free = machine.FreeFrames;

        Assert.Equal(16, machine.Reclaim(16));
        Assert.Equal(free + 16, machine.FreeFrames);
        Assert.Equal(16, machine.Stats.SwapOuts);
        Assert.Equal(16, machine.SwapDevice.UsedSlots);
        Assert.Equal(16, machine.Stats.SwapSlotsInUse);
        for (var i = 0; i < 16; i++)
        {
            var entry = EntryAt(machine, process, address + ((ulong)i * Page));
            Assert.True(entry.IsSwap && entry.IsSwapExclusive, $"page {i}: {entry}");
        }

        machine.CheckInvariants();

        for (var i = 0; i < 16; i++)
        {
            Assert.Equal(1000 + (ulong)i, machine.Cpus[1].Read(process, address + ((ulong)i * Page)));
            Assert.Equal(~(1000 + (ulong)i), machine.Cpus[1].Read(process, address + ((ulong)i * Page) + 8));
        }

        Assert.Equal(16, machine.Stats.SwapIns);
        machine.CheckInvariants();

        // Exclusive entries come back exclusive: a store needs no copy, and the slot is freed by the write fault.
        machine.Cpus[0].Write(process, address, 7);
        Assert.Equal(0, machine.Stats.CowCopies);
        Assert.Equal(7UL, machine.Cpus[1].Read(process, address));
        machine.CheckInvariants();
        process.Dispose();
        Assert.Equal(0, machine.SwapDevice.UsedSlots);
        machine.CheckInvariants();
    }

    [Fact]
    public void AStoreAfterSwapInWritesTheOnlyCopy()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 1, 5);
        Assert.Equal(1, machine.Reclaim(1));
        machine.Cpus[0].Write(process, address, 6);
        Assert.Equal(6UL, machine.Cpus[1].Read(process, address));
        Assert.Equal(1, machine.Stats.SwapIns);
        Assert.Equal(1, machine.Reclaim(1));
        Assert.Equal(2, machine.Stats.SwapOuts);
        Assert.Equal(6UL, machine.Cpus[1].Read(process, address));
        machine.CheckInvariants();
    }

    [Fact]
    public void AfterForkTheSwappedPageIsSharedUntilAWriteCopiesIt()
    {
        using var machine = Small();
        var (parent, address) = Written(machine, 2, 40);
        using var child = parent.Fork();
        Assert.Equal(2, machine.Reclaim(2));
        for (var i = 0UL; i < 2; i++)
        {
            Assert.False(EntryAt(machine, parent, address + (i * Page)).IsSwapExclusive);
            Assert.False(EntryAt(machine, child, address + (i * Page)).IsSwapExclusive);
        }

        machine.CheckInvariants();

        // The child swaps page 0 in (read-only: the parent's entry still names the slot), the parent finds it cached.
        Assert.Equal(40UL, machine.Cpus[1].Read(child, address));
        Assert.Equal(40UL, machine.Cpus[0].Read(parent, address));
        Assert.Equal(1, machine.Stats.SwapIns);
        Assert.Equal(1, machine.Stats.SwapCacheHits);
        Assert.Equal(PfnAt(machine, parent, address), PfnAt(machine, child, address));
        machine.CheckInvariants();

        // A write in the parent copies; the child keeps the old data.
        machine.Cpus[0].Write(parent, address, 99);
        Assert.Equal(40UL, machine.Cpus[1].Read(child, address));
        Assert.Equal(99UL, machine.Cpus[0].Read(parent, address));

        // Page 1: the parent writes first; the child still reads what was swapped out.
        machine.Cpus[0].Write(parent, address + Page, 77);
        Assert.Equal(41UL, machine.Cpus[1].Read(child, address + Page));
        machine.CheckInvariants();
        parent.Dispose();
        child.Dispose();
        Assert.Equal(0, machine.SwapDevice.UsedSlots);
        machine.CheckInvariants();
    }

    [Fact]
    public void APinnedPageIsNeverSwappedOut()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 2, 10);
        using (var pin = machine.Cpus[0].PinUserPages(process, address, 1, GupFlags.Write | GupFlags.LongTerm))
        {
            Assert.Equal(1, machine.Reclaim(2));
            Assert.True(machine.Stats.ReclaimKeptPinned > 0);
            Assert.True(EntryAt(machine, process, address).IsPresent);
            Assert.True(EntryAt(machine, process, address + Page).IsSwap);
            pin.Write(0, 1, 5);
            Assert.Equal(5UL, machine.Cpus[1].Read(process, address + 8));
            machine.CheckInvariants();
        }

        Assert.Equal(1, machine.Reclaim(1));
        Assert.Equal(5UL, machine.Cpus[1].Read(process, address + 8));
        machine.CheckInvariants();
    }

    [Fact]
    public void ARecentlyAccessedPageGetsASecondChance()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 1, 3);
        var hand = machine.Stats.ReclaimScans;

        // The write set the A bit: the first look clears it, the second takes the page.
        Assert.Equal(1, machine.Reclaim(1));
        Assert.True(machine.Stats.ReclaimScans - hand >= 2, $"{machine.Stats.ReclaimScans - hand} scans");
        Assert.Equal(3UL, machine.Cpus[0].Read(process, address));
    }

    /// <summary>
    /// The two lists as flags: a page found used on two looks in a row is made active, and then needs a look that finds
    /// it unused (deactivated) and another (reclaimed) before it goes; a page used once goes on the second look.
    /// </summary>
    [Fact]
    public void APageUsedOnTwoLooksInARowIsActivatedAndAgesTwiceMoreBeforeItGoes()
    {
        using var machine = Small();
        var (process, hot) = Written(machine, 1, 40);
        var (other, cold) = Written(machine, 1, 41);
        var pfn = EntryAt(machine, process, hot).Pfn;

        Assert.Equal(0, machine.Reclaimer.Sweep());
        Assert.True(machine.Memmap.TestFlags(pfn, Engine.Memory.PageFlags.Referenced));

        // CPU 1's TLB has no entry for the page: its load walks and sets the A bit again (CPU 0's would hit its TLB).
        Assert.Equal(40UL, machine.Cpus[1].Read(process, hot));
        Assert.Equal(1, machine.Reclaimer.Sweep());
        Assert.True(EntryAt(machine, other, cold).IsSwap, "the page used once goes on its second look");
        Assert.Equal(1, machine.Stats.LruActivations);
        Assert.True(machine.Memmap.TestFlags(pfn, Engine.Memory.PageFlags.Active));

        Assert.Equal(0, machine.Reclaimer.Sweep());
        Assert.Equal(1, machine.Stats.LruDeactivations);
        Assert.True(EntryAt(machine, process, hot).IsPresent);
        Assert.False(machine.Memmap.TestFlags(pfn, Engine.Memory.PageFlags.Active));

        Assert.Equal(1, machine.Reclaimer.Sweep());
        Assert.True(EntryAt(machine, process, hot).IsSwap);
        Assert.Equal(40UL, machine.Cpus[0].Read(process, hot));
        Assert.Equal(41UL, machine.Cpus[0].Read(other, cold));
        machine.CheckInvariants();
    }

    [Fact]
    public void WithoutSwapNothingAnonymousIsReclaimed()
    {
        using var machine = Small(swapSlots: 0);
        var (process, address) = Written(machine, 4, 1);
        Assert.Equal(0, machine.Reclaim(4));
        Assert.Equal(1UL, machine.Cpus[0].Read(process, address));
        Assert.Throws<ArgumentOutOfRangeException>(() => machine.Reclaim(-1));
        machine.CheckInvariants();
    }

    [Fact]
    public void SwapFullStopsReclaimAndSwapInFreesSlots()
    {
        using var machine = Small(swapSlots: 4);
        var (process, address) = Written(machine, 8, 100);
        Assert.Equal(4, machine.Reclaim(8));
        Assert.Equal(4, machine.SwapDevice.UsedSlots);
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(100 + (ulong)i, machine.Cpus[0].Read(process, address + ((ulong)i * Page)));
        }

        machine.CheckInvariants();
    }

    [Fact]
    public void AWorkingSetThreeTimesMemoryRunsOnDirectReclaim()
    {
        using var machine = Small(frames: 64, swapSlots: 256);
        var process = machine.CreateProcess();
        const int Pages = 160;
        var address = process.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var round = 0UL; round < 3; round++)
        {
            for (var i = 0; i < Pages; i++)
            {
                machine.Cpus[(int)(round % 2)].Write(process, address + ((ulong)i * Page), (round * 1000) + (ulong)i);
            }

            for (var i = 0; i < Pages; i++)
            {
                Assert.Equal((round * 1000) + (ulong)i, machine.Cpus[(int)((round + 1) % 2)].Read(process, address + ((ulong)i * Page)));
            }
        }

        Assert.True(machine.Stats.SwapOuts > Pages, $"{machine.Stats.SwapOuts} swap-outs");
        Assert.True(machine.Stats.SwapIns > Pages, $"{machine.Stats.SwapIns} swap-ins");
        machine.CheckInvariants();

        // Fork of a mostly swapped-out address space, then both sides write: each keeps its own data.
        using var child = process.Fork();
        machine.Cpus[0].Write(process, address, 7);
        machine.Cpus[1].Write(child, address, 8);
        Assert.Equal(7UL, machine.Cpus[1].Read(process, address));
        Assert.Equal(8UL, machine.Cpus[0].Read(child, address));
        Assert.Equal(2001UL, machine.Cpus[0].Read(child, address + Page));
        machine.CheckInvariants();
        process.Dispose();
        child.Dispose();
        Assert.Equal(0, machine.SwapDevice.UsedSlots);
        machine.CheckInvariants();
    }

    [Fact]
    public void WithoutSwapAFullMachineStillRunsOutOfFrames()
    {
        using var machine = Small(frames: 64, swapSlots: 0);
        var process = machine.CreateProcess();
        var address = process.Mmap(128 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Assert.Throws<OutOfFramesException>(() =>
        {
            for (var i = 0UL; i < 128; i++)
            {
                machine.Cpus[0].Write(process, address + (i * Page), i);
            }
        });
        machine.CheckInvariants();
    }

    [Fact]
    public void SwapOutAndSwapInAllocateNothingInSteadyState()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 8, 1);

        // Warm-up: each slot's storage is allocated at its first write (a page read back keeps its slot in the swap
        // cache, so later rounds write the same slots), and the JIT settles.
        for (var round = 0; round < 20; round++)
        {
            Assert.Equal(8, machine.Reclaim(8));
            for (var i = 0UL; i < 8; i++)
            {
                machine.Cpus[0].Read(process, address + (i * Page));
            }
        }

        // Counted, not asserted, inside the loop: the assertions allocate.
        var freed = 0;
        var wrong = 0;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var round = 0; round < 20; round++)
        {
            freed += machine.Reclaim(8);
            for (var i = 0UL; i < 8; i++)
            {
                wrong += machine.Cpus[0].Read(process, address + (i * Page)) == 1 + i ? 0 : 1;
            }
        }

        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(160, freed);
        Assert.Equal(0, wrong);
        Assert.Equal(0, allocated);
        Assert.True(machine.Stats.SwapIns >= 320);
    }

    [Fact]
    public void MunmapOfSwappedPagesFreesTheirSlots()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 4, 1);
        Assert.Equal(4, machine.Reclaim(4));
        process.Munmap(address, 4 * Page);
        Assert.Equal(0, machine.SwapDevice.UsedSlots);
        machine.CheckInvariants();
    }

    private static Engine.PageTables.Pte EntryAt(Engine.Machine machine, Process process, ulong address)
    {
        var table = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
        return machine.Ptes.PtepGet(table, Engine.PageTables.PageTableSet.Index(address, 1));
    }
}
