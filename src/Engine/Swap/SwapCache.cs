using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Engine.Invariants;
using Engine.Memory;
using Engine.Sync;

namespace Engine.Swap;

/// <summary>
/// The swap cache (<c>mm/swap_state.c</c>): the pages of swap slots, indexed by slot, each holding one reference
/// (the cache's). A page enters it locked (<see cref="TryAdd"/>, <c>add_to_swap_cache</c>) with its slot's has-cache
/// flag already set, and leaves it locked (<see cref="Delete"/>, <c>__delete_from_swap_cache</c>); the caller then
/// clears the flag (<see cref="SwapDevice.ClearCache"/>, <c>put_swap_folio</c>) and drops the cache's reference.
/// Lookups are lockless (<see cref="Lookup"/>, <c>swap_cache_get_folio</c>): read the slot, try to take a reference,
/// and re-check that the slot still holds that page, which a page freed and reused meanwhile would fail.
/// <para>
/// The entries are allocated lazily in chunks of <see cref="SwapDevice.ChunkSlots"/> slots, as the device's metadata
/// is: a chunk (8 bytes a slot, filled with −1) is created by the first <see cref="TryAdd"/> into one of its slots, before
/// the cache's lock is taken, and published with a compare-and-swap; until then every slot of it reads as empty
/// (<see cref="Peek"/> and <see cref="Lookup"/> −1) and nothing is allocated to say so. The chunk reference is read
/// plainly, as the device's is (<see cref="SwapDevice"/> says why).
/// </para>
/// </summary>
internal sealed class SwapCache
{
    private const int ChunkMask = SwapDevice.ChunkSlots - 1;

    private readonly Memmap _memmap;
    private readonly SwapDevice _device;
    private readonly long[]?[] _chunks;

    /// <summary>Creates an empty swap cache for the slots of <paramref name="device"/>, none of its chunks allocated yet.</summary>
    public SwapCache(Memmap memmap, SwapDevice device)
    {
        _memmap = memmap;
        _device = device;
        _chunks = new long[]?[device.Chunks];
    }

    /// <summary>The device whose slots the cache holds.</summary>
    public SwapDevice Device => _device;

    /// <summary>The <c>i_pages</c> lock of the swap address space: serialises additions and deletions.</summary>
    public Spinlock Lock { get; } = new();

    /// <summary>The page cached for <paramref name="slot"/>, or −1, read without a reference (for checks and tests).</summary>
    public long Peek(int slot) => ChunkOf(slot) is { } chunk ? Atomic.Read(ref chunk[slot & ChunkMask]) : -1;

    /// <summary>Whether chunk <paramref name="chunk"/>'s entries have been allocated (a page was ever added to one of its slots).</summary>
    public bool IsChunkAllocated(int chunk) => Volatile.Read(ref _chunks[chunk]) is not null;

    /// <summary>The chunks whose entries have been allocated, for tests.</summary>
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
    /// <c>swap_cache_get_folio</c>: the page cached for <paramref name="slot"/> with a new reference the caller owns,
    /// or −1. Lockless: a page seen in the slot may be deleted and freed before the reference is taken; the reference
    /// is then refused (count 0: the lookup waits for the slot to change or the count to come back) or, if the frame
    /// was reused, the re-check finds another page (or none) in the slot, and the reference is dropped again.
    /// </summary>
    public long Lookup(int slot, PageRelease release, int cpu)
    {
        if (ChunkOf(slot) is not { } chunk)
        {
            return -1;
        }

        ref var entry = ref chunk[slot & ChunkMask];
        while (true)
        {
            var pfn = Atomic.Read(ref entry);
            if (pfn < 0)
            {
                return -1;
            }

            if (!release.TryGetPage(cpu, pfn))
            {
                // Frozen by reclaim's __remove_mapping (or being freed): wait until the slot holds something else or
                // the freeze is undone, rather than spin, so that an unfair schedule cannot starve the freezer.
                Wait.Until((memmap: _memmap, chunk, index: slot & ChunkMask, pfn), static s => Atomic.Read(ref s.chunk[s.index]) != s.pfn || s.memmap.PageCount(s.pfn) != 0);
                continue;
            }

            if (Atomic.Read(ref entry) == pfn)
            {
                return pfn;
            }

            release.PutPage(cpu, pfn);
        }
    }

    /// <summary>
    /// <c>add_to_swap_cache</c>: puts the locked page <paramref name="pfn"/> in the cache at <paramref name="slot"/>, whose
    /// has-cache flag the caller set (<see cref="SwapDevice.Allocate"/> or <see cref="SwapDevice.SwapcachePrepare"/>),
    /// and gives the cache a reference. False, changing nothing, when the slot already holds a page.
    /// </summary>
    public bool TryAdd(int slot, long pfn)
    {
        if (Checks.Enabled)
        {
            Contract.That((_memmap.PeekFlags(pfn) & PageFlags.Locked) != 0, "the page lock");
        }

        // The chunk is created before the lock is taken: no allocation under a spinlock.
        var chunk = ChunkOf(slot) ?? Populate(slot >> SwapDevice.ChunkShift);
        ref var entry = ref chunk[slot & ChunkMask];
        Lock.Enter();
        if (Atomic.Read(ref entry) >= 0)
        {
            Lock.Exit();
            return false;
        }

        _memmap.GetPage(pfn);
        Atomic.Write(ref _memmap.Page(pfn).SwapSlot, slot);
        _memmap.SetFlags(pfn, PageFlags.SwapCache);
        Atomic.Write(ref entry, pfn);
        Lock.Exit();
        ProtocolEvents.Mark("add_to_swap_cache", "pfn 0x{0:x} at swap slot {2}", pfn, value: slot);
        return true;
    }

    /// <summary>
    /// <c>__delete_from_swap_cache</c>: takes the locked page <paramref name="pfn"/> out of the cache. Returns its slot;
    /// the caller clears the slot's has-cache flag and drops the cache's reference.
    /// </summary>
    public int Delete(long pfn)
    {
        if (Checks.Enabled)
        {
            Contract.That((_memmap.PeekFlags(pfn) & PageFlags.Locked) != 0, "the page lock");
        }

        var slot = Atomic.Read(ref _memmap.Page(pfn).SwapSlot);
        var chunk = ChunkOf(slot);
        Lock.Enter();
        if (chunk is null || Atomic.Read(ref chunk[slot & ChunkMask]) != pfn)
        {
            Lock.Exit();
            throw new InvalidOperationException($"pfn 0x{pfn:x} is not in the swap cache at slot {slot}.");
        }

        Atomic.Write(ref chunk[slot & ChunkMask], -1L);
        _memmap.ClearFlags(pfn, PageFlags.SwapCache);
        Lock.Exit();
        ProtocolEvents.Mark("__delete_from_swap_cache", "pfn 0x{0:x} leaves swap slot {2}", pfn, value: slot);
        return slot;
    }

    /// <summary>
    /// <c>free_swap_and_cache</c>: drops one reference to <paramref name="slot"/> (a swap entry zapped). When it was the
    /// last and the slot's page sits idle in the swap cache — not mapped, not locked, not under writeback — the page is
    /// deleted from the cache and its cache reference dropped (<c>__try_to_reclaim_swap</c>, which only trylocks: a page
    /// someone holds locked is left for them). May be called with a PTL held.
    /// </summary>
    public void FreeSwapAndCache(int slot, PageRelease release, int cpu)
    {
        var (count, cached) = _device.Free(slot);
        ProtocolEvents.Mark("free_swap_and_cache", cached ? "swap slot {2}: {3} reference(s) left, page in the swap cache" : "swap slot {2}: {3} reference(s) left", value: slot, value2: count);
        if (count > 0 || !cached)
        {
            return;
        }

        var pfn = Lookup(slot, release, cpu);
        if (pfn < 0)
        {
            return;
        }

        if (_memmap.TryLockPage(pfn))
        {
            // Re-checked under the page lock: still this slot's page, and nothing maps it (held besides any mapping: the
            // lookup's reference and the cache's).
            if (SlotOf(pfn) == slot && !_memmap.MaybeMappedBesides(pfn, 2))
            {
                FreeSwap(pfn, release, cpu);
            }

            _memmap.UnlockPage(pfn);
        }

        release.PutPage(cpu, pfn);
    }

    /// <summary>
    /// <c>folio_free_swap</c>: takes the locked page <paramref name="pfn"/> out of the swap cache and frees its slot,
    /// when it is in the cache, not under writeback, and no swap entry names its slot any more (<c>folio_swapped</c>
    /// false); drops the cache's reference. True when it did. The caller holds a reference too.
    /// </summary>
    public bool FreeSwap(long pfn, PageRelease release, int cpu)
    {
        if (Checks.Enabled)
        {
            Contract.That((_memmap.PeekFlags(pfn) & PageFlags.Locked) != 0, "the page lock");
        }

        if ((_memmap.GetFlags(pfn) & (PageFlags.SwapCache | PageFlags.Writeback)) != PageFlags.SwapCache || _device.Count(SlotOf(pfn)) > 0)
        {
            return false;
        }

        var slot = Delete(pfn);
        _device.ClearCache(slot);
        release.PutPage(cpu, pfn);
        return true;
    }

    /// <summary>The slot a swap-cache page belongs to (<c>folio-&gt;swap</c>); meaningful while it is in the cache.</summary>
    public int SlotOf(long pfn) => Atomic.Read(ref _memmap.Page(pfn).SwapSlot);

    /// <summary>
    /// The entries of the chunk holding <paramref name="slot"/>, or null when no page was ever added to a slot of it
    /// (every slot of it is empty). A plain acquire load, not a scheduling point, of a reference written once
    /// (<see cref="Populate"/>). Throws for a slot out of the device's range.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long[]? ChunkOf(int slot)
    {
        if ((uint)slot >= (uint)_device.Slots)
        {
            ThrowOutOfRange(slot);
        }

        return Volatile.Read(ref _chunks[slot >> SwapDevice.ChunkShift]);
    }

    /// <summary>Creates chunk <paramref name="index"/>, every entry empty, and publishes it, or returns the one another thread published first.</summary>
    private long[] Populate(int index)
    {
        var fresh = new long[Math.Min(SwapDevice.ChunkSlots, _device.Slots - (index << SwapDevice.ChunkShift))];
        Array.Fill(fresh, -1L);
        return Atomic.CompareExchange(ref _chunks[index], fresh, null) ?? fresh;
    }

    [DoesNotReturn]
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowOutOfRange(int slot) => throw new ArgumentOutOfRangeException(nameof(slot), slot, $"The swap device has {_device.Slots} slot(s).");
}
