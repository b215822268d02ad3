using System.Diagnostics;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Memory;

/// <summary>
/// The global free frames of an allocator that hands out large folios: a buddy system (the kernel's
/// <c>zone->free_area[]</c>) with one free list per order from 0 to <see cref="TopOrder"/>.
/// <para>
/// The invariant it keeps: every free frame lies in exactly one free block; a free block of order <c>o</c> is
/// naturally aligned on the absolute pfn (<c>pfn % 2^o == 0</c>), lies wholly inside the memmap, holds no reserved
/// frame, and is on list <c>o</c>; its first frame's entry in <c>_order</c> is <c>o</c> and every other frame's entry
/// is <see cref="NotFree"/>. Below the top order, two free buddies never coexist: freeing a block merges it with its
/// buddy while the buddy is a free block of the same order (<c>__free_one_page</c>), and splitting a block
/// (<c>expand</c>) frees only upper halves whose lower halves are being handed out.
/// </para>
/// <para>
/// The lists are circular and doubly linked through two arrays indexed by frame, with one sentinel per order after the
/// frames, so no operation allocates and adding or removing a block is a few plain stores. Every method is entered
/// with the allocator's zone lock held; nothing here is a scheduling point (the caller's lock and counter are).
/// </para>
/// </summary>
internal sealed class BuddyFreeArea
{
    /// <summary>The <c>_order</c> entry of a frame that does not start a free block.</summary>
    private const sbyte NotFree = -1;

    private readonly long _basePfn;
    private readonly int _frames;
    private readonly Spinlock _zoneLock;

    // Links of the free lists, by frame index (pfn − base); entries _frames + o are the sentinels of list o.
    private readonly int[] _next;
    private readonly int[] _prev;

    // The order of the free block a frame starts, or NotFree (the kernel keeps it in page->private with PageBuddy).
    private readonly sbyte[] _order;

    // Free blocks on each list.
    private readonly int[] _blocks;

    /// <summary>
    /// Builds the free area with every frame free except <paramref name="reserved"/>: ascending through the frames,
    /// each free frame starts the largest naturally aligned block (up to <paramref name="topOrder"/>) that fits in the
    /// memmap and holds no reserved frame, so each aligned top-order block with no reserved frame is one free block.
    /// Blocks are appended in pfn order, so the lowest are at the heads of the lists and handed out first.
    /// </summary>
    public BuddyFreeArea(long basePfn, int frames, int topOrder, IReadOnlySet<long>? reserved, Spinlock zoneLock)
    {
        Debug.Assert(topOrder is > 0 and < 31, "a buddy area needs a top order above 0");
        _basePfn = basePfn;
        _frames = frames;
        _zoneLock = zoneLock;
        TopOrder = topOrder;
        _next = new int[frames + topOrder + 1];
        _prev = new int[frames + topOrder + 1];
        _order = new sbyte[frames];
        _blocks = new int[topOrder + 1];
        Array.Fill(_order, NotFree);
        for (var order = 0; order <= topOrder; order++)
        {
            _next[Sentinel(order)] = _prev[Sentinel(order)] = Sentinel(order);
        }

        var index = 0;
        while (index < frames)
        {
            if (reserved is not null && reserved.Contains(basePfn + index))
            {
                index++;
                continue;
            }

            var order = topOrder;
            while (order > 0 && !FitsClean(index, 1 << order, reserved))
            {
                order--;
            }

            Link(index, order, atHead: false);
            index += 1 << order;
        }
    }

    /// <summary>The largest order kept (the folio order).</summary>
    public int TopOrder { get; }

    /// <summary>Free blocks of <paramref name="order"/> (a snapshot without a scheduling point; for tests and stats).</summary>
    public int FreeBlocks(int order) => Volatile.Read(ref _blocks[order]);

    /// <summary>
    /// Takes a free block of <paramref name="order"/> (<c>__rmqueue_smallest</c>): the head of the lowest non-empty
    /// list at or above it, split down (<c>expand</c>) with each upper half put back on the list of its order. Returns
    /// its first pfn, or −1 when no block that large is free. Enter with the zone lock held.
    /// </summary>
    public long Take(int order)
    {
        if (Checks.Enabled)
        {
            Contract.Held(_zoneLock, "the zone lock");
        }

        var from = order;
        while (from <= TopOrder && _next[Sentinel(from)] == Sentinel(from))
        {
            from++;
        }

        if (from > TopOrder)
        {
            return -1;
        }

        var index = _next[Sentinel(from)];
        Unlink(index, from);

        // Keep the lower half and free the upper one at each step: the next small allocation takes the frame right
        // above this one, so order-0 pfns go out low to high.
        while (from > order)
        {
            from--;
            Link(index + (1 << from), from, atHead: true);
        }

        return _basePfn + index;
    }

    /// <summary>
    /// Frees the block of <paramref name="order"/> at <paramref name="pfn"/> (<c>__free_one_page</c>): while its buddy
    /// (the block at <c>pfn ^ 2^order</c>) is a free block of the same order and the top order is not reached, takes
    /// the buddy off its list and goes on with the merged block; then puts the block at the head of its list. Enter
    /// with the zone lock held and the block's frames reset and off every list.
    /// </summary>
    public void Free(long pfn, int order)
    {
        if (Checks.Enabled)
        {
            Contract.Held(_zoneLock, "the zone lock");
        }

        Debug.Assert((pfn & ((1L << order) - 1)) == 0, "a free block is not naturally aligned");
        Debug.Assert(pfn >= _basePfn && pfn - _basePfn + (1L << order) <= _frames, "a free block outside the memmap");
        Debug.Assert(_order[pfn - _basePfn] == NotFree, "freeing a block that is already free");
        while (order < TopOrder)
        {
            var buddy = (pfn ^ (1L << order)) - _basePfn;
            if ((ulong)buddy >= (ulong)_frames || _order[buddy] != order)
            {
                break;
            }

            Unlink((int)buddy, order);
            pfn &= ~(1L << order);
            order++;
        }

        Link((int)(pfn - _basePfn), order, atHead: true);
    }

    /// <summary>Every free frame, each once, block by block (for invariant checks at quiescence).</summary>
    public IEnumerable<long> Frames()
    {
        for (var order = 0; order <= TopOrder; order++)
        {
            for (var index = _next[Sentinel(order)]; index != Sentinel(order); index = _next[index])
            {
                for (var i = 0; i < 1 << order; i++)
                {
                    yield return _basePfn + index + i;
                }
            }
        }
    }

    private int Sentinel(int order) => _frames + order;

    /// <summary>True when the block of <paramref name="size"/> frames at <paramref name="index"/> is aligned, inside the memmap and holds no reserved frame.</summary>
    private bool FitsClean(int index, int size, IReadOnlySet<long>? reserved)
    {
        var pfn = _basePfn + index;
        if ((pfn & (size - 1)) != 0 || index + size > _frames)
        {
            return false;
        }

        if (reserved is null)
        {
            return true;
        }

        // Look through whichever is smaller: the reserved set (usually the zero page alone) or the block.
        if (reserved.Count < size)
        {
            foreach (var held in reserved)
            {
                if (held >= pfn && held < pfn + size)
                {
                    return false;
                }
            }

            return true;
        }

        for (var i = 0; i < size; i++)
        {
            if (reserved.Contains(pfn + i))
            {
                return false;
            }
        }

        return true;
    }

    private void Link(int index, int order, bool atHead)
    {
        var sentinel = Sentinel(order);
        var prev = atHead ? sentinel : _prev[sentinel];
        var next = _next[prev];
        _next[index] = next;
        _prev[index] = prev;
        _prev[next] = index;
        _next[prev] = index;
        _order[index] = (sbyte)order;
        _blocks[order]++;
    }

    private void Unlink(int index, int order)
    {
        Debug.Assert(_order[index] == order, "unlinking a block from the wrong list");
        _next[_prev[index]] = _next[index];
        _prev[_next[index]] = _prev[index];
        _order[index] = NotFree;
        _blocks[order]--;
    }
}
