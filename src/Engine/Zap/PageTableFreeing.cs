using Engine.Cpus;
using Engine.Invariants;
using Engine.Mm;
using Engine.PageTables;
using Engine.Sync;

namespace Engine.Zap;

/// <summary>
/// Freeing page tables no VMA needs any more (the kernel's <c>free_pgtables</c>, with <c>tlb_remove_table</c>'s
/// synchronisation): unhook them, wait for a grace period in which every CPU leaves any access or IRQ-disabled
/// section it was in (so no hardware walk and no GUP-fast walk is still on them), then free them.
/// </summary>
internal sealed class PageTableFreeing(PageTableSet tables, Shootdown shootdown, bool gracePeriod)
{
    [ThreadStatic]
    private static List<long>? t_detached;

    /// <summary>
    /// <c>free_pgd_range</c>: frees the tables meeting [<paramref name="start"/>, <paramref name="end"/>) whose whole
    /// span lies in [<paramref name="floor"/>, <paramref name="ceiling"/>), the gap no VMA covers, and which map
    /// nothing. Enter with the mmap_lock held (read is enough: a fault cannot populate a table in a gap, since it
    /// finds no VMA there) and no spinlock; returns the same.
    /// </summary>
    public void FreeEmptyTables(MmStruct mm, ulong start, ulong end, ulong floor, ulong ceiling, int cpu)
    {
        if (Checks.Enabled)
        {
            Contract.Held(mm.MmapLock, "the mmap_lock");
        }

        // A per-thread scratch list: two munmaps of one mm may both be here (each under the read side).
        var detached = t_detached ??= [];
        detached.Clear();
        mm.PageTableLock.Enter();
        tables.DetachEmptyTables(mm.Pgd, mm.PageTableLock, start, end, floor, ceiling, detached);
        mm.PageTableLock.Exit();
        if (detached.Count == 0)
        {
            return;
        }

        // No walker can find the detached tables any more; one still on them is inside an access or an IRQ-disabled
        // section, which it leaves before the grace period ends.
        ProtocolEvents.Mark("free_pgtables", gracePeriod ? "{2} empty page table(s) unhooked; wait for lockless walkers" : "{2} empty page table(s) unhooked; no grace period", value: detached.Count);
        if (gracePeriod)
        {
            shootdown.WaitForLocklessWalkers();
        }

        foreach (var table in detached)
        {
            ProtocolEvents.Mark("free_pgtables", "free page table pfn 0x{0:x}", table);
            tables.FreeTable(cpu, table);
        }
    }

    /// <summary>Frees every table of an exited mm, PGD included. Enter with the mm unreachable (its mmap_lock held for write).</summary>
    public void FreeAll(MmStruct mm, int cpu)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(mm.MmapLock, "the mmap_lock");
        }

        // The per-thread scratch list again: exit allocates nothing per table.
        var all = t_detached ??= [];
        all.Clear();
        tables.Collect(mm.Pgd, 4, all);
        if (gracePeriod)
        {
            shootdown.WaitForLocklessWalkers();
        }

        foreach (var table in all)
        {
            tables.FreeTable(cpu, table);
        }

        all.Clear();
    }
}
