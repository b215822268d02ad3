using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.Stats;

namespace Engine.Rmap;

/// <summary>
/// Keeping anon_vmas and anonymous pages' <c>mapping</c> right (mm/rmap.c): <c>anon_vma_prepare</c> at a VMA's first
/// anonymous page, <c>anon_vma_fork</c> for each VMA fork copies, <c>anon_vma_clone</c> when a VMA is split,
/// <c>unlink_anon_vmas</c> when one goes, <c>folio_add_new_anon_rmap</c> for a new page and
/// <c>folio_move_anon_rmap</c> when a write fault reuses a page that was shared.
/// </summary>
internal sealed class AnonRmap(Memmap memmap, StatCounters counters, bool prepareRecheck)
{
    /// <summary>
    /// <c>anon_vma_prepare</c>: the VMA's anon_vma, made and linked if it has none. Two faults in a new VMA may both
    /// find none; the mm's <c>page_table_lock</c> decides which one is installed, and the loser's is dropped. Enter
    /// with the mmap_lock held for read (or write); returns the same.
    /// </summary>
    public AnonVma Prepare(Vma vma, int cpu)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var existing = vma.AnonVma;
        if (existing is not null)
        {
            return existing;
        }

        var fresh = AnonVma.NewRoot();
        fresh.Lock.EnterWrite();
        vma.Mm.PageTableLock.Enter();
        existing = prepareRecheck ? vma.AnonVma : null;
        if (existing is null)
        {
            fresh.Link(vma);
            vma.AnonVma = fresh;
        }

        vma.Mm.PageTableLock.Exit();
        fresh.Lock.ExitWrite();
        if (existing is not null)
        {
            counters.Add(cpu, Stat.AnonVmaPrepareRaces);
        }

        return existing ?? fresh;
    }

    /// <summary>
    /// <c>anon_vma_fork</c>: links <paramref name="child"/> (fork's copy of <paramref name="parent"/>) into every
    /// anon_vma the parent is linked into, then gives it a new anon_vma of its own whose parent is the parent VMA's.
    /// Must run before the parent's entries are copied: a walk that starts once the child maps a page must find the
    /// child's VMA. Enter with the parent's mmap_lock held for write.
    /// </summary>
    public static void Fork(Vma child, Vma parent)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(parent.Mm.MmapLock, "the parent's mmap_lock");
        }

        var own = parent.AnonVma;
        if (own is null)
        {
            return;
        }

        var fresh = own.NewChild();
        own.Lock.EnterWrite();
        foreach (var anonVma in parent.AnonVmaChain)
        {
            anonVma.Link(child);
        }

        fresh.Link(child);
        child.AnonVma = fresh;
        own.Lock.ExitWrite();
    }

    /// <summary>
    /// <c>__split_vma</c> for a VMA with an anon_vma: <paramref name="tail"/> (the part from <paramref name="address"/>
    /// on) is linked wherever <paramref name="vma"/> is and shares its anon_vma, and <paramref name="vma"/> is cut at
    /// <paramref name="address"/>, both under the family lock, so a walk sees the whole VMA or both parts. Enter with
    /// the mmap_lock held for write (and the file's <c>i_mmap_rwsem</c> for write if the VMA maps a file).
    /// </summary>
    public static void Split(Vma vma, Vma tail, ulong address)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(vma.Mm.MmapLock, "the mmap_lock");
            if (vma.File is { } file)
            {
                Contract.HeldForWrite(file.Rmap.Lock, "i_mmap_rwsem");
            }
        }

        var own = vma.AnonVma;
        if (own is null)
        {
            vma.End = address;
            return;
        }

        own.Lock.EnterWrite();
        foreach (var anonVma in vma.AnonVmaChain)
        {
            anonVma.Link(tail);
        }

        tail.AnonVma = own;
        vma.End = address;
        own.Lock.ExitWrite();
    }

    /// <summary>
    /// <c>unlink_anon_vmas</c>: removes <paramref name="vma"/> from every anon_vma it is linked into. Called after its
    /// range is zapped and before its page tables are freed. Enter with the mmap_lock held (for write, or for read
    /// after munmap's downgrade: the VMA is unreachable by then).
    /// </summary>
    public static void Unlink(Vma vma)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var own = vma.AnonVma;
        if (own is null)
        {
            return;
        }

        own.Lock.EnterWrite();
        foreach (var anonVma in vma.AnonVmaChain)
        {
            anonVma.UnlinkOne(vma);
        }

        vma.AnonVmaChain.Clear();
        vma.AnonVma = null;
        own.Lock.ExitWrite();
    }

    /// <summary>
    /// <c>folio_add_new_anon_rmap</c>: a brand-new page mapped at <paramref name="address"/> of <paramref name="vma"/>
    /// belongs to the VMA's anon_vma at the VMA's linear page index; its mapcount is set directly. Enter with the PTL
    /// held, before the entry is set.
    /// </summary>
    public void AddNewAnonRmap(long pfn, Vma vma, ulong address)
    {
        memmap.SetAnonMapping(pfn, vma.AnonVma!, vma.LinearPageIndex(address));
        memmap.SetNewAnonMap(pfn);
    }

    /// <summary>
    /// <c>__folio_set_anon</c> for one page of a new large folio: the page belongs to the VMA's anon_vma at the VMA's
    /// linear page index of <paramref name="address"/>. The folio's mapcounts are set once for all its pages
    /// (<c>Memmap.SetNewAnonFolio</c>). Enter with the PTL held, before the entries are set.
    /// </summary>
    public void SetAnonMapping(long pfn, Vma vma, ulong address) => memmap.SetAnonMapping(pfn, vma.AnonVma!, vma.LinearPageIndex(address));

    /// <summary>An anonymous page's anon_vma, or null (<c>folio_anon</c>: read without a lock; the object stays valid).</summary>
    public static AnonVma? AnonVmaOf(Memmap memmap, long pfn) => (AnonVma?)memmap.AnonMappingOf(pfn);
}
