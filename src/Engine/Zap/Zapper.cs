using Engine.Cpus;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Swap;
using Engine.Sync;

namespace Engine.Zap;

/// <summary>Unmapping page ranges (<c>unmap_page_range</c>, <c>zap_pte_range</c>) into an <see cref="MmuGather"/>.</summary>
internal sealed class Zapper(PageTableSet tables, PteAccess ptes, Memmap memmap, FileTable files, SwapCache swap, PageRelease release, Shootdown shootdown, GatherPool gathers, bool flushDirtyUnderPtl, bool delayRmap, bool flushTlbBatchedPending)
{
    /// <summary>
    /// <c>zap_page_range</c> over [<paramref name="start"/>, <paramref name="end"/>). Enter with the mmap_lock held
    /// (read for madvise, write for munmap and exit) and no PTL; returns the same, with every page of the range
    /// unmapped, flushed from every TLB and released.
    /// </summary>
    public void ZapRange(MmStruct mm, ulong start, ulong end, int cpu)
    {
        if (Checks.Enabled)
        {
            Contract.Held(mm.MmapLock, "the mmap_lock");
        }

        Zap(mm, start, end, cpu, mmapLocked: true);
    }

    /// <summary>
    /// <c>zap_page_range_single</c> as <c>unmap_mapping_range</c> calls it for truncation: every entry of
    /// [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="vma"/>, those of page-cache pages and, in a
    /// private mapping, those of its anonymous copies and their swap entries (<c>even_cows</c>). Enter with the VMA's
    /// file's <c>i_mmap_rwsem</c> held for read and no mmap_lock or PTL: under it the VMA cannot be split and its
    /// tables cannot be freed (munmap and exit unlink it from the rmap first); returns the same, every page of the range
    /// unmapped, flushed from every TLB and released.
    /// </summary>
    public void ZapMappingRange(Vma vma, ulong start, ulong end, int cpu)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.File!.Rmap.Lock, "i_mmap_rwsem");
        }

        Zap(vma.Mm, start, end, cpu, mmapLocked: false);
    }

    private void Zap(MmStruct mm, ulong start, ulong end, int cpu, bool mmapLocked)
    {
        var tlb = gathers.Rent();
        tlb.Begin(mm, cpu, mmapLocked);
        try
        {
            for (var address = start; address < end;)
            {
                var tableEnd = Math.Min(end, (address & ~(PageTableSet.PteTableSpan - 1)) + PageTableSet.PteTableSpan);
                var table = tables.WalkToPteTable(mm.Pgd, address);
                if (table >= 0)
                {
                    ZapPteRange(mm, tlb, table, address, tableEnd, cpu);
                }

                address = tableEnd;
            }
        }
        finally
        {
            tlb.Finish(start, end);
            gathers.Return(tlb);
        }
    }

    /// <summary>
    /// <c>zap_pte_range</c>. Enter with no PTL; takes the table's PTL, clears entries atomically (capturing the
    /// dirty bit the hardware may be setting) and queues their pages; returns with no PTL.
    /// <para>
    /// Anonymous pages lose their rmap at once (no writeback reads it). A file page cleared from a dirty entry is
    /// marked dirty, and forces a TLB flush before the PTL is released (<c>FlushDirtyUnderPtl</c>); with
    /// <c>DelayRmap</c> its rmap stays until after that flush, so writeback's <c>folio_mkclean</c> still finds the
    /// page mapped and must take this PTL, i.e. wait for the flush. A full batch also forces the flush. After the PTL
    /// is released the batch's pages are freed (<c>tlb_flush_mmu</c>).
    /// </para>
    /// </summary>
    private void ZapPteRange(MmStruct mm, MmuGather tlb, long table, ulong start, ulong end, int cpu)
    {
        var ptl = tables.Ptl(table);
        var address = start;
        while (address < end)
        {
            var full = false;
            var forceFlush = false;
            ptl.Enter();
            if (flushTlbBatchedPending)
            {
                mm.FlushTlbBatchedPending(shootdown, cpu);
            }

            for (; address < end && !full; address += PhysicalMemory.PageSize)
            {
                var index = PageTableSet.Index(address, 1);
                if (ptes.PtepGet(table, index).IsNone)
                {
                    continue;
                }

                var old = ptes.PtepGetAndClear(table, index);
                if (old.IsSwap)
                {
                    // zap_nonpresent_ptes: a swapped-out page's entry holds a reference to its slot, not to a frame;
                    // no TLB caches a non-present entry, so nothing is flushed for it.
                    ProtocolEvents.Mark("zap_nonpresent_ptes", "clear swap pte at 0x{1:x}: slot {2}", address: address, value: old.SwapOffset);
                    swap.FreeSwapAndCache((int)old.SwapOffset, release, cpu);
                    continue;
                }

                tlb.TrackRange(address);
                if (!old.MapsPage || old.IsSpecial)
                {
                    ProtocolEvents.Mark("zap_pte_range", old.IsSpecial ? "clear pte at 0x{1:x}: was the zero page" : "clear pte at 0x{1:x}: mapped no page", address: address);
                    continue;
                }

                var pfn = old.Pfn;
                var delayRmapHere = false;
                var dirtyFilePage = old.IsDirty && !memmap.TestFlags(pfn, PageFlags.Anon);
                if (dirtyFilePage)
                {
                    // A shared file page written through this entry: the page carries the dirt from now on.
                    files.OfPage(pfn).Cache.MarkDirty(pfn);
                    forceFlush = true;
                    delayRmapHere = delayRmap;
                }

                ProtocolEvents.Mark(
                    "zap_pte_range",
                    delayRmapHere ? "clear pte at 0x{1:x}: was pfn 0x{0:x}, dirty file page (page marked dirty; rmap removal delayed until after the flush)"
                    : dirtyFilePage ? "clear pte at 0x{1:x}: was pfn 0x{0:x}, dirty file page (page marked dirty); remove rmap"
                    : old.IsDirty ? "clear pte at 0x{1:x}: was pfn 0x{0:x}, dirty; remove rmap"
                    : "clear pte at 0x{1:x}: was pfn 0x{0:x}, clean; remove rmap",
                    pfn,
                    address);
                if (!delayRmapHere)
                {
                    memmap.RemoveAnonRmapPte(pfn, mm.Id);
                }

                full = tlb.Add(pfn, delayRmapHere);
            }

            if ((forceFlush || full) && flushDirtyUnderPtl)
            {
                // Before the PTL goes: no stale translation may outlive the entry, and only then the rmap.
                ProtocolEvents.Mark("zap_pte_range", full ? "batch full: flush the TLB before dropping the PTL" : "dirty file page: flush the TLB before dropping the PTL");
                tlb.FlushTlbOnly();
                tlb.FlushRmaps();
            }

            ptl.Exit();
            if (forceFlush || full)
            {
                tlb.FlushMmu();
            }
        }
    }
}
