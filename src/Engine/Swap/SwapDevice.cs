using Engine.Memory;
using Engine.Sync;

namespace Engine.Swap;

/// <summary>
/// A swap device: its slots' <c>swap_map</c> and their stored pages (<c>mm/swapfile.c</c>). Each slot has a count of
/// references (swap PTEs; <see cref="Duplicate"/> adds one at fork, <see cref="Free"/> drops one at swap-in or zap) and
/// a has-cache flag (the slot's page is in the swap cache). A slot is free when both are zero. Every change is one
/// compare-and-swap on the slot's word, so the device needs no lock: <see cref="Allocate"/> claims a free slot with the
/// same compare-and-swap, and <see cref="SwapcachePrepare"/>, which sets the flag only if it is clear, doubles as a
/// per-entry lock as <c>swapcache_prepare</c> does.
/// <para>
/// A slot's page is stored in a frame-sized array allocated the first time the slot is written and reused ever after
/// (so a device of many slots costs only the slots used, and steady-state swapping allocates nothing).
/// </para>
/// </summary>
internal sealed class SwapDevice
{
    /// <summary>The has-cache flag in a slot's word (<c>SWAP_HAS_CACHE</c>); the count is the bits below.</summary>
    public const int HasCacheBit = 1 << 30;

    /// <summary>The most references one slot may count (the kernel's <c>SWAP_MAP_MAX</c> before continuation pages).</summary>
    public const int MaxCount = HasCacheBit - 1;

    private readonly int[] _map;
    private readonly ulong[]?[] _pages;
    private int _cursor;
    private int _used;

    /// <summary>Creates a device of <paramref name="slots"/> slots (0: no swap).</summary>
    public SwapDevice(int slots)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slots);
        _map = new int[slots];
        _pages = new ulong[]?[slots];
    }

    /// <summary>The number of slots.</summary>
    public int Slots => _map.Length;

    /// <summary>Slots in use (a count or the has-cache flag), as <c>nr_swap_pages</c> counts them the other way round.</summary>
    public int UsedSlots => Atomic.Read(ref _used);

    /// <summary>
    /// <c>folio_alloc_swap</c>: claims a free slot for a page about to enter the swap cache, with the has-cache flag set
    /// and no reference yet. Returns the slot, or −1 when every slot is in use (swap is full).
    /// </summary>
    public int Allocate()
    {
        var slots = _map.Length;
        if (slots == 0)
        {
            return -1;
        }

        // Scan from a rotating cursor, as the kernel's cluster allocator spreads its allocations: a freed slot is not
        // handed out again at once, which keeps a stale swap entry from naming a new page in a race.
        var start = (int)((uint)Atomic.Add(ref _cursor, 1) % (uint)slots);
        for (var i = 0; i < slots; i++)
        {
            var slot = start + i < slots ? start + i : start + i - slots;
            if (Atomic.Read(ref _map[slot]) == 0 && Atomic.CompareExchange(ref _map[slot], HasCacheBit, 0) == 0)
            {
                Atomic.Increment(ref _used);
                return slot;
            }
        }

        return -1;
    }

    /// <summary>The references counted on <paramref name="slot"/> (<c>swp_swapcount</c>).</summary>
    public int Count(int slot) => Atomic.Read(ref _map[slot]) & MaxCount;

    /// <summary>Whether <paramref name="slot"/>'s page is in the swap cache.</summary>
    public bool HasCache(int slot) => (Atomic.Read(ref _map[slot]) & HasCacheBit) != 0;

    /// <summary>Whether <paramref name="slot"/> is free (no reference, not cached).</summary>
    public bool IsFree(int slot) => Atomic.Read(ref _map[slot]) == 0;

    /// <summary>
    /// <c>swap_duplicate</c>: one more reference to <paramref name="slot"/> (a swap PTE written by reclaim's unmap, or
    /// copied by fork). False, changing nothing, when the slot is free: the entry is stale.
    /// </summary>
    public bool Duplicate(int slot)
    {
        ref var word = ref _map[slot];
        while (true)
        {
            var seen = Atomic.Read(ref word);
            if (seen == 0 || (seen & MaxCount) == MaxCount)
            {
                return false;
            }

            if (Atomic.CompareExchange(ref word, seen + 1, seen) == seen)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// <c>swapcache_prepare</c>: sets the has-cache flag of a slot that has references, before its page is read into
    /// the swap cache. False, changing nothing, when the flag is set already (another thread is adding the page: the
    /// caller looks the cache up again) or the slot has no reference (the entry is stale).
    /// </summary>
    public bool SwapcachePrepare(int slot)
    {
        ref var word = ref _map[slot];
        while (true)
        {
            var seen = Atomic.Read(ref word);
            if ((seen & HasCacheBit) != 0 || (seen & MaxCount) == 0)
            {
                return false;
            }

            if (Atomic.CompareExchange(ref word, seen | HasCacheBit, seen) == seen)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// <c>swap_free</c>: drops one reference to <paramref name="slot"/> (a swap PTE zapped, or replaced at swap-in).
    /// Returns what remains of the slot: its count and whether it is cached, so the caller can free an idle cached
    /// page (<c>free_swap_and_cache</c>). Throws when the slot has no reference: a bug of the caller.
    /// </summary>
    public (int Count, bool HasCache) Free(int slot)
    {
        ref var word = ref _map[slot];
        while (true)
        {
            var seen = Atomic.Read(ref word);
            if ((seen & MaxCount) == 0)
            {
                throw new InvalidOperationException($"swap_free of slot {slot}, which counts no reference.");
            }

            var now = seen - 1;
            if (Atomic.CompareExchange(ref word, now, seen) == seen)
            {
                if (now == 0)
                {
                    Atomic.Decrement(ref _used);
                }

                return (now & MaxCount, (now & HasCacheBit) != 0);
            }
        }
    }

    /// <summary>
    /// <c>put_swap_folio</c> / <c>swapcache_clear</c>: clears the has-cache flag of <paramref name="slot"/> (its page
    /// left the swap cache, or a <see cref="SwapcachePrepare"/> is undone). Returns the references that remain; the slot
    /// is free when none do. Throws when the flag is clear: a bug of the caller.
    /// </summary>
    public int ClearCache(int slot)
    {
        ref var word = ref _map[slot];
        while (true)
        {
            var seen = Atomic.Read(ref word);
            if ((seen & HasCacheBit) == 0)
            {
                throw new InvalidOperationException($"swapcache_clear of slot {slot}, which is not cached.");
            }

            var now = seen & ~HasCacheBit;
            if (Atomic.CompareExchange(ref word, now, seen) == seen)
            {
                if (now == 0)
                {
                    Atomic.Decrement(ref _used);
                }

                return now;
            }
        }
    }

    /// <summary>
    /// The slot's stored page, for the bulk copies of swap I/O (one visible step each, as the page cache's): the
    /// caller holds the page that owns the slot locked and under writeback (swap-out) or locked and not yet uptodate
    /// (swap-in), so no two copies of one slot overlap. Allocated on the slot's first use, then reused.
    /// </summary>
    public Span<ulong> Page(int slot)
    {
        var page = Atomic.Read(ref _pages[slot]);
        if (page is null)
        {
            var fresh = new ulong[PhysicalMemory.WordsPerFrame];
            page = Atomic.CompareExchange(ref _pages[slot], fresh, null) ?? fresh;
        }

        return page;
    }

    /// <summary>Whether <paramref name="slot"/> has ever been written (its page storage exists), for tests.</summary>
    public bool HasStorage(int slot) => Atomic.Read(ref _pages[slot]) is not null;
}
