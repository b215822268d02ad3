using System.Diagnostics;
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
/// Not yet modelled: the kernel's slow path drains every CPU's cache (<c>drain_all_pages</c>, work run on each
/// owning CPU) before it reports the zone exhausted. Until the CPU layer provides that cross-CPU call, an allocation
/// fails when the global list and the caller's cache are empty even if another CPU caches free frames.
/// </para>
/// </summary>
internal sealed class FrameAllocator
{
    /// <summary>Frames moved between a CPU's cache and the global list at once (the kernel's <c>pcp->batch</c>, 31 on small machines).</summary>
    public const int Batch = 31;

    /// <summary>A CPU's cache drains when it holds more than this (<c>pcp->high</c>; four batches).</summary>
    public const int High = 4 * Batch;

    private readonly Memmap _memmap;
    private readonly PhysicalMemory _memory;
    private readonly bool _poison;
    private readonly Spinlock _zoneLock = new();
    private readonly long[] _global;
    private readonly PerCpuPages[] _perCpu;
    private int _globalCount;

    /// <summary>Creates the allocator with every frame free except <paramref name="reserved"/>.</summary>
    public FrameAllocator(Memmap memmap, PhysicalMemory memory, int cpus, bool poisonFreedFrames, IReadOnlySet<long>? reserved = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cpus);
        _memmap = memmap;
        _memory = memory;
        _poison = poisonFreedFrames;
        _perCpu = new PerCpuPages[cpus];
        for (var cpu = 0; cpu < cpus; cpu++)
        {
            _perCpu[cpu] = new PerCpuPages();
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

    /// <summary>
    /// Allocates a zeroed frame with refcount 1 for <paramref name="cpu"/> (−1: a caller that is not a CPU).
    /// Returns −1 when no frame is left. Enter with no lock held (it may take the zone lock); returns with none.
    /// </summary>
    public long AllocatePage(int cpu)
    {
        long pfn;
        if (cpu < 0)
        {
            _zoneLock.Enter();
            pfn = _globalCount > 0 ? _global[Atomic.Decrement(ref _globalCount)] : -1;
            _zoneLock.Exit();
        }
        else
        {
            var cache = _perCpu[cpu];
            if (cache.Count == 0)
            {
                Refill(cache);
            }

            pfn = cache.Count > 0 ? cache.PopHot() : -1;
        }

        if (pfn >= 0)
        {
            PrepareNewPage(pfn);
        }

        return pfn;
    }

    /// <summary>
    /// Returns a frame whose last reference the caller just dropped. Enter with the page unmapped and its count 0,
    /// and no lock held (a drain takes the zone lock); returns with none.
    /// </summary>
    public void FreePage(int cpu, long pfn)
    {
        ResetFreedPage(pfn);
        if (cpu < 0)
        {
            _zoneLock.Enter();
            PushGlobal(pfn);
            _zoneLock.Exit();
            return;
        }

        var cache = _perCpu[cpu];
        cache.PushHot(pfn);
        if (cache.Count > High)
        {
            Drain(cache, Batch);
        }
    }

    /// <summary>
    /// Frees a batch of frames whose last references the caller dropped (an <c>mmu_gather</c>'s pages): one zone-lock
    /// round trip for the batch instead of one per page when the caller is not a CPU. Same contract as
    /// <see cref="FreePage"/>.
    /// </summary>
    public void FreePages(int cpu, ReadOnlySpan<long> pfns)
    {
        if (cpu >= 0)
        {
            foreach (var pfn in pfns)
            {
                FreePage(cpu, pfn);
            }

            return;
        }

        foreach (var pfn in pfns)
        {
            ResetFreedPage(pfn);
        }

        _zoneLock.Enter();
        foreach (var pfn in pfns)
        {
            PushGlobal(pfn);
        }

        _zoneLock.Exit();
    }

    /// <summary>Every free pfn (at quiescence), for invariant checks.</summary>
    public IEnumerable<long> FreeList()
    {
        for (var i = 0; i < Atomic.Read(ref _globalCount); i++)
        {
            yield return _global[i];
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
        Debug.Assert(Atomic.Read(ref page.MapCount) == -1, "freeing a page that is still mapped");
        Debug.Assert((_memmap.GetFlags(pfn) & PageFlags.Reserved) == 0, "freeing a reserved page");
        Atomic.Write(ref page.Flags, 0);
        Atomic.Write(ref page.Mapping, 0L);
        Atomic.Write(ref page.Index, 0L);
        if (_poison)
        {
            _memory.Poison(pfn);
        }
    }

    /// <summary>Pushes a frame on the global list. Enter with the zone lock held.</summary>
    private void PushGlobal(long pfn)
    {
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

    /// <summary>Moves up to a batch from the global list into <paramref name="cache"/> (<c>rmqueue_bulk</c>).</summary>
    private void Refill(PerCpuPages cache)
    {
        _zoneLock.Enter();
        var take = Math.Min(Batch, _globalCount);
        for (var i = 0; i < take; i++)
        {
            cache.PushHot(_global[Atomic.Decrement(ref _globalCount)]);
        }

        _zoneLock.Exit();
    }

    /// <summary>Moves <paramref name="count"/> of the coldest cached frames to the global list (<c>free_pcppages_bulk</c>).</summary>
    private void Drain(PerCpuPages cache, int count)
    {
        _zoneLock.Enter();
        for (var i = 0; i < count && cache.Count > 0; i++)
        {
            PushGlobal(cache.PopCold());
        }

        _zoneLock.Exit();
    }
}
