using Engine.Memory;
using Engine.Mm;
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
internal sealed class RmapWalk(Memmap memmap, FileTable files)
{
    /// <summary>
    /// Walks the VMAs that may map <paramref name="pfn"/>; false if the walk was stopped by the visitor. An anonymous
    /// page that is no longer mapped is not walked (<c>folio_lock_anon_vma_read</c> gives up: its anon_vma may have
    /// lost its VMAs). Enter with no PTL held.
    /// </summary>
    public bool Walk<TVisitor>(long pfn, ref TVisitor visitor)
        where TVisitor : struct, IRmapVisitor
    {
        var index = Atomic.Read(ref memmap.Page(pfn).Index);
        if (memmap.TestFlags(pfn, PageFlags.Anon))
        {
            return WalkAnon(memmap, pfn, index, ref visitor);
        }

        var file = files.OfPage(pfn);
        file.Rmap.Lock.EnterRead();
        try
        {
            return Visit(file.Rmap.Vmas, index, ref visitor);
        }
        finally
        {
            file.Rmap.Lock.ExitRead();
        }
    }

    private static bool WalkAnon<TVisitor>(Memmap memmap, long pfn, long index, ref TVisitor visitor)
        where TVisitor : struct, IRmapVisitor
    {
        // folio_lock_anon_vma_read: the mapping is read without a lock, so check the page is mapped before and after
        // taking the family lock; once it is held and the page is mapped, its anon_vma's list is the one to walk.
        var anonVma = AnonRmap.AnonVmaOf(memmap, pfn);
        if (anonVma is null || memmap.MapCount(pfn) <= 0)
        {
            return true;
        }

        anonVma.Lock.EnterRead();
        try
        {
            return memmap.MapCount(pfn) <= 0 || Visit(anonVma.Vmas, index, ref visitor);
        }
        finally
        {
            anonVma.Lock.ExitRead();
        }
    }

    private static bool Visit<TVisitor>(IReadOnlyList<Vma> vmas, long index, ref TVisitor visitor)
        where TVisitor : struct, IRmapVisitor
    {
        for (var i = 0; i < vmas.Count; i++)
        {
            var vma = vmas[i];
            if (vma.AddressOf(index) is { } address && !visitor.Visit(vma, address))
            {
                return false;
            }
        }

        return true;
    }
}
