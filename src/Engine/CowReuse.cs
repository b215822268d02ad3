namespace Engine;

/// <summary>
/// Which rule decides, at a write fault on a read-only private anonymous page, whether the page may be reused in place
/// or must be copied: the three generations Linux has had (protocol reference section 2), each with the behaviours
/// that shipped with it.
/// </summary>
public enum CowReuse
{
    /// <summary>
    /// Linux ≤ 5.8 (and stable kernels without the 5.8 "COW can break either way" GUP workaround): reuse iff the page
    /// is mapped once (<c>reuse_swap_page</c>: mapcount == 1), under the page lock. Other references, such as a
    /// vmsplice'd page held by a pipe, do not count: CVE-2020-29374. Fork shares pinned pages like any other.
    /// </summary>
    MapCount,

    /// <summary>
    /// Linux 5.9 to 5.18 ("mm: do_wp_page() simplification", 09854ba94c6a): reuse iff page_count == 1, under the
    /// page lock. Any extra reference, a long-term pin included, forces a copy ("wrong COW"). Shipped with it: fork
    /// copies pages that may be pinned in an mm that has pinned for the child at once ("mm: Do early cow for pinned
    /// pages during fork() for ptes", 70e806e4e645).
    /// </summary>
    PageCount,

    /// <summary>
    /// Linux ≥ 5.19 (PG_anon_exclusive, "mm/memory: remember exclusively mapped anonymous pages with
    /// PG_anon_exclusive", 6c287605fd56): reuse if the page is AnonExclusive, else iff page_count == 1 under the page
    /// lock, then mark it exclusive. Shipped with it: read-only pins unshare (<c>FAULT_FLAG_UNSHARE</c>), fork's early
    /// copy tests exclusivity, and (Linux 6.0, <c>can_change_pte_writable</c>) mprotect makes exclusive anonymous
    /// entries writable without a fault. The invariants "writable
    /// anon entry ⇒ AnonExclusive" and "pinned anon page ⇒ AnonExclusive" hold only here.
    /// </summary>
    AnonExclusive,
}
