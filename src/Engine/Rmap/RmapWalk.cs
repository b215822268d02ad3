using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Sync;

namespace Engine.Rmap;

/// <summary>What an rmap walk does at each VMA that may map the page. A struct, so a walk allocates nothing.</summary>
internal interface IRmapVisitor
{
    /// <summary>
    /// Called with the walk's lock held (the anon_vma family's or the file's <c>i_mmap_rwsem</c>, for read), no PTL:
    /// the VMA's page tables cannot be freed meanwhile. <paramref name="address"/> is where the page would be mapped
    /// in <paramref name="vma"/> (<c>vma_address</c>); the entry there may map another page or none. Returns false to
    /// stop the walk.
    /// </summary>
    bool Visit(Vma vma, ulong address);
}

/// <summary>
/// <c>rmap_walk</c>: every VMA that may map a page, found from the page alone: an anonymous page through its
/// anon_vma (<c>rmap_walk_anon</c>), a page-cache page through its file's <c>i_mmap</c> (<c>rmap_walk_file</c>).
/// </summary>
internal sealed class RmapWalk(Memmap memmap, FileTable files, PageTableSet tables, PteAccess ptes)
{
    /// <summary>
    /// <c>folio_mapped</c>, exact, for a caller holding the page lock (reclaim's "still mapped?"): the count under the
    /// counting schemes; under the proposals, "not mapped" at once when the word says so, and "once" of an order-0
    /// page under the tri-state, otherwise an rmap walk that looks at every entry under its PTL. A walk that finds none
    /// brings the tri-state down to "not mapped" (<see cref="Memmap.WalkFoundUnmapped"/>).
    /// </summary>
    public bool Mapped(long pfn)
    {
        if (memmap.CountsMappings)
        {
            return memmap.MapCount(pfn) > 0;
        }

        if (!memmap.MaybeMapped(pfn))
        {
            return false;
        }

        if (memmap.Scheme == MapcountScheme.TriState && !memmap.IsLarge(pfn) && memmap.MapcountWord(pfn) == 0)
        {
            return true;
        }

        return CountMappings(pfn, stopAtFirst: true) > 0;
    }

    /// <summary>
    /// The number of entries mapping <paramref name="pfn"/>, for a caller holding the page lock: <c>page_mapcount</c>
    /// under the counting schemes, else as the word tells it exactly ("not mapped", or "once" of an order-0 page) or
    /// an rmap walk counts it (and a walk that counts none brings the tri-state down).
    /// </summary>
    public int MapCount(long pfn)
    {
        if (memmap.CountsMappings)
        {
            return memmap.MapCount(pfn);
        }

        if (!memmap.MaybeMapped(pfn))
        {
            return 0;
        }

        if (memmap.Scheme == MapcountScheme.TriState && !memmap.IsLarge(pfn) && memmap.MapcountWord(pfn) == 0)
        {
            return 1;
        }

        return CountMappings(pfn, stopAtFirst: false);
    }

    /// <summary>
    /// Counts the entries mapping <paramref name="pfn"/> (any page of its folio, for a large one) by an rmap walk that
    /// reads each candidate entry under its PTL: the rmap walk "no mapcount" pays for an exact answer. None found
    /// lowers the tri-state. Enter with the page locked and no PTL held.
    /// </summary>
    private int CountMappings(long pfn, bool stopAtFirst)
    {
        ProtocolEvents.Mark("rmap_walk", "pfn 0x{0:x}: count its mappings by walking the rmap", pfn);
        var head = memmap.Head(pfn);
        var pages = memmap.IsLarge(pfn) ? memmap.FolioPages : 1;
        var counter = new MappingCounter(this, head, pages, stopAtFirst);
        Walk(head, ref counter, lockedWalk: true, pages);
        if (counter.Found == 0)
        {
            memmap.WalkFoundUnmapped(head);
        }

        return counter.Found;
    }

    /// <summary>The entries of <paramref name="vma"/> at <paramref name="address"/> and the next pages that map a page of the folio at <paramref name="head"/>, read under the PTL.</summary>
    private int CountAt(Vma vma, ulong address, long head, int pages)
    {
        var found = 0;
        for (var i = 0; i < pages; i++)
        {
            var at = address + ((ulong)i << PhysicalMemory.PageShift);
            if (at < vma.Start || at >= vma.End)
            {
                continue;
            }

            var table = tables.WalkToPteTable(vma.Mm.Pgd, at);
            if (table < 0)
            {
                continue;
            }

            var ptl = tables.Ptl(table);
            ptl.Enter();
            var pte = ptes.PtepGet(table, PageTableSet.Index(at, 1));
            ptl.Exit();
            if (pte.IsPresent && !pte.IsSpecial && pte.Pfn >= head && pte.Pfn < head + pages)
            {
                found++;
            }
        }

        return found;
    }

    private struct MappingCounter(RmapWalk owner, long head, int pages, bool stopAtFirst) : IRmapVisitor
    {
        public int Found { get; private set; }

        public bool Visit(Vma vma, ulong address)
        {
            Found += owner.CountAt(vma, address, head, pages);
            return !(stopAtFirst && Found > 0);
        }
    }

    /// <summary>
    /// Walks the VMAs that may map <paramref name="pfn"/>; false if the walk was stopped by the visitor. An anonymous
    /// page that is no longer mapped is not walked (<c>folio_lock_anon_vma_read</c> gives up: its anon_vma may have
    /// lost its VMAs). Enter with no PTL held.
    /// </summary>
    public bool Walk<TVisitor>(long pfn, ref TVisitor visitor)
        where TVisitor : struct, IRmapVisitor
        => Walk(pfn, ref visitor, lockedWalk: false, pages: 1);

    /// <summary>
    /// The walk, over every VMA that maps any of the <paramref name="pages"/> pages from <paramref name="pfn"/> (a
    /// folio's, for a count): a large folio that could not be split at a VMA boundary (a pinned one, at a partial
    /// munmap or mprotect) may be mapped only in a VMA that does not cover its head, whose address for the head then
    /// lies below the VMA's start (the visitor skips the pages outside it).
    /// </summary>
    private bool Walk<TVisitor>(long pfn, ref TVisitor visitor, bool lockedWalk, int pages)
        where TVisitor : struct, IRmapVisitor
    {
        var index = Atomic.Read(ref memmap.Page(pfn).Index);
        if (memmap.TestFlags(pfn, PageFlags.Anon))
        {
            return WalkAnon(memmap, pfn, index, pages, ref visitor, lockedWalk);
        }

        var file = files.OfPage(pfn);
        file.Rmap.Lock.EnterRead();
        try
        {
            return Visit(file.Rmap.Vmas, index, pages, ref visitor);
        }
        finally
        {
            file.Rmap.Lock.ExitRead();
        }
    }

    private static bool WalkAnon<TVisitor>(Memmap memmap, long pfn, long index, int pages, ref TVisitor visitor, bool lockedWalk)
        where TVisitor : struct, IRmapVisitor
    {
        // folio_lock_anon_vma_read: the mapping is read without a lock, so check the page is mapped before and after
        // taking the family lock; once it is held and the page is mapped, its anon_vma's list is the one to walk. (A
        // walk made to count the mappings has just been told the page may be mapped: it only needs the anon_vma.)
        var anonVma = AnonRmap.AnonVmaOf(memmap, pfn);
        if (anonVma is null || (!lockedWalk && !memmap.MaybeMapped(pfn)))
        {
            return true;
        }

        anonVma.Lock.EnterRead();
        try
        {
            return (!lockedWalk && !memmap.MaybeMapped(pfn)) || Visit(anonVma.Vmas, index, pages, ref visitor);
        }
        finally
        {
            anonVma.Lock.ExitRead();
        }
    }

    private static bool Visit<TVisitor>(IReadOnlyList<Vma> vmas, long index, int pages, ref TVisitor visitor)
        where TVisitor : struct, IRmapVisitor
    {
        for (var i = 0; i < vmas.Count; i++)
        {
            var vma = vmas[i];
            if (vma.AddressOfRange(index, pages) is { } address && !visitor.Visit(vma, address))
            {
                return false;
            }
        }

        return true;
    }
}
