namespace Engine;

/// <summary>
/// How pages and folios count their mappings, and so how "is it mapped?" and "is it mapped by more than one mm?" are
/// answered (docs/mapcount.md): the two schemes Linux has shipped (<see cref="PerPage"/>, <see cref="MmId"/>), which
/// count order-0 pages the same way (a per-page <c>_mapcount</c>) and differ for large folios; and the two proposals
/// of seed 002 (<see cref="TriState"/>, <see cref="None"/>), which change order-0 pages, file pages included, as well.
/// The proposals run only with <see cref="CowReuse.AnonExclusive"/> (and so the newest swap design), the rule that
/// no longer asks a mapcount.
/// </summary>
public enum MapcountScheme
{
    /// <summary>
    /// Linux ≤ 6.14: each page keeps its own <c>_mapcount</c> and the folio a total, <c>_large_mapcount</c>. "Is it
    /// shared?" is <c>folio_likely_mapped_shared</c>: mapped at most once, no; mapped more often than it has pages,
    /// yes; otherwise whether its first page is mapped more than once, which misses a folio two mms map through
    /// different pages (a false negative). A write fault never reuses a large folio as a whole: a page is reused only
    /// when it is <c>PageAnonExclusive</c>, and every other page is copied.
    /// </summary>
    PerPage,

    /// <summary>
    /// Linux 6.15 with <c>CONFIG_MM_ID</c> and <c>CONFIG_NO_PAGE_MAPCOUNT</c> ("mm: MM owner tracking for large
    /// folios"): no per-page mapcounts in a large folio; the folio keeps <c>_large_mapcount</c> and two (mm id,
    /// mapcount) slots, with a lock bit and a "maybe mapped shared" bit, updated under the lock bit whenever mappings
    /// are added or removed. "Is it shared?" (<c>folio_maybe_mapped_shared</c>) has no false negatives, and false
    /// positives only after three or more mms mapped the folio at once. A write fault reuses a page of a large folio
    /// the faulting mm alone maps when every reference to the folio is a mapping
    /// (<c>__wp_can_reuse_large_anon_folio</c>: <c>_large_mapcount == _refcount</c>, rechecked under the lock bit).
    /// </summary>
    MmId,

    /// <summary>
    /// Seed 002, Matthew Wilcox (December 2021): per folio (order 0 included) only three states, kept in the head's
    /// <c>_mapcount</c> word: not mapped (−1), mapped exactly once (0), maybe mapped more than once (1). A mapping
    /// raises the state (not → once → maybe more) with one compare-and-swap, and costs nothing once the folio is at
    /// "maybe more"; an unmapping lowers "once" to "not mapped" (the one mapping went) and leaves "maybe more" alone
    /// (it cannot tell how many remain). "Maybe more" goes back to "not mapped" only when an rmap walk made under the
    /// folio lock finds no mapping (reclaim's <c>try_to_unmap</c>, truncation's and eviction's unmap, writeback's
    /// <c>folio_mkclean</c>), or when the last reference frees the folio. "Not mapped" and "once" are exact; "maybe
    /// more" is a false positive in both directions of the count (it may be one mapping, or none).
    /// </summary>
    TriState,

    /// <summary>
    /// Seed 002, Linus Torvalds: no mapcount at all. Copy-on-write and pins decide by the refcount and
    /// <c>PageAnonExclusive</c> alone; "is it mapped?" is answered by an rmap walk where the answer must be exact
    /// (reclaim's "still mapped?", writeback's <c>folio_mkclean</c>, which always walks), and by a sticky "ever mapped"
    /// bit where a false positive is acceptable (truncation and eviction skip the unmap of a page never mapped, as
    /// Wilcox offered). "Is it shared?" is "not AnonExclusive". Mapping and unmapping touch no counter but the refcount.
    /// </summary>
    None,
}
