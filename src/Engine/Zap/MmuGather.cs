using System.Diagnostics;
using Engine.Cpus;
using Engine.Invariants;
using Engine.Memory;
using Engine.Swap;
using Engine.Mm;
using Engine.Sync;

namespace Engine.Zap;

/// <summary>
/// A batch of pages being unmapped (the kernel's <c>mmu_gather</c>, <c>include/asm-generic/tlb.h</c>), kept in the
/// order that makes freeing safe: 1) unhook the page (clear the PTE), 2) invalidate the TLB, 3) free the page.
/// <para>
/// <see cref="Begin"/> raises the mm's <c>tlb_flush_pending</c>; <see cref="Add"/> records a cleared page (and a
/// delay-rmap bit for the page-cache issue) and widens the range to flush; <see cref="FlushMmu"/> flushes the TLB and
/// then drops the batch's references; <see cref="Finish"/> flushes what is left and, when another zap of the same mm
/// ran concurrently (<c>mm_tlb_flush_nested</c>), flushes the whole range even if this one cleared nothing itself:
/// the other zap may have cleared entries this caller relies on being gone. With the <c>FlushBeforeFree</c> knob
/// off the pages are freed before the flush, which reopens use-after-free through stale TLB entries.
/// </para>
/// Instances are pooled (<see cref="GatherPool"/>) and reused: no allocation per zap.
/// </summary>
internal sealed class MmuGather(Memmap memmap, PageRelease release, Shootdown shootdown, SwapCache swap, bool flushBeforeFree, bool nestedTlbFlush)
{
    /// <summary>Pages per batch before a forced flush (the kernel's batch is a page of pointers, about 500).</summary>
    public const int Capacity = 256;

    private const long DelayRmapBit = 1L << 62;

    private readonly long[] _pages = new long[Capacity];
    private readonly long[] _freed = new long[Capacity];
    private int _count;
    private MmStruct? _mm;
    private int _cpu;
    private ulong _start;
    private ulong _end;

    /// <summary>
    /// <c>tlb_gather_mmu</c>. Enter with the mmap_lock held, or with <paramref name="mmapLocked"/> false for a zap
    /// under a file's <c>i_mmap_rwsem</c> instead (truncation's <c>unmap_mapping_range</c>; its caller checks that lock).
    /// </summary>
    public void Begin(MmStruct mm, int cpu, bool mmapLocked = true)
    {
        if (Checks.Enabled && mmapLocked)
        {
            Contract.Held(mm.MmapLock, "the mmap_lock");
        }

        Debug.Assert(_mm is null, "gather already in use");
        _mm = mm;
        _cpu = cpu;
        _count = 0;
        _start = ulong.MaxValue;
        _end = 0;
        mm.IncTlbFlushPending();
    }

    /// <summary>Widens the range to flush to cover the page at <paramref name="address"/>.</summary>
    public void TrackRange(ulong address)
    {
        _start = Math.Min(_start, address);
        _end = Math.Max(_end, address + PhysicalMemory.PageSize);
    }

    /// <summary>Queues a page whose entry was cleared; true when the batch is full and must be flushed (after the PTL is dropped).</summary>
    public bool Add(long pfn, bool delayRmap)
    {
        _pages[_count++] = delayRmap ? pfn | DelayRmapBit : pfn;
        return _count == Capacity;
    }

    /// <summary><c>tlb_flush_mmu</c>: flush the TLB, then free. Enter with no PTL held.</summary>
    public void FlushMmu()
    {
        var mm = _mm!;
        ProtocolEvents.Mark("tlb_flush_mmu", flushBeforeFree ? "flush the TLB, then free {2} page(s)" : "free {2} page(s), then flush the TLB (FlushBeforeFree off)", value: _count);
        if (flushBeforeFree)
        {
            FlushTlb(mm);
            FreePages();
        }
        else
        {
            FreePages();
            FlushTlb(mm);
        }
    }

    /// <summary><c>tlb_finish_mmu</c>. Enter with no PTL held; the gather can be reused afterwards.</summary>
    public void Finish(ulong rangeStart, ulong rangeEnd)
    {
        var mm = _mm!;
        if (nestedTlbFlush && mm.TlbFlushPending > 1)
        {
            // A concurrent zap of this mm may have cleared entries in our range whose flush has not happened yet.
            _start = Math.Min(_start, rangeStart);
            _end = Math.Max(_end, rangeEnd);
        }

        FlushMmu();
        mm.DecTlbFlushPending();
        _mm = null;
    }

    /// <summary>
    /// <c>tlb_flush_mmu_tlbonly</c>: flushes the TLB for what was cleared so far without freeing anything. Enter with
    /// the PTL of the entries just cleared held (the zap's forced flush) or no lock.
    /// </summary>
    public void FlushTlbOnly() => FlushTlb(_mm!);

    /// <summary>
    /// <c>tlb_flush_rmaps</c>: removes the rmap of every page queued with the delay bit, now that no TLB can still
    /// hold a translation to it. Enter after <see cref="FlushTlbOnly"/>, with the PTL still held.
    /// </summary>
    public void FlushRmaps()
    {
        Debug.Assert(_end <= _start, "delayed rmap removal before the TLB flush");
        for (var i = 0; i < _count; i++)
        {
            if ((_pages[i] & DelayRmapBit) != 0)
            {
                _pages[i] &= ~DelayRmapBit;
                ProtocolEvents.Mark("tlb_flush_rmaps", "after the flush: remove the delayed rmap of pfn 0x{0:x}", _pages[i]);
                memmap.RemoveMapTestLast(_pages[i]);
            }
        }
    }

    private void FlushTlb(MmStruct mm)
    {
        if (_end > _start)
        {
            ProtocolEvents.Mark("tlb_flush_mmu_tlbonly", "flush the TLB for [0x{1:x}, +{2} page(s))", address: _start, value: (long)((_end - _start) >> PhysicalMemory.PageShift));
            shootdown.FlushTlbRange(mm.Context, _start, _end);
            _start = ulong.MaxValue;
            _end = 0;
        }
    }

    /// <summary><c>free_swap_cache</c>: trylock the unmapped page and drop it from the swap cache if no swap entry still names its slot.</summary>
    private void FreeSwapCache(long pfn)
    {
        // Held besides any mapping: this batch's reference and the swap cache's.
        if (!memmap.MaybeMappedBesides(pfn, 2) && memmap.TryLockPage(pfn))
        {
            if (!memmap.MaybeMappedBesides(pfn, 2))
            {
                swap.FreeSwap(pfn, release, _cpu);
            }

            memmap.UnlockPage(pfn);
        }
    }

    private void FreePages()
    {
        var freed = 0;
        for (var i = 0; i < _count; i++)
        {
            var pfn = _pages[i] & ~DelayRmapBit;
            if ((_pages[i] & DelayRmapBit) != 0)
            {
                // Delayed rmap removal runs after the flush (the page-cache issue sets this bit).
                ProtocolEvents.Mark("tlb_flush_mmu_free", "remove the delayed rmap of pfn 0x{0:x}", pfn);
                memmap.RemoveMapTestLast(pfn);
            }

            // free_pages_and_swap_cache: a page that was in the swap cache only for this mapping leaves it now (the
            // flag is peeked: no scheduling point for the pages of a machine that never swapped).
            if ((memmap.PeekFlags(pfn) & PageFlags.SwapCache) != 0)
            {
                FreeSwapCache(pfn);
            }

            if (memmap.PutPageTestZero(pfn))
            {
                ProtocolEvents.Mark("tlb_flush_mmu_free", "put pfn 0x{0:x}: the last reference, free it", pfn);
                if (memmap.IsLarge(pfn))
                {
                    // The last page of a large folio: the whole block goes back (not through the CPU's cache).
                    release.FreeReleasedFolio(_cpu, memmap.Head(pfn));
                }
                else
                {
                    _freed[freed++] = pfn;
                }
            }
            else
            {
                ProtocolEvents.Mark("tlb_flush_mmu_free", "put pfn 0x{0:x}: still referenced", pfn);
            }
        }

        release.FreeReleasedPages(_cpu, _freed.AsSpan(0, freed));
        _count = 0;
    }
}
