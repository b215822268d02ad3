using Engine.Cpus;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Policy;
using Engine.Sync;

namespace Engine.AddressSpace;

/// <summary>The page-table half of mprotect (<c>mm/mprotect.c</c>).</summary>
internal sealed class ProtectionChange(Memmap memmap, PageTableSet tables, PteAccess ptes, Shootdown shootdown, KernelGeneration generation, bool flushTlbBatchedPending)
{
    /// <summary>
    /// <c>change_protection</c>: rewrites the entries of the range for <paramref name="prot"/> (each through
    /// <c>ptep_modify_prot_start/commit</c>: get-and-clear, then set, so a dirty bit set meanwhile is kept), then
    /// flushes the TLB if any entry lost a permission. Write permission is granted here only to an anonymous page
    /// exclusive to this mm, in the AnonExclusive generation (<c>can_change_pte_writable</c>, Linux 6.0); any other
    /// entry stays read-only, and a write faults and lets the fault handler decide. Enter with the mmap_lock held for
    /// write.
    /// </summary>
    public void ChangeProtection(MmStruct mm, ulong start, ulong end, Prot prot)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(mm.MmapLock, "the mmap_lock");
        }

        var flush = false;
        mm.IncTlbFlushPending();
        for (var address = start; address < end; address += PhysicalMemory.PageSize)
        {
            var table = tables.WalkToPteTable(mm.Pgd, address);
            if (table < 0)
            {
                address = (address & ~(PageTableSet.PteTableSpan - 1)) + PageTableSet.PteTableSpan - PhysicalMemory.PageSize;
                continue;
            }

            var index = PageTableSet.Index(address, 1);
            var ptl = tables.Ptl(table);
            ptl.Enter();
            if (flushTlbBatchedPending)
            {
                mm.FlushTlbBatchedPending(shootdown, -1);
            }

            var pte = ptes.PtepGet(table, index);
            if (pte.IsSwap)
            {
                ProtocolEvents.Mark("change_pte_range", "pte at 0x{1:x} is a swap entry: nothing to change, nothing to flush", address: address);
            }
            else if (pte.MapsPage)
            {
                var old = ptes.PtepGetAndClear(table, index);
                var updated = prot == Prot.None
                    ? (old.IsPresent ? old.MkProtNone() : old)
                    : old.IsProtNone ? old.MkPresentReadOnly() : (prot & Prot.Write) == 0 ? old.WrProtect() : old;
                if ((prot & Prot.Write) != 0 && updated.IsPresent && !updated.IsWrite && !updated.IsSpecial && generation.CanChangePteWritable(memmap, updated.Pfn))
                {
                    updated = updated.MkWrite();
                }

                var lost = old.IsPresent && (!updated.IsPresent || (old.IsWrite && !updated.IsWrite));
                flush |= lost;
                ptes.SetPte(table, index, updated);
                ProtocolEvents.Mark(
                    "change_pte_range",
                    !updated.IsPresent ? "pte at 0x{1:x}, pfn 0x{0:x}: PROT_NONE" : updated.IsWrite ? "pte at 0x{1:x}, pfn 0x{0:x}: writable" : lost ? "pte at 0x{1:x}, pfn 0x{0:x}: write-protected" : "pte at 0x{1:x}, pfn 0x{0:x}: read-only",
                    updated.Pfn,
                    address);
            }

            ptl.Exit();
        }

        if (flush)
        {
            shootdown.FlushTlbRange(mm.Context, start, end);
        }

        mm.DecTlbFlushPending();
    }
}
