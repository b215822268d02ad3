using Engine.Memory;
using Engine.Rmap;

namespace Engine.Faults;

/// <summary>
/// The reuse decision of a write-protect fault on an anonymous page, one function per kernel generation
/// (<see cref="CowReuse"/>).
/// </summary>
internal static class CowReusePolicy
{
    /// <summary>
    /// Whether the page may be reused in place under <paramref name="rule"/>; when it may, it is moved to the
    /// faulting VMA's anon_vma (<c>page_move_anon_rmap</c> / <c>folio_move_anon_rmap</c>) and, in the AnonExclusive
    /// generation, marked exclusive. A page-cache page (mapped by a private file mapping) is never reused: the file
    /// keeps it. Enter with the PTE table's PTL held and no extra reference on the page; returns the same.
    /// </summary>
    public static bool CanReuse(CowReuse rule, Memmap memmap, long pfn, AnonVma? anonVma)
    {
        if (rule == CowReuse.AnonExclusive && memmap.TestFlags(pfn, PageFlags.AnonExclusive))
        {
            return true;
        }

        if (!memmap.TestFlags(pfn, PageFlags.Anon))
        {
            return false;
        }

        // wp_can_reuse_anon_folio (5.19+) and do_wp_page (5.9-5.18) bail out early on extra references; the
        // mapcount generation only looks at mappings.
        if (rule != CowReuse.MapCount && memmap.PageCount(pfn) != 1)
        {
            return false;
        }

        if (memmap.TestAndSetFlag(pfn, PageFlags.Locked))
        {
            return false;
        }

        // Re-check under the page lock: a racing GUP or a swap-cache addition raises the count.
        var reuse = rule == CowReuse.MapCount ? memmap.MapCount(pfn) == 1 : memmap.PageCount(pfn) == 1;
        if (reuse)
        {
            if (anonVma is not null)
            {
                memmap.MoveAnonMapping(pfn, anonVma);
            }

            if (rule == CowReuse.AnonExclusive)
            {
                memmap.SetFlags(pfn, PageFlags.AnonExclusive);
            }
        }

        memmap.ClearFlags(pfn, PageFlags.Locked);
        return reuse;
    }
}
