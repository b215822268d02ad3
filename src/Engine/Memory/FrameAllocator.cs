using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Memory;

/// <summary>
/// The page allocator: a global free list under a spinlock (the zone lock) and a lock-free per-CPU cache in front of
/// it (the kernel's pcp lists).
/// <para>
/// A CPU allocates from and frees to its own <see cref="PerCpuPages"/> with no lock and no shared write. When its
/// cache is empty it refills <see cref="Batch"/> frames from the global list in one critical section; when it holds
/// more than <see cref="High"/> it drains <see cref="Batch"/> of its coldest frames back. Callers that are not CPUs
/// (process-level calls: munmap, exit) free straight to the global list. A new frame is zeroed and handed out with
/// refcount 1; a freed one is checked (unmapped, count 0), its descriptor reset and, by default, its contents
/// poisoned, so a stale reader sees <see cref="PhysicalMemory.PoisonWord"/>, never the next owner's data.
/// </para>
/// <para>
/// When both the caller's cache and the global list are empty, the allocator drains every other CPU's cache into the
/// global list before it reports exhaustion (the kernel's <c>drain_all_pages</c> on the slow path), so a frame
/// cached by an idle CPU is never lost to the others. See <see cref="PerCpuPages"/> for how a drain excludes the
/// owner without costing its fast path a fence.
/// </para>
/// <para>
/// With a folio order above 0 (large anonymous folios, mTHP) the global list is a buddy system instead
/// (<see cref="BuddyFreeArea"/>): free blocks of orders 0 to <see cref="FolioOrder"/>, naturally aligned on the pfn,
/// merged with their buddies when freed. The CPU caches stay order-0 and as fast as before: a refill takes single
/// frames from the buddy, splitting blocks, and a drain gives them back, merging. <see cref="AllocateFolio"/> and
/// <see cref="FreeFolio"/> take and return whole blocks of the folio order under the zone lock, never through a cache.
/// With order 0 (the default) none of this exists, and every path, down to its scheduling points, is the plain
/// stack's.
/// </para>
/// </summary>
internal sealed class FrameAllocator
{
    /// <summary>Frames moved between a CPU's cache and the global list at once (the kernel's <c>pcp->batch</c>, 31 on small machines).</summary>
    public const int Batch = 31;

    /// <summary>A CPU's cache drains when it holds more than this (<c>pcp->high</c>; four batches).</summary>
    public const int High = 4 * Batch;

    /// <summary>Drain-and-retry rounds before an allocation reports exhaustion (the kernel's <c>MAX_RECLAIM_RETRIES</c>).</summary>
    public const int MaxDrainRetries = 16;

    /// <summary>Frames one round of direct reclaim asks for (the kernel's <c>SWAP_CLUSTER_MAX</c>).</summary>
    public const int ReclaimBatch = 32;

    /// <summary>
    /// The largest folio order: 9, a PMD's worth of 4 KiB frames (2 MiB, <c>HPAGE_PMD_ORDER</c> on x86-64), the top of
    /// the kernel's mTHP sizes.
    /// </summary>
    public const int MaxFolioOrder = 9;

    private readonly Memmap _memmap;
    private readonly PhysicalMemory _memory;
    private readonly bool _poison;
    private readonly bool _drainHandshake;
    private readonly Spinlock _zoneLock = new();
    private readonly Spinlock _drainLock = new();
    private readonly long[] _global;
    private readonly BuddyFreeArea? _buddy;
    private readonly PerCpuPages[] _perCpu;

    // Frames on the global list, or in the buddy's free blocks: written under the zone lock, read by anyone.
    private int _globalCount;
    private long _remoteDrains;
    private long _drainsWhileOwnerInside;

    /// <summary>
    /// Creates the allocator with every frame free except <paramref name="reserved"/>. <paramref name="drainHandshake"/>
    /// false is a test knob: a remote drain then works on a CPU's cache without excluding its owner.
    /// <paramref name="folioOrder"/> above 0 (at most <see cref="MaxFolioOrder"/>) keeps the free frames in a buddy
    /// system that can hand out folios of that order.
    /// </summary>
    public FrameAllocator(Memmap memmap, PhysicalMemory memory, int cpus, bool poisonFreedFrames, IReadOnlySet<long>? reserved = null, bool drainHandshake = true, int folioOrder = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cpus);
        ArgumentOutOfRangeException.ThrowIfNegative(folioOrder);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(folioOrder, MaxFolioOrder);
        _memmap = memmap;
        _memory = memory;
        _poison = poisonFreedFrames;
        _drainHandshake = drainHandshake;
        _perCpu = new PerCpuPages[cpus];
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            _perCpu[cpu] = new PerCpuPages();
        }

        FolioOrder = folioOrder;
        if (folioOrder > 0)
        {
            _global = [];
            _buddy = new BuddyFreeArea(memmap.BasePfn, memmap.Frames, folioOrder, reserved, _zoneLock);
            _globalCount = memmap.Frames - (reserved?.Count(memmap.Contains) ?? 0);
            return;
        }

        _global = new long[memmap.Frames];

        // Highest pfn at the bottom of the stack, so the lowest pfns are handed out first.
        for (var pfn = memmap.BasePfn + memmap.Frames - 1; pfn >= memmap.BasePfn; pfn--)
        {
            if (reserved is null || !reserved.Contains(pfn))
            {
                _global[_globalCount++] = pfn;
            }
        }
    }

    /// <summary>The order of the folios <see cref="AllocateFolio"/> hands out; 0: none (the allocator is order-0 only).</summary>
    public int FolioOrder { get; }

    /// <summary>Free blocks of <see cref="FolioOrder"/> in the buddy system (a snapshot; 0 when the order is 0).</summary>
    public long FreeFolios => _buddy?.FreeBlocks(FolioOrder) ?? 0;

    /// <summary>Frames not allocated: exact at quiescence, a snapshot otherwise.</summary>
    public long FreeFrames
    {
        get
        {
            long free = Atomic.Read(ref _globalCount);
            foreach (var cache in _perCpu)
            {
                free += cache.Count;
            }

            return free;
        }
    }

    /// <summary>CPU caches emptied by another CPU's <c>drain_all_pages</c> so far.</summary>
    public long RemoteDrains => Atomic.Read(ref _remoteDrains);

    /// <summary>Remote drains that found the owner inside its cache and had to wait for it (for tests).</summary>
    public long DrainsWhileOwnerInside => Atomic.Read(ref _drainsWhileOwnerInside);

    /// <summary>
    /// Direct reclaim (<see cref="IReclaim"/>), set once by the machine before it runs; null: an exhausted allocator
    /// reports exhaustion at once.
    /// </summary>
    public IReclaim? DirectReclaim { get; set; }

    /// <summary>
    /// Allocates a zeroed frame with refcount 1 for <paramref name="cpu"/> (−1: a caller that is not a CPU).
    /// When no frame is free, reclaims (<see cref="DirectReclaim"/>) and tries again while reclaim frees something.
    /// Returns −1 when no frame is left. Enter with no lock held — no spinlock, and no page lock, since reclaim takes
    /// them — (it may take the zone lock); returns with none.
    /// </summary>
    public long AllocatePage(int cpu)
    {
        var pfn = TryAllocatePage(cpu);
        if (pfn >= 0 || DirectReclaim is not { } reclaim)
        {
            return pfn;
        }

        // __alloc_pages_direct_reclaim: free a batch, then allocate; give up only when reclaim frees nothing.
        while (pfn < 0 && reclaim.Reclaim(ReclaimBatch, cpu) > 0)
        {
            pfn = TryAllocatePage(cpu);
        }

        return pfn;
    }

    private long TryAllocatePage(int cpu)
    {
        long pfn;
        if (cpu < 0)
        {
            pfn = TakeGlobal();
        }
        else
        {
            var cache = _perCpu[cpu];
            cache.EnterOwner();
            if (cache.Count == 0)
            {
                Refill(cache);
            }

            pfn = cache.Count > 0 ? cache.PopHot() : -1;
            cache.ExitOwner();
        }

        // The slow path: drain the other CPUs' caches and take from the global list. A CPU refilling at the same
        // moment may take the drained frames first, so try again while frames are free somewhere, a bounded number of
        // times (the kernel's MAX_RECLAIM_RETRIES), before reporting exhaustion.
        for (var attempt = 0; pfn < 0 && attempt < MaxDrainRetries && FreeFrames > 0; attempt++)
        {
            DrainAllPages(cpu);
            pfn = TakeGlobal();
        }

        if (pfn >= 0)
        {
            PrepareNewPage(pfn);
        }
        else
        {
            ProtocolEvents.Mark("alloc_pages", "no free frame");
        }

        return pfn;
    }

    /// <summary>
    /// Returns a frame whose last reference the caller just dropped. Enter with the page unmapped and its count 0,
    /// and no lock held (a drain takes the zone lock); returns with none.
    /// </summary>
    public void FreePage(int cpu, long pfn) => FreePages(cpu, new ReadOnlySpan<long>(in pfn));

    /// <summary>
    /// Frees a batch of frames whose last references the caller dropped (an <c>mmu_gather</c>'s pages): one zone-lock
    /// round trip for the batch instead of one per page when the caller is not a CPU, one entry into the CPU's cache
    /// when it is. Same contract as <see cref="FreePage"/>.
    /// </summary>
    public void FreePages(int cpu, ReadOnlySpan<long> pfns)
    {
        foreach (var pfn in pfns)
        {
            ResetFreedPage(pfn);
            ProtocolEvents.Mark("free_unref_page", "pfn 0x{0:x} to the free list", pfn);
        }

        if (_poison)
        {
            PhysicalMemory.FencePoison();
        }

        if (cpu < 0)
        {
            _zoneLock.Enter();
            if (_buddy is null)
            {
                foreach (var pfn in pfns)
                {
                    PushGlobal(pfn);
                }
            }
            else
            {
                foreach (var pfn in pfns)
                {
                    _buddy.Free(pfn, 0);
                }

                Atomic.Add(ref _globalCount, pfns.Length);
            }

            _zoneLock.Exit();
            return;
        }

        var cache = _perCpu[cpu];
        cache.EnterOwner();
        foreach (var pfn in pfns)
        {
            cache.PushHot(pfn);
            if (cache.Count > High)
            {
                Drain(cache, Batch);
            }
        }

        cache.ExitOwner();
    }

    /// <summary>
    /// Empties every CPU cache except <paramref name="cpu"/>'s into the global list (<c>drain_all_pages</c>), one CPU
    /// at a time and one drainer at a time. Enter with no lock held and outside the caller's own cache; returns with
    /// none.
    /// </summary>
    public void DrainAllPages(int cpu)
    {
        _drainLock.Enter();
        for (var other = 0; other < _perCpu.Length; other++)
        {
            var cache = _perCpu[other];
            if (other == cpu || cache.Count == 0)
            {
                continue;
            }

            if (cache.BeginRemoteDrain(_drainHandshake))
            {
                Atomic.Increment(ref _drainsWhileOwnerInside);
            }

            Drain(cache, int.MaxValue);
            cache.EndRemoteDrain();
            Atomic.Increment(ref _remoteDrains);
        }

        _drainLock.Exit();
    }

    /// <summary>
    /// Allocates a folio: a naturally aligned block of 2^<see cref="FolioOrder"/> zeroed frames (<c>alloc_pages</c> of
    /// that order, for <c>alloc_anon_folio</c>), the head with refcount 1 and every tail with refcount 0, as a compound
    /// page's. Takes a free block from the buddy system; when there is none but the CPU caches hold frames, drains them
    /// all once (<c>drain_all_pages</c>, which lets cached frames merge back into blocks) and tries again. No direct
    /// reclaim: the caller falls back to an order-0 page. Returns the head's pfn, or −1. Throws when the folio order
    /// is 0. Enter with no lock held (it may take the drain and zone locks) and outside the caller's cache; returns
    /// with none.
    /// </summary>
    public long AllocateFolio(int cpu)
    {
        if (_buddy is null)
        {
            ThrowNoFolios();
        }

        Debug.Assert(cpu < _perCpu.Length, "no such CPU");
        var head = TakeFolio(_buddy);

        // The caller's own cache is drained too (drain_all_pages(NULL) drains the local CPU as well): the caller is
        // outside it, and the frames that would complete a block are as likely to be there as anywhere.
        if (head < 0 && DrainCouldFormFolio())
        {
            DrainAllPages(-1);
            head = TakeFolio(_buddy);
        }

        if (head < 0)
        {
            ProtocolEvents.Mark("alloc_pages", "no free block of order {2}", value: FolioOrder);
            return -1;
        }

        // Nobody can reach the frames yet: check and clear them with plain stores, then publish the head's reference
        // with a release.
        var pages = 1 << FolioOrder;
        for (var pfn = head; pfn < head + pages; pfn++)
        {
            ref var page = ref _memmap.Page(pfn);
            Debug.Assert(Atomic.Read(ref page.RefCount) == 0 && Atomic.Read(ref page.MapCount) == -1 && Atomic.Read(ref page.Flags) == 0,
                "a frame in a free block is not clean");
            _memory.Zero(pfn);
        }

        Atomic.Write(ref _memmap.Page(head).RefCount, 1);
        return head;
    }

    /// <summary>
    /// Frees a folio from <see cref="AllocateFolio"/> whose head's last reference the caller dropped: checks and resets
    /// every frame (refcount 0 — the tails' never rose —, unmapped, flags cleared, poisoned) and returns the block to
    /// the buddy system, merging it with its buddy (<c>free_one_page</c>), never to a CPU cache. Enter with the head's
    /// count at 0, every frame unmapped, and no lock held; returns with none.
    /// </summary>
    public void FreeFolio(int cpu, long head)
    {
        if (_buddy is null)
        {
            ThrowNoFolios();
        }

        var pages = 1 << FolioOrder;
        Debug.Assert(cpu < _perCpu.Length, "no such CPU");
        Debug.Assert((head & (pages - 1)) == 0 && _memmap.Contains(head) && _memmap.Contains(head + pages - 1), "freeing a folio at a pfn that cannot head one");
        for (var pfn = head; pfn < head + pages; pfn++)
        {
            ResetFreedPage(pfn);
        }

        ProtocolEvents.Mark("free_one_page", "folio 0x{0:x} of order {2} to the buddy", head, value: FolioOrder);
        if (_poison)
        {
            PhysicalMemory.FencePoison();
        }

        _zoneLock.Enter();
        _buddy.Free(head, FolioOrder);
        Atomic.Add(ref _globalCount, pages);
        _zoneLock.Exit();
    }

    /// <summary>Every free pfn (at quiescence), for invariant checks.</summary>
    public IEnumerable<long> FreeList()
    {
        if (_buddy is not null)
        {
            foreach (var pfn in _buddy.Frames())
            {
                yield return pfn;
            }
        }
        else
        {
            for (var i = 0; i < Atomic.Read(ref _globalCount); i++)
            {
                yield return _global[i];
            }
        }

        foreach (var cache in _perCpu)
        {
            foreach (var pfn in cache.Snapshot())
            {
                yield return pfn;
            }
        }
    }

    /// <summary>Checks a frame being freed and resets its descriptor (and poisons it). Enter with its count at 0.</summary>
    private void ResetFreedPage(long pfn)
    {
        ref var page = ref _memmap.Page(pfn);
        Debug.Assert(Atomic.Read(ref page.RefCount) == 0, "freeing a page that is still referenced");
        _memmap.ResetFreedMapcount(pfn);
        Debug.Assert((_memmap.GetFlags(pfn) & PageFlags.Reserved) == 0, "freeing a reserved page");
        Atomic.Write(ref page.Flags, 0);
        Atomic.Write(ref page.Mapping, 0L);
        Atomic.Write(ref page.Index, 0L);
        _memmap.ClearAnonMapping(pfn);
        if (_poison)
        {
            _memory.Poison(pfn);
        }
    }

    /// <summary>Pops a frame from the global list (or the buddy), or −1. Enter with no lock held; returns with none.</summary>
    private long TakeGlobal()
    {
        _zoneLock.Enter();
        long pfn;
        if (_buddy is null)
        {
            pfn = _globalCount > 0 ? _global[Atomic.Decrement(ref _globalCount)] : -1;
        }
        else
        {
            pfn = _buddy.Take(0);
            if (pfn >= 0)
            {
                Atomic.Decrement(ref _globalCount);
            }
        }

        _zoneLock.Exit();
        return pfn;
    }

    /// <summary>Takes a free block of the folio order from the buddy, or −1. Enter with no lock held; returns with none.</summary>
    private long TakeFolio(BuddyFreeArea buddy)
    {
        _zoneLock.Enter();
        var head = buddy.Take(FolioOrder);
        if (head >= 0)
        {
            Atomic.Add(ref _globalCount, -(1 << FolioOrder));
        }

        _zoneLock.Exit();
        return head;
    }

    /// <summary>
    /// Whether draining the CPU caches could let a folio form: some CPU caches a frame, and enough frames are free
    /// in all. A snapshot; it saves a machine short of frames a drain (and its process-wide barriers) per attempt.
    /// </summary>
    private bool DrainCouldFormFolio()
    {
        long cached = 0;
        foreach (var cache in _perCpu)
        {
            cached += cache.Count;
        }

        return cached > 0 && cached + Atomic.Read(ref _globalCount) >= 1 << FolioOrder;
    }

    [DoesNotReturn]
    private static void ThrowNoFolios()
        => throw new InvalidOperationException("the allocator was built with folio order 0: it hands out no folios");

    /// <summary>Pushes a frame on the global list. Enter with the zone lock held.</summary>
    private void PushGlobal(long pfn)
    {
        if (Checks.Enabled)
        {
            Contract.Held(_zoneLock, "the zone lock");
        }

        Debug.Assert(_buddy is null, "pushing on the global stack of a buddy allocator");
        _global[_globalCount] = pfn;
        Atomic.Increment(ref _globalCount);
    }

    private void PrepareNewPage(long pfn)
    {
        ref var page = ref _memmap.Page(pfn);
        Debug.Assert(Atomic.Read(ref page.RefCount) == 0 && Atomic.Read(ref page.MapCount) == -1 && Atomic.Read(ref page.Flags) == 0,
            "a frame on the free list is not clean");

        // Nobody can reach the frame yet: clear it with plain stores, then publish the reference with a release.
        _memory.Zero(pfn);
        Atomic.Write(ref page.RefCount, 1);
    }

    /// <summary>
    /// Moves up to a batch from the global list into <paramref name="cache"/> (<c>rmqueue_bulk</c>). Enter inside the
    /// cache, without the zone lock.
    /// </summary>
    private void Refill(PerCpuPages cache)
    {
        _zoneLock.Enter();
        var take = Math.Min(Batch, _globalCount);
        if (_buddy is null)
        {
            for (var i = 0; i < take; i++)
            {
                cache.PushHot(_global[Atomic.Decrement(ref _globalCount)]);
            }
        }
        else
        {
            Atomic.Add(ref _globalCount, -take);
            for (var i = 0; i < take; i++)
            {
                var pfn = _buddy.Take(0);
                Debug.Assert(pfn >= 0, "the buddy holds fewer frames than it counts");
                cache.PushHot(pfn);
            }
        }

        _zoneLock.Exit();
    }

    /// <summary>
    /// Moves up to <paramref name="count"/> of the coldest cached frames to the global list (<c>free_pcppages_bulk</c>).
    /// Enter inside the cache (as its owner, or as a remote drainer), without the zone lock.
    /// </summary>
    private void Drain(PerCpuPages cache, int count)
    {
        _zoneLock.Enter();
        if (_buddy is null)
        {
            for (var i = 0; i < count && cache.Count > 0; i++)
            {
                PushGlobal(cache.PopCold());
            }
        }
        else
        {
            var drained = 0;
            for (; drained < count && cache.Count > 0; drained++)
            {
                _buddy.Free(cache.PopCold(), 0);
            }

            Atomic.Add(ref _globalCount, drained);
        }

        _zoneLock.Exit();
    }
}
