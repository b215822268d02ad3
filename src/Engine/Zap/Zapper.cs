using Engine.AddressSpace;
using Engine.Memory;
using Engine.PageTables;

namespace Engine.Zap;

/// <summary>Unmapping page ranges (<c>unmap_page_range</c>, <c>zap_pte_range</c>) into an <see cref="MmuGather"/>.</summary>
internal sealed class Zapper(Machine machine)
{
    /// <summary>
    /// <c>zap_page_range</c> over [<paramref name="start"/>, <paramref name="end"/>). Enter with the mmap_lock held
    /// (read for madvise, write for munmap and exit) and no PTL; returns the same, with every page of the range
    /// unmapped, flushed from every TLB and released.
    /// </summary>
    public void ZapRange(MmStruct mm, ulong start, ulong end, int cpu)
    {
        var tlb = machine.RentGather();
        tlb.Begin(mm, cpu);
        try
        {
            for (var address = start; address < end;)
            {
                var tableEnd = Math.Min(end, (address & ~(PageTableSet.PteTableSpan - 1)) + PageTableSet.PteTableSpan);
                var table = machine.Tables.WalkToPteTable(mm.Pgd, address);
                if (table >= 0)
                {
                    ZapPteRange(tlb, table, address, tableEnd);
                }

                address = tableEnd;
            }
        }
        finally
        {
            tlb.Finish(start, end);
            machine.ReturnGather(tlb);
        }
    }

    /// <summary>
    /// <c>zap_pte_range</c>. Enter with no PTL; takes the table's PTL, clears entries atomically (capturing the
    /// dirty bit the hardware may be setting), queues their pages, and drops the PTL to flush whenever the batch
    /// fills; returns with no PTL.
    /// </summary>
    private void ZapPteRange(MmuGather tlb, long table, ulong start, ulong end)
    {
        var ptl = machine.Tables.Ptl(table);
        var address = start;
        while (address < end)
        {
            var full = false;
            ptl.Enter();
            for (; address < end && !full; address += PhysicalMemory.PageSize)
            {
                var index = PageTableSet.Index(address, 1);
                if (machine.Ptes.PtepGet(table, index).IsNone)
                {
                    continue;
                }

                var old = machine.Ptes.PtepGetAndClear(table, index);
                tlb.TrackRange(address);
                if (!old.MapsPage || old.IsSpecial)
                {
                    continue;
                }

                // Anonymous pages: the dirty bit needs no transfer; the rmap goes now (file pages may delay it).
                machine.Memmap.RemoveMapTestLast(old.Pfn);
                full = tlb.Add(old.Pfn, delayRmap: false);
            }

            ptl.Exit();
            if (full)
            {
                tlb.FlushMmu();
            }
        }
    }
}
