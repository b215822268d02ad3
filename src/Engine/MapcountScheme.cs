namespace Engine;

/// <summary>
/// How a large anonymous folio counts its mappings and answers "is it mapped by more than one mm?" (docs/folios.md):
/// the two schemes Linux has shipped. Order-0 pages count the same way under both (a per-page <c>_mapcount</c>); the
/// schemes differ only for large folios (<see cref="MachineOptions.AnonFolioOrder"/> above 0).
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
}
