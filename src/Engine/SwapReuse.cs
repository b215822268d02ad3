namespace Engine;

/// <summary>
/// How a swap-in decides whether the page it maps may be written without a copy: the three designs Linux has had
/// since 2020 (docs/swap.md, "Swap generations"). Each shipped with some <see cref="CowReuse"/> rules only, and a
/// machine refuses a pair that never shipped.
/// </summary>
public enum SwapReuse
{
    /// <summary>
    /// Linux ≤ 5.17: on a write fault, <c>do_swap_page</c> maps the page writable when <c>reuse_swap_page()</c> says
    /// the page is mapped and swapped at most once in all (mapcount + swap count ≤ 1), called while the faulting entry
    /// still counts on swap and before the page is added to the rmap; references such as GUP's are not counted. When
    /// it says so, the page leaves the swap cache (and is marked dirty). With <see cref="CowReuse.MapCount"/> (≤ 5.8)
    /// the write-protect fault asks the same question; from 5.9 (<see cref="CowReuse.PageCount"/>) it counts
    /// references, and a page in the swap cache is always copied, so CVE-2020-29374 stayed open for swapped pages
    /// only (zoo entry <c>swap-missed-cow</c>).
    /// </summary>
    ReuseSwapPage,

    /// <summary>
    /// Linux 5.18 ("mm: streamline COW logic in do_swap_page()", c145e0b47c77; "mm/swapfile: remove stale
    /// reuse_swap_page()", 03104c2c5db8): <c>swap_free</c>, then on a write fault drop the page from the swap cache if
    /// only the cache and the fault hold it, then map it writable only if the fault's reference is the last one
    /// (page_count == 1). The write-protect fault tries to free the swap cache before its count test ("mm: optimize
    /// do_wp_page() for exclusive pages in the swapcache", 53a05ad9f21d). A GUP reference that survives swap-out makes
    /// the swap-in map the page read-only and the next write copy it (zoo entry <c>swap-lost-write</c>). Only with
    /// <see cref="CowReuse.PageCount"/>.
    /// </summary>
    PageCount,

    /// <summary>
    /// Linux ≥ 5.19 ("mm/swap: remember PG_anon_exclusive via a swp pte bit", 1493a1913e34): reclaim writes the page's
    /// AnonExclusive bit into the swap entry (and refuses to unmap an exclusive page that may be pinned); the swap-in
    /// of an exclusive entry maps the page exclusive, whatever other references it has. Only with
    /// <see cref="CowReuse.AnonExclusive"/>.
    /// </summary>
    ExclusiveEntry,
}
