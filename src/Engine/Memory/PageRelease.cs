using System.Diagnostics;
using System.Runtime.CompilerServices;
using Engine.Stats;

namespace Engine.Memory;

/// <summary>
/// Dropping references and freeing the frames whose last reference went (the kernel's <c>put_page</c>,
/// <c>release_pages</c> and <c>free_unref_page</c>): every path that lets go of a page ends here, so the count of
/// freed pages is kept in one place.
/// </summary>
internal sealed class PageRelease(Memmap memmap, FrameAllocator allocator, StatCounters counters)
{
    /// <summary>
    /// <c>folio_try_get</c> on a page found without holding a reference (<see cref="Memmap.TryGetPage"/>), freeing the
    /// page that giving back a misdirected reference left with no holder. False with nothing held. Enter with no
    /// spinlock held.
    /// </summary>
    public bool TryGetPage(int cpu, long pfn)
    {
        if (memmap.TryGetPage(pfn, out var orphan))
        {
            return true;
        }

        if (orphan >= 0)
        {
            FreeReleasedPage(cpu, orphan);
        }

        return false;
    }

    /// <summary><c>put_page</c>: drops a reference and frees the frame when it was the last. Enter with no spinlock held.</summary>
    public void PutPage(int cpu, long pfn)
    {
        if (memmap.PutPageTestZero(pfn))
        {
            FreeReleasedPage(cpu, pfn);
        }
    }

    /// <summary>Drops <paramref name="refs"/> references at once (<c>gup_put_folio</c>) and frees the frame when they were the last.</summary>
    public void PutPageRefs(int cpu, long pfn, int refs)
    {
        if (memmap.PutPageRefsTestZero(pfn, refs))
        {
            FreeReleasedPage(cpu, pfn);
        }
    }

    /// <summary>Frees a frame whose last reference the caller just dropped: the whole folio when it belongs to a large one.</summary>
    public void FreeReleasedPage(int cpu, long pfn)
    {
        if (memmap.IsLarge(pfn))
        {
            FreeReleasedFolio(cpu, memmap.Head(pfn));
            return;
        }

        allocator.FreePage(cpu, pfn);
        counters.Add(cpu, Stat.PagesFreed);
    }

    /// <summary>
    /// Frees the large folio at <paramref name="head"/>, whose last reference the caller just dropped (the kernel's
    /// <c>free_frozen_pages</c> of a large folio): the folio is forgotten, then its block goes back to the allocator.
    /// Every frame counts as freed.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public void FreeReleasedFolio(int cpu, long head)
    {
        memmap.ClearFolio(head);
        allocator.FreeFolio(cpu, head);
        counters.Add(cpu, Stat.PagesFreed, memmap.FolioPages);
    }

    /// <summary>Frees frames whose last references the caller dropped, as one batch (<c>release_pages</c>'s free).</summary>
    public void FreeReleasedPages(int cpu, ReadOnlySpan<long> pfns)
    {
        if (pfns.Length > 0)
        {
            allocator.FreePages(cpu, pfns);
            counters.Add(cpu, Stat.PagesFreed, pfns.Length);
        }
    }
}
