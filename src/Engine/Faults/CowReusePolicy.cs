using Engine.Memory;
using Engine.Rmap;

namespace Engine.Faults;

/// <summary>
/// The reuse decision of a write-protect fault on an anonymous page, in one replaceable place: the GUP issue adds the
/// older generations (mapcount, page count) beside this one.
/// </summary>
internal static class CowReusePolicy
{
    /// <summary>
    /// The modern rule (Linux ≥ 5.19, <c>wp_can_reuse_anon_folio</c>): reuse if the page is AnonExclusive; otherwise
    /// only if the page lock can be taken and the mapping's reference is the only one, and then mark it exclusive and
    /// move it to the faulting VMA's anon_vma (<c>folio_move_anon_rmap</c>: later walks need not visit the family).
    /// Enter with the PTE table's PTL held and no extra reference on the page; returns the same.
    /// </summary>
    public static bool CanReuseAnonExclusive(Memmap memmap, long pfn, AnonVma? anonVma)
    {
        if (memmap.TestFlags(pfn, PageFlags.AnonExclusive))
        {
            return true;
        }

        // A page-cache page mapped by a private file mapping is never reused: the file keeps it.
        if (!memmap.TestFlags(pfn, PageFlags.Anon))
        {
            return false;
        }

        if (memmap.PageCount(pfn) != 1 || memmap.TestAndSetFlag(pfn, PageFlags.Locked))
        {
            return false;
        }

        // Re-check under the page lock: a racing GUP or a swap-cache addition raises the count.
        var reuse = memmap.PageCount(pfn) == 1;
        if (reuse)
        {
            if (anonVma is not null)
            {
                memmap.MoveAnonMapping(pfn, anonVma);
            }

            memmap.SetFlags(pfn, PageFlags.AnonExclusive);
        }

        memmap.ClearFlags(pfn, PageFlags.Locked);
        return reuse;
    }
}
