using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;
using Engine.Swap;
using Engine.Systematic;

namespace Engine.Tests.Swap;

/// <summary>
/// The swap device's slot map and the swap cache, single-threaded, and swap entries through fork, zap and the
/// invariant checker (a swap entry is written by hand here: reclaim, which writes them, comes next).
/// </summary>
public sealed class SwapDeviceTests
{
    private const ulong Page = 4096;

    [Fact]
    public void SlotsAreClaimedOnceCountedAndFreedWhenNeitherCountNorCacheRemains()
    {
        var device = new SwapDevice(4);
        var slots = Enumerable.Range(0, 4).Select(_ => device.Allocate()).ToList();
        Assert.Equal([0, 1, 2, 3], slots.Order());
        Assert.Equal(-1, device.Allocate());
        Assert.Equal(4, device.UsedSlots);
        Assert.All(slots, s => Assert.True(device.HasCache(s) && device.Count(s) == 0));

        var slot = slots[0];
        Assert.True(device.Duplicate(slot));
        Assert.True(device.Duplicate(slot));
        Assert.Equal(2, device.Count(slot));
        Assert.Equal(2, device.ClearCache(slot));
        Assert.False(device.HasCache(slot));
        Assert.Equal((1, false), device.Free(slot));
        Assert.Equal(4, device.UsedSlots);
        Assert.Equal((0, false), device.Free(slot));
        Assert.True(device.IsFree(slot));
        Assert.Equal(3, device.UsedSlots);

        // A free slot takes no reference and cannot be freed again; a cached slot cannot be cached twice.
        Assert.False(device.Duplicate(slot));
        Assert.Throws<InvalidOperationException>(() => device.Free(slot));
        Assert.Throws<InvalidOperationException>(() => device.ClearCache(slot));
        Assert.False(device.SwapcachePrepare(slot));
        Assert.Equal(slot, device.Allocate());
    }

    [Fact]
    public void SwapcachePrepareIsTheEntrysLock()
    {
        var device = new SwapDevice(2);
        var slot = device.Allocate();
        device.Duplicate(slot);
        device.ClearCache(slot);

        Assert.True(device.SwapcachePrepare(slot));
        Assert.False(device.SwapcachePrepare(slot));
        Assert.Equal(1, device.ClearCache(slot));
        Assert.True(device.SwapcachePrepare(slot));
    }

    [Fact]
    public void ASlotsPageIsStoredOnlyOnceWrittenAndThenReused()
    {
        var device = new SwapDevice(1_000_000);
        var slot = device.Allocate();
        Assert.False(device.HasStorage(slot));
        device.Page(slot)[7] = 42;
        Assert.True(device.HasStorage(slot));
        Assert.Equal(42UL, device.Page(slot)[7]);
        Assert.False(device.HasStorage(slot + 1));

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            device.Page(slot)[i] = (ulong)i;
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    [Fact]
    public void TheSwapCacheHoldsAReferenceAndALookupTakesAnother()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = 8 });

        // A live process: with none, a page left in the swap cache is itself a violation (exit frees them all).
        var process = machine.CreateProcess();
        var (pfn, slot) = CachedPage(machine);
        Assert.Equal(1, machine.Memmap.PageCount(pfn));
        Assert.True(machine.Memmap.TestFlags(pfn, PageFlags.SwapCache));
        Assert.Equal(slot, machine.SwapCache.SlotOf(pfn));
        machine.CheckInvariants();

        Assert.Equal(pfn, machine.SwapCache.Lookup(slot, machine.Pages, 0));
        Assert.Equal(2, machine.Memmap.PageCount(pfn));
        machine.Pages.PutPage(0, pfn);
        Assert.Equal(-1, machine.SwapCache.Lookup(slot + 1, machine.Pages, 0));

        // A second page for the same slot is refused; the page cannot be deleted unlocked.
        machine.Memmap.LockPage(pfn);
        Assert.False(machine.SwapCache.TryAdd(slot, pfn));
        Assert.Equal(slot, machine.SwapCache.Delete(pfn));
        machine.Memmap.UnlockPage(pfn);
        Assert.Equal(0, machine.SwapDevice.ClearCache(slot));
        machine.Pages.PutPage(0, pfn);
        Assert.Equal(-1, machine.SwapCache.Peek(slot));
        Assert.True(machine.SwapDevice.IsFree(slot));
        machine.CheckInvariants();

        // An idle swap-cache page outliving every process is reported.
        CachedPage(machine);
        process.Dispose();
        Assert.Contains(ViolationKind.SwapCountMismatch, Assert.Throws<InvariantViolationException>(machine.CheckInvariants).Kinds);
    }

    /// <summary>
    /// A clean, unmapped swap-cache page must hold what its slot holds: the checker finds a store that reached it
    /// unnoticed (here made by hand), and passes again once the page is as the slot.
    /// </summary>
    [Fact]
    public void TheCheckerComparesACleanIdleSwapCachePageWithItsSlot()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 8 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 21);
        var child = parent.Fork();
        Assert.Equal(1, machine.Reclaim(1));

        // The child faults the page in (into the swap cache) and exits; the parent's entry keeps the slot and the page.
        Assert.Equal(21UL, machine.Cpus[1].Read(child, address));
        child.Dispose();
        var slot = (int)EntryOf(machine, parent, address).SwapOffset;
        var pfn = machine.SwapCache.Peek(slot);
        Assert.True(pfn >= 0, "the page left the swap cache");
        machine.CheckInvariants();

        var word = machine.Memory.Frame(pfn)[1];
        machine.Memory.Frame(pfn)[1] = 0xBAD;
        var found = Assert.Throws<InvariantViolationException>(machine.CheckInvariants);
        Assert.Contains(ViolationKind.CleanPageDiffers, found.Kinds);
        Assert.Contains($"slot {slot}", found.Message);

        machine.Memory.Frame(pfn)[1] = word;
        machine.CheckInvariants();
        Assert.Equal(21UL, machine.Cpus[0].Read(parent, address));
        parent.Dispose();
        machine.CheckInvariants();
    }

    [Fact]
    public void TheCheckerCountsSwapEntriesAgainstTheirSlots()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = 8 });
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var slot = SwappedOutEntry(machine, process, address, exclusive: true);
        machine.CheckInvariants();

        // A reference no entry holds; an exclusive entry of a shared slot; a cached slot without a page.
        machine.SwapDevice.Duplicate(slot);
        var counted = Assert.Throws<InvariantViolationException>(machine.CheckInvariants);
        Assert.Contains(ViolationKind.SwapCountMismatch, counted.Kinds);
        Assert.Contains(ViolationKind.SwapExclusiveShared, counted.Kinds);
        machine.SwapDevice.Free(slot);
        Assert.True(machine.SwapDevice.SwapcachePrepare(slot));
        Assert.Contains(ViolationKind.SwapCacheCorrupt, Assert.Throws<InvariantViolationException>(machine.CheckInvariants).Kinds);
        machine.SwapDevice.ClearCache(slot);
        machine.CheckInvariants();
    }

    [Fact]
    public void ForkDuplicatesASwapEntryAndClearsItsExclusiveBitAndExitFreesTheSlot()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = 8 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var slot = SwappedOutEntry(machine, parent, address, exclusive: true);

        var child = parent.Fork();
        Assert.Equal(2, machine.SwapDevice.Count(slot));
        Assert.False(EntryOf(machine, parent, address).IsSwapExclusive);
        Assert.True(EntryOf(machine, child, address).IsSwap);
        Assert.False(EntryOf(machine, child, address).IsSwapExclusive);
        machine.CheckInvariants();

        child.MadviseDontNeed(address, Page);
        Assert.Equal(1, machine.SwapDevice.Count(slot));
        machine.CheckInvariants();
        parent.Dispose();
        child.Dispose();
        Assert.True(machine.SwapDevice.IsFree(slot));
        Assert.Equal(0, machine.SwapDevice.UsedSlots);
        machine.CheckInvariants();
    }

    [Fact]
    public void ZappingTheLastEntryOfASlotFreesItsIdlePageFromTheSwapCache()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = 8 });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var (pfn, slot) = CachedPage(machine);
        InstallSwapEntry(machine, process, address, slot, exclusive: false);
        machine.SwapDevice.Duplicate(slot);
        machine.CheckInvariants();
        var free = machine.FreeFrames;

        process.Munmap(address, Page);
        Assert.True(machine.SwapDevice.IsFree(slot));
        Assert.Equal(-1, machine.SwapCache.Peek(slot));
        Assert.False(machine.Memmap.TestFlags(pfn, PageFlags.SwapCache));
        Assert.True(machine.FreeFrames > free, "the idle swap-cache page was not freed");
        machine.CheckInvariants();
    }

    [Fact]
    public void SwapSlotsAreValidatedAndDefaultToTheFrames()
    {
        using (var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 128 }))
        {
            Assert.Equal(128, machine.SwapDevice.Slots);
        }

        using (var none = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 128, SwapSlots = 0 }))
        {
            Assert.Equal(-1, none.SwapDevice.Allocate());
            none.CheckInvariants();
        }

        Assert.Throws<ArgumentOutOfRangeException>(() => new MachineOptions { SwapSlots = -1 }.Validate());
        Assert.Throws<ArgumentOutOfRangeException>(() => new MachineOptions { SwapSlots = MachineOptions.MaxSwapSlots + 1 }.Validate());
    }

    [Fact]
    public void AMachineWithTheMostSwapSlotsPaysOnlyForItsChunkReferences()
    {
        static long Built(int swapSlots)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = swapSlots });
            var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(swapSlots, machine.SwapDevice.Slots);
            Assert.Equal(0, machine.SwapDevice.AllocatedChunks);
            Assert.Equal(0, machine.SwapCache.AllocatedChunks);
            return allocated;
        }

        Built(0);
        var none = Built(0);
        var most = Built(MachineOptions.MaxSwapSlots);

        // The device's and the cache's 16,384 chunk references, 128 KiB each; the arrays of 20 bytes a slot allocated
        // at once made this 1.3 GB. The lower bound shows the measure sees those two arrays at all; its slack, and some
        // of the upper bound's, is for one-off allocations of a few hundred bytes that fall in one build or the other.
        var references = 2L * 8 * (MachineOptions.MaxSwapSlots / SwapDevice.ChunkSlots);
        Assert.InRange(most - none, references - (8 * 1024), references + (64 * 1024));
    }

    [Fact]
    public void SwappingOnAMachineWithTheMostSwapSlotsAllocatesOnlyTheChunksItTouches()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = MachineOptions.MaxSwapSlots });
        var device = machine.SwapDevice;

        // Fill chunk 0 but for four slots, so that the eight swap-outs cross into chunk 1: a new chunk is created only
        // when every created one is full.
        var kept = new List<int>();
        for (var i = 0; i < SwapDevice.ChunkSlots - 4; i++)
        {
            kept.Add(device.Allocate());
        }

        Assert.Equal(SwapDevice.ChunkSlots - 4, kept.Distinct().Count(s => s >= 0 && s < SwapDevice.ChunkSlots));
        Assert.Equal(1, device.AllocatedChunks);
        Assert.Equal(0, machine.SwapCache.AllocatedChunks);

        var process = machine.CreateProcess();
        var address = process.Mmap(8 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var i = 0UL; i < 8; i++)
        {
            machine.Cpus[0].Write(process, address + (i * Page), 100 + i);
        }

        Assert.Equal(8, machine.Reclaim(8));
        var slots = Enumerable.Range(0, 8).Select(i => (int)EntryOf(machine, process, address + ((ulong)i * Page)).SwapOffset).ToList();
        Assert.Equal(Enumerable.Range(0, SwapDevice.ChunkSlots).Except(kept), slots.Where(s => s < SwapDevice.ChunkSlots).Order());
        Assert.Equal(4, slots.Count(s => s >= SwapDevice.ChunkSlots && s < 2 * SwapDevice.ChunkSlots));
        foreach (var slot in kept)
        {
            Assert.Equal(0, device.ClearCache(slot));
        }

        Assert.Equal(8, device.UsedSlots);
        Assert.Equal(2, device.AllocatedChunks);
        Assert.Equal(2, machine.SwapCache.AllocatedChunks);
        machine.CheckInvariants();

        for (var i = 0UL; i < 8; i++)
        {
            Assert.Equal(100 + i, machine.Cpus[0].Read(process, address + (i * Page)));
        }

        Assert.Equal(8, machine.Stats.SwapIns);
        machine.CheckInvariants();
        process.Dispose();
        Assert.Equal(0, device.UsedSlots);
        machine.CheckInvariants();

        // Neither swapping nor the checker allocated any chunk beyond the two the slots lie in.
        Assert.Equal(2, device.AllocatedChunks);
        Assert.Equal(2, machine.SwapCache.AllocatedChunks);
    }

    [Fact]
    public void SlotsOfAChunkNeverClaimedReadAsFreeAndEmptyWithoutAllocating()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = MachineOptions.MaxSwapSlots });
        var device = machine.SwapDevice;
        var cache = machine.SwapCache;
        int[] slots = [0, 1, SwapDevice.ChunkSlots, (MachineOptions.MaxSwapSlots / 2) + 3, MachineOptions.MaxSwapSlots - 1];

        // Counted, not asserted, inside the measured loop: the assertions allocate. Once first to compile the readers.
        int Wrong()
        {
            var wrong = 0;
            foreach (var slot in slots)
            {
                wrong += device.Count(slot) == 0 && !device.HasCache(slot) && device.IsFree(slot) && !device.HasStorage(slot)
                    && !device.Duplicate(slot) && !device.SwapcachePrepare(slot)
                    && cache.Peek(slot) == -1 && cache.Lookup(slot, machine.Pages, 0) == -1 ? 0 : 1;
            }

            return wrong + device.UsedSlots;
        }

        Assert.Equal(0, Wrong());
        var before = GC.GetAllocatedBytesForCurrentThread();
        var wrong = Wrong();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, wrong);
        Assert.Equal(0, allocated);

        // A free slot counts no reference and is not cached, allocated or not; and it has no page to copy.
        Assert.Throws<InvalidOperationException>(() => device.Free(slots[^1]));
        Assert.Throws<InvalidOperationException>(() => device.ClearCache(slots[^1]));
        Assert.Throws<InvalidOperationException>(() => device.Page(slots[^1]));
        Assert.Throws<ArgumentOutOfRangeException>(() => device.Count(MachineOptions.MaxSwapSlots));
        Assert.Throws<ArgumentOutOfRangeException>(() => cache.Peek(-1));
        machine.CheckInvariants();
        Assert.Equal(0, device.AllocatedChunks);
        Assert.Equal(0, cache.AllocatedChunks);
    }

    [Fact]
    public void TheCheckerReportsASwapEntryNamingASlotOfAChunkNeverClaimedWithoutAllocatingIt()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = MachineOptions.MaxSwapSlots });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        InstallSwapEntry(machine, process, address, MachineOptions.MaxSwapSlots - 1, exclusive: true);

        var violation = Assert.Throws<InvariantViolationException>(machine.CheckInvariants);
        Assert.Contains(ViolationKind.SwapCountMismatch, violation.Kinds);
        Assert.Contains(ViolationKind.SwapExclusiveShared, violation.Kinds);
        Assert.Equal(0, machine.SwapDevice.AllocatedChunks);
        Assert.Equal(0, machine.SwapCache.AllocatedChunks);

        // Taken away by hand (a zap would swap_free a slot that counts nothing): the machine is consistent again.
        SetEntry(machine, process, address, Pte.None);
        machine.CheckInvariants();
    }

    /// <summary>
    /// Swapping a few pages out and in again and again on a large device stays in the first chunk: a new chunk (and
    /// the 4 KiB a slot of it costs once written) is taken only when every created chunk is full, so the stored pages
    /// are bounded by the slots in use at once, not by how far the cursor has travelled.
    /// </summary>
    [Fact]
    public void RepeatedSwappingStaysInTheChunksItNeedsAtOnce()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = 4 * SwapDevice.ChunkSlots });
        var process = machine.CreateProcess();
        var address = process.Mmap(16 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var round = 0UL; round < 600; round++)
        {
            for (var i = 0UL; i < 16; i++)
            {
                machine.Cpus[0].Write(process, address + (i * Page), round + i);
            }

            Assert.Equal(16, machine.Reclaim(16));
            Assert.Equal(round + 15, machine.Cpus[0].Read(process, address + (15 * Page)));
        }

        // 600 rounds of 16 swap-outs passed the cursor over more than 9,600 slots, more than two chunks' worth.
        Assert.True(machine.Stats.SwapOuts >= 9_600, $"{machine.Stats.SwapOuts} swap-outs");
        Assert.Equal(1, machine.SwapDevice.AllocatedChunks);
        Assert.Equal(1, machine.SwapCache.AllocatedChunks);
        machine.CheckInvariants();
    }

    [Fact]
    public void TwoThreadsFillingFreshChunksAtOnceGetDistinctSlotsAndConsistentCounts()
    {
        // Two full chunks and a short one; every round starts on a new device, so both threads' first claims race to
        // create chunk 0, and the scans cross into chunks 1 and 2 together.
        const int Slots = (2 * SwapDevice.ChunkSlots) + 100;
        var sharedRounds = 0;
        for (var round = 0; round < 100; round++)
        {
            var device = new SwapDevice(Slots);
            var claimed = new[] { new List<int>(), new List<int>() };
            using var gate = new Barrier(2);
            var threads = Enumerable.Range(0, 2).Select(t => ControlledThread.Start(() =>
            {
                gate.SignalAndWait();
                int slot;
                while ((slot = device.Allocate()) >= 0)
                {
                    claimed[t].Add(slot);
                }
            })).ToArray();
            foreach (var thread in threads)
            {
                thread.Join();
            }

            // With no slot freed meanwhile, −1 means full: every slot was claimed once, by one thread.
            var all = claimed[0].Concat(claimed[1]).ToList();
            Assert.Equal(Slots, all.Count);
            Assert.Equal(Slots, all.Distinct().Count());
            Assert.Equal(Slots, device.UsedSlots);
            Assert.Equal(3, device.AllocatedChunks);
            Assert.All(all, s => Assert.True(device.HasCache(s) && device.Count(s) == 0));
            Assert.Equal(-1, device.Allocate());

            // Both threads claimed slots in each of the three chunks: they ran at once as the chunks were created.
            if (Enumerable.Range(0, 3).All(c => claimed[0].Any(s => s >> SwapDevice.ChunkShift == c) && claimed[1].Any(s => s >> SwapDevice.ChunkShift == c)))
            {
                sharedRounds++;
            }

            // And free them at once: every chunk's count returns to zero.
            threads = Enumerable.Range(0, 2).Select(t => ControlledThread.Start(() =>
            {
                gate.SignalAndWait();
                foreach (var slot in claimed[t])
                {
                    device.ClearCache(slot);
                }
            })).ToArray();
            foreach (var thread in threads)
            {
                thread.Join();
            }

            Assert.Equal(0, device.UsedSlots);
            Assert.All(all, s => Assert.True(device.IsFree(s)));
            Assert.InRange(device.Allocate(), 0, Slots - 1);
        }

        Assert.True(sharedRounds > 0, "the two threads never claimed slots in every chunk together: the test proved nothing");
    }

    /// <summary>A new page put in the swap cache at a new slot, the caller's reference dropped: held by the cache alone.</summary>
    private static (long Pfn, int Slot) CachedPage(Engine.Machine machine)
    {
        var pfn = machine.Allocator.AllocatePage(0);
        machine.Memmap.SetFlags(pfn, PageFlags.Anon);
        var slot = machine.SwapDevice.Allocate();
        machine.Memmap.LockPage(pfn);
        Assert.True(machine.SwapCache.TryAdd(slot, pfn));
        machine.Memmap.UnlockPage(pfn);
        machine.Pages.PutPage(0, pfn);
        return (pfn, slot);
    }

    /// <summary>A slot counting one reference, not cached, and that reference as a swap entry at <paramref name="address"/>.</summary>
    private static int SwappedOutEntry(Engine.Machine machine, Process process, ulong address, bool exclusive)
    {
        var slot = machine.SwapDevice.Allocate();
        Assert.True(machine.SwapDevice.Duplicate(slot));
        Assert.Equal(1, machine.SwapDevice.ClearCache(slot));
        InstallSwapEntry(machine, process, address, slot, exclusive);
        return slot;
    }

    /// <summary>Writes a swap entry for <paramref name="slot"/> at <paramref name="address"/> under its PTL (the table is allocated as a fault would).</summary>
    private static void InstallSwapEntry(Engine.Machine machine, Process process, ulong address, int slot, bool exclusive)
        => SetEntry(machine, process, address, Pte.MakeSwap(0, slot, exclusive));

    /// <summary>Writes <paramref name="entry"/> at <paramref name="address"/> under its PTL (the table is allocated as a fault would).</summary>
    private static void SetEntry(Engine.Machine machine, Process process, ulong address, Pte entry)
    {
        var mm = process.Mm;
        var table = machine.Tables.PteAlloc(mm.Pgd, mm.PageTableLock, address, -1);
        var ptl = machine.Tables.Ptl(table);
        ptl.Enter();
        machine.Ptes.SetPte(table, PageTableSet.Index(address, 1), entry);
        ptl.Exit();
    }

    private static Pte EntryOf(Engine.Machine machine, Process process, ulong address)
    {
        var table = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
        return machine.Ptes.PtepGet(table, PageTableSet.Index(address, 1));
    }
}
