using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Stats;
using Engine.Sync;

namespace Engine.Folios;

/// <summary>
/// Splitting a large anonymous folio into order-0 pages (<c>split_folio</c>), for the operations that must not leave
/// one half mapped (a munmap, <c>MADV_DONTNEED</c> or mprotect that cuts through a folio) and for reclaim, which swaps
/// out order-0 pages only. The kernel unmaps the folio to migration entries, freezes its count, splits and maps the
/// pages back; the model splits in place instead, which it can do only when every mapping of the folio is an entry of
/// one PTE table: under that table's PTL, with the folio locked and its count frozen at exactly those entries plus
/// the caller's reference, nothing can map, unmap or reference the folio while its pages are given their own counts.
/// A folio mapped by more than one table (another mm after fork) or held by anything else (a GUP reference or pin)
/// is not split and stays large, partially mapped if the caller goes on: the kernel's failed split, without the
/// deferred-split queue that would retry it (docs/folios.md).
/// </summary>
internal sealed class FolioSplitter(Memmap memmap, PageTableSet tables, PteAccess ptes, PageRelease release, StatCounters counters)
{
    /// <summary>
    /// Splits the large folio of <paramref name="pfn"/>, which the caller holds a reference to and has locked
    /// (<c>folio_lock</c>), if every mapping of it is an entry of <paramref name="mm"/> in the folio-sized, aligned window
    /// around <paramref name="address"/> (where it maps <paramref name="pfn"/>'s folio: folios are mapped at aligned
    /// addresses). True when it was split: the caller's reference and the lock are then on the old head page, and the
    /// pages nothing mapped are freed. Enter with the mmap_lock held and no PTL; returns the same.
    /// </summary>
    public bool TrySplitLocked(long pfn, MmStruct mm, ulong address, int cpu)
    {
        var head = memmap.Head(pfn);
        var pages = memmap.FolioPages;
        if (Checks.Enabled)
        {
            Contract.That(memmap.IsLarge(head) && (memmap.PeekFlags(head) & PageFlags.Locked) != 0, "a locked large folio");
        }

        var window = address & ~(((ulong)pages << PhysicalMemory.PageShift) - 1);
        var table = tables.WalkToPteTable(mm.Pgd, window);
        if (table < 0)
        {
            return Refuse(cpu, head, "no page table maps it here");
        }

        Span<int> mappings = stackalloc int[pages];
        Span<long> unmapped = stackalloc long[pages];
        var first = PageTableSet.Index(window, 1);
        var ptl = tables.Ptl(table);
        ptl.Enter();
        var total = 0;
        for (var i = 0; i < pages; i++)
        {
            var pte = ptes.PtepGet(table, first + i);
            if (pte.IsPresent && !pte.IsSpecial && pte.Pfn >= head && pte.Pfn < head + pages)
            {
                mappings[(int)(pte.Pfn - head)]++;
                total++;
            }
        }

        // A folio mapped through another table too cannot be split here. The counting schemes see it in the total;
        // under the proposals the freeze below refuses it (each of those mappings holds a reference).
        if (memmap.CountsMappings && total != memmap.FolioMapCount(head))
        {
            ptl.Exit();
            return Refuse(cpu, head, "mapped through another page table too");
        }

        if (!memmap.FreezeRefs(head, total + 1))
        {
            ptl.Exit();
            return Refuse(cpu, head, "held by a reference besides its mappings");
        }

        var freed = memmap.SplitFrozenFolio(head, mappings, unmapped);
        ProtocolEvents.Mark("split_folio", "folio 0x{0:x} split into {2} pages under the PTL of 0x{1:x}", head, window, pages);
        ptl.Exit();
        counters.Add(cpu, Stat.FolioSplits);
        release.FreeReleasedPages(cpu, unmapped[..freed]);
        return true;
    }

    /// <summary>
    /// Before an operation on [<paramref name="start"/>, <paramref name="end"/>) of <paramref name="mm"/>: splits each
    /// large folio that an entry maps on either side of a boundary that is not folio-aligned, so that the operation
    /// never leaves a folio half in and half out of its range. A folio that cannot be split is left large. Enter with
    /// the mmap_lock held and no other lock; returns the same.
    /// </summary>
    public void SplitAtBoundaries(MmStruct mm, ulong start, ulong end, int cpu)
    {
        if (memmap.FolioOrder == 0)
        {
            return;
        }

        SplitStraddling(mm, start, cpu);
        SplitStraddling(mm, end, cpu);
    }

    private void SplitStraddling(MmStruct mm, ulong boundary, int cpu)
    {
        var size = (ulong)memmap.FolioPages << PhysicalMemory.PageShift;
        if ((boundary & (size - 1)) == 0)
        {
            return;
        }

        var window = boundary & ~(size - 1);
        var table = tables.WalkToPteTable(mm.Pgd, window);
        if (table < 0)
        {
            return;
        }

        // The large folio an entry of the window maps, with a reference taken under the PTL; then its lock, which
        // is taken before the PTL, as the kernel orders them.
        var ptl = tables.Ptl(table);
        var first = PageTableSet.Index(window, 1);
        var pfn = -1L;
        ptl.Enter();
        for (var i = 0; i < memmap.FolioPages && pfn < 0; i++)
        {
            var pte = ptes.PtepGet(table, first + i);
            if (pte.IsPresent && !pte.IsSpecial && memmap.IsLarge(pte.Pfn))
            {
                pfn = pte.Pfn;
                memmap.GetPage(pfn);
            }
        }

        ptl.Exit();
        if (pfn < 0)
        {
            return;
        }

        // Our reference keeps anyone else from splitting it (a split freezes the count at its own reference), so its
        // head stays its head; after our split that page holds the lock and the reference.
        var head = memmap.Head(pfn);
        memmap.LockPage(head);
        TrySplitLocked(head, mm, window, cpu);
        memmap.UnlockPage(head);
        release.PutPage(cpu, head);
    }

    private bool Refuse(int cpu, long head, string why)
    {
        ProtocolEvents.Mark("split_folio", "folio 0x{0:x} not split: " + why, head);
        counters.Add(cpu, Stat.FolioSplitsRefused);
        return false;
    }
}
