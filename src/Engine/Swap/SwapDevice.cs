using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
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
/// The slots' metadata is allocated lazily, in chunks of <see cref="ChunkSlots"/> (<see cref="SwapMapChunk"/>): the
/// device itself holds one reference per chunk, null until <see cref="Allocate"/> first claims a slot of the chunk,
/// which creates the chunk and publishes it with a compare-and-swap (of two threads doing so at once, one chunk wins and
/// the other is dropped before any slot of it was claimed). A chunk is never freed and its reference never changes
/// again. A slot of a chunk never created is free, and every read of one says so without creating anything: count 0,
/// not cached, no storage. A slot's page is stored in a frame-sized array allocated the first time the slot is written
/// and reused ever after. So the device costs 8 bytes per 4,096 slots until a slot of the chunk is claimed, then
/// 12 bytes per slot of that chunk (a word and a page reference; the swap cache adds 8 more), and steady-state
/// swapping allocates nothing.
/// </para>
/// <para>
/// The chunk reference is read plainly (<see cref="ChunkOf"/>), not through <c>Atomic</c>: it is written once, and an
/// operation on a slot keeps the one scheduling point per access to the slot's word it had when the map was one array,
/// and the tester's schedules change only where: the compare-and-swap that publishes a chunk (one scheduling point,
/// once per chunk, and the cache's <see cref="SwapCache.TryAdd"/> adds another; enough to move the zoo's reclaim
/// entries' first bugs to other schedules), a full chunk that <see cref="Allocate"/> passes over without reading its
/// slots, and a slot of a chunk never created, which is read with no scheduling point at all (no protocol reads one:
/// a swap entry names a claimed slot).
/// </para>
/// </summary>
internal sealed class SwapDevice
{
    /// <summary>The has-cache flag in a slot's word (<c>SWAP_HAS_CACHE</c>); the count is the bits below.</summary>
    public const int HasCacheBit = 1 << 30;

    /// <summary>The most references one slot may count (the kernel's <c>SWAP_MAP_MAX</c> before continuation pages).</summary>
    public const int MaxCount = HasCacheBit - 1;

    /// <summary>log2 of <see cref="ChunkSlots"/>.</summary>
    public const int ChunkShift = 12;

    /// <summary>
    /// Slots per chunk of metadata, here and in the swap cache: 4,096. At <see cref="MachineOptions.MaxSwapSlots"/>
    /// (2^26) the top level is then 16,384 references (128 KiB each for the device and the cache, where chunks of 1,024
    /// would need 512 KiB), while the arrays of one chunk (16 KiB of words, 32 KiB of page references, 32 KiB of swap
    /// cache entries) stay below the 85,000-byte large-object threshold, so creating one on the swap-out path is an
    /// ordinary small-object allocation. It is also what one page of the kernel's byte-per-slot <c>swap_map</c> covers.
    /// </summary>
    public const int ChunkSlots = 1 << ChunkShift;

    private const int ChunkMask = ChunkSlots - 1;

    private readonly SwapMapChunk?[] _chunks;
    private readonly int _slots;
    private int _cursor;
    private int _populated;

    /// <summary>Creates a device of <paramref name="slots"/> slots (0: no swap), none of their metadata allocated yet.</summary>
    public SwapDevice(int slots)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(slots);
        _slots = slots;
        _chunks = new SwapMapChunk?[ChunksFor(slots)];
    }

    /// <summary>The number of slots.</summary>
    public int Slots => _slots;

    /// <summary>The number of chunks the slots are divided into (the last may be short).</summary>
    public int Chunks => _chunks.Length;

    /// <summary>The chunks whose metadata has been allocated, for tests.</summary>
    public int AllocatedChunks
    {
        get
        {
            var allocated = 0;
            for (var i = 0; i < _chunks.Length; i++)
            {
                allocated += IsChunkAllocated(i) ? 1 : 0;
            }

            return allocated;
        }
    }

    /// <summary>
    /// Slots in use (a count or the has-cache flag), as <c>nr_swap_pages</c> counts them the other way round: the sum of
    /// the allocated chunks' counts (exact at quiescence; for checks and tests).
    /// </summary>
    public int UsedSlots
    {
        get
        {
            var used = 0;
            for (var i = 0; i < _chunks.Length; i++)
            {
                if (Volatile.Read(ref _chunks[i]) is { } chunk)
                {
                    used += Atomic.Read(ref chunk.Used);
                }
            }

            return used;
        }
    }

    /// <summary>The number of chunks of <paramref name="slots"/> slots.</summary>
    public static int ChunksFor(int slots) => (slots >> ChunkShift) + ((slots & ChunkMask) != 0 ? 1 : 0);

    /// <summary>Whether chunk <paramref name="chunk"/>'s metadata has been allocated (a slot of it was ever claimed).</summary>
    public bool IsChunkAllocated(int chunk) => Volatile.Read(ref _chunks[chunk]) is not null;

    /// <summary>
    /// <c>folio_alloc_swap</c>: claims a free slot for a page about to enter the swap cache, with the has-cache flag set
    /// and no reference yet. Returns the slot, or −1 when every slot is in use (swap is full).
    /// </summary>
    public int Allocate()
    {
        var slots = _slots;
        if (slots == 0)
        {
            return -1;
        }

        // Chunks are created in order, and a new one only when every created chunk is full, as the kernel's cluster
        // allocator takes a free cluster only when its current ones are used up: so a device stores pages (4 KiB a
        // slot, once written) only for about as many slots as were ever in use at once, not for every slot its cursor
        // has passed.
        var cursor = (uint)Atomic.Add(ref _cursor, 1);
        while (true)
        {
            var populated = Volatile.Read(ref _populated);
            var span = (int)Math.Min(slots, (long)populated << ChunkShift);
            if (span > 0)
            {
                var slot = ClaimIn(span, (int)(cursor % (uint)span));
                if (slot >= 0)
                {
                    return slot;
                }
            }

            if (populated == _chunks.Length)
            {
                return -1;
            }

            // Every created chunk was full when scanned: create the next (or find it created by a racing claim) and
            // move the end of the scanned prefix past it. Not a scheduling point: the prefix only bounds the scan.
            _ = Volatile.Read(ref _chunks[populated]) ?? Populate(populated);
            Interlocked.CompareExchange(ref _populated, populated + 1, populated);
        }
    }

    /// <summary>Claims a free slot among the first <paramref name="span"/>, scanning from <paramref name="start"/> round; −1 if none.</summary>
    private int ClaimIn(int span, int start)
    {
        // Scan from a rotating cursor, as the kernel's cluster allocator spreads its allocations: a freed slot is not
        // handed out again at once, which keeps a stale swap entry from naming a new page in a race. The scan goes a
        // chunk at a time; a chunk whose count says it is full is passed over without reading its slots.
        var slot = start;
        for (var left = span; left > 0;)
        {
            var index = slot >> ChunkShift;
            var end = Math.Min((index + 1) << ChunkShift, span);
            var run = Math.Min(end - slot, left);
            var chunk = Volatile.Read(ref _chunks[index]) ?? Populate(index);

            // The count is a hint, read without a scheduling point: the compare-and-swap on the slot's word decides. A
            // count read just before a concurrent free passes over a slot freed meanwhile, as a scan of the words that
            // has gone past it does.
            if (Volatile.Read(ref chunk.Used) < chunk.Map.Length)
            {
                var map = chunk.Map;
                for (int i = slot & ChunkMask, stop = i + run; i < stop; i++)
                {
                    if (Atomic.Read(ref map[i]) == 0 && Atomic.CompareExchange(ref map[i], HasCacheBit, 0) == 0)
                    {
                        Atomic.Increment(ref chunk.Used);
                        return (index << ChunkShift) + i;
                    }
                }
            }

            left -= run;
            slot = end == span ? 0 : end;
        }

        return -1;
    }

    /// <summary>The references counted on <paramref name="slot"/> (<c>swp_swapcount</c>).</summary>
    public int Count(int slot) => ChunkOf(slot) is { } chunk ? Atomic.Read(ref chunk.Map[slot & ChunkMask]) & MaxCount : 0;

    /// <summary>Whether <paramref name="slot"/>'s page is in the swap cache.</summary>
    public bool HasCache(int slot) => ChunkOf(slot) is { } chunk && (Atomic.Read(ref chunk.Map[slot & ChunkMask]) & HasCacheBit) != 0;

    /// <summary>Whether <paramref name="slot"/> is free (no reference, not cached).</summary>
    public bool IsFree(int slot) => ChunkOf(slot) is not { } chunk || Atomic.Read(ref chunk.Map[slot & ChunkMask]) == 0;

    /// <summary>
    /// <c>swap_duplicate</c>: one more reference to <paramref name="slot"/> (a swap PTE written by reclaim's unmap, or
    /// copied by fork). False, changing nothing, when the slot is free: the entry is stale.
    /// </summary>
    public bool Duplicate(int slot)
    {
        if (ChunkOf(slot) is not { } chunk)
        {
            return false;
        }

        ref var word = ref chunk.Map[slot & ChunkMask];
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
        if (ChunkOf(slot) is not { } chunk)
        {
            return false;
        }

        ref var word = ref chunk.Map[slot & ChunkMask];
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
        var chunk = ChunkOf(slot);
        if (chunk is null)
        {
            throw NoReference(slot);
        }

        ref var word = ref chunk.Map[slot & ChunkMask];
        while (true)
        {
            var seen = Atomic.Read(ref word);
            if ((seen & MaxCount) == 0)
            {
                throw NoReference(slot);
            }

            var now = seen - 1;
            if (Atomic.CompareExchange(ref word, now, seen) == seen)
            {
                if (now == 0)
                {
                    Atomic.Decrement(ref chunk.Used);
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
        var chunk = ChunkOf(slot);
        if (chunk is null)
        {
            throw NotCached(slot);
        }

        ref var word = ref chunk.Map[slot & ChunkMask];
        while (true)
        {
            var seen = Atomic.Read(ref word);
            if ((seen & HasCacheBit) == 0)
            {
                throw NotCached(slot);
            }

            var now = seen & ~HasCacheBit;
            if (Atomic.CompareExchange(ref word, now, seen) == seen)
            {
                if (now == 0)
                {
                    Atomic.Decrement(ref chunk.Used);
                }

                return now;
            }
        }
    }

    /// <summary>
    /// The slot's stored page, for the bulk copies of swap I/O (one visible step each, as the page cache's): the
    /// caller holds the page that owns the slot locked and under writeback (swap-out) or locked and not yet uptodate
    /// (swap-in), so no two copies of one slot overlap. Allocated on the slot's first use, then reused. Throws for a
    /// slot never claimed (its chunk does not exist): the caller does not own it.
    /// </summary>
    public Span<ulong> Page(int slot)
    {
        var chunk = ChunkOf(slot) ?? throw NeverClaimed(slot);
        ref var stored = ref chunk.Pages[slot & ChunkMask];
        var page = Atomic.Read(ref stored);
        if (page is null)
        {
            var fresh = new ulong[PhysicalMemory.WordsPerFrame];
            page = Atomic.CompareExchange(ref stored, fresh, null) ?? fresh;
        }

        return page;
    }

    /// <summary>Whether <paramref name="slot"/> has ever been written (its page storage exists), for tests.</summary>
    public bool HasStorage(int slot) => ChunkOf(slot) is { } chunk && Atomic.Read(ref chunk.Pages[slot & ChunkMask]) is not null;

    /// <summary>
    /// The chunk holding <paramref name="slot"/>, or null when no slot of it was ever claimed (every slot of it is
    /// free). A plain acquire load, not a scheduling point: the reference goes from null to the chunk once, by
    /// <see cref="Populate"/>'s compare-and-swap (a full barrier, after the chunk's arrays were built), and never changes
    /// again, so a thread that reads null decides as if it had read the slot's word just then, when it was free. Throws
    /// for a slot out of the device's range.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private SwapMapChunk? ChunkOf(int slot)
    {
        if ((uint)slot >= (uint)_slots)
        {
            ThrowOutOfRange(slot);
        }

        return Volatile.Read(ref _chunks[slot >> ChunkShift]);
    }

    /// <summary>
    /// Creates chunk <paramref name="index"/> for a slot about to be claimed in it and publishes it, or returns the
    /// chunk another thread published first (the new one is dropped: nothing was claimed in it).
    /// </summary>
    private SwapMapChunk Populate(int index)
    {
        var fresh = new SwapMapChunk(Math.Min(ChunkSlots, _slots - (index << ChunkShift)));
        return Atomic.CompareExchange(ref _chunks[index], fresh, null) ?? fresh;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfRange(int slot) => throw new ArgumentOutOfRangeException(nameof(slot), slot, $"The swap device has {_slots} slot(s).");

    private static InvalidOperationException NoReference(int slot) => new($"swap_free of slot {slot}, which counts no reference.");

    private static InvalidOperationException NotCached(int slot) => new($"swapcache_clear of slot {slot}, which is not cached.");

    private static InvalidOperationException NeverClaimed(int slot) => new($"swap slot {slot} was never allocated: it has no page to copy.");
}
