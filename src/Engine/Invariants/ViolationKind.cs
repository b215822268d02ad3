namespace Engine.Invariants;

/// <summary>
/// What an <see cref="InvariantViolation"/> broke. The subsystem that owns the invariant is named first in each
/// summary, and its <c>…Invariants</c> checker (<c>Memory/MemoryInvariants</c>, <c>Mm/MmInvariants</c>, …) reports it at
/// quiescence (the page cache's checker also reports an unmapped cached page's <see cref="RefcountMismatch"/>); the
/// first three are recorded while the machine runs. docs/engine.md lists them with the kernel rule behind each.
/// </summary>
public enum ViolationKind
{
    /// <summary>Cpus: an access reached a free frame or a page table through a stale translation.</summary>
    UseAfterFree,

    /// <summary>PageTables: a PTE was stored without its table's PTL held.</summary>
    PteStoreWithoutPtl,

    /// <summary>PageTables: a table reachable from a live mm is not a page-table frame with one reference.</summary>
    BadPageTable,

    /// <summary>PageTables: an entry holds a value that is neither empty, present, protnone nor a swap entry.</summary>
    GarbageEntry,

    /// <summary>PageTables: a page-table frame belongs to no live mm.</summary>
    LeakedPageTable,

    /// <summary>Mm: an entry lies outside every VMA.</summary>
    EntryOutsideVma,

    /// <summary>Mm: VMAs are empty, unaligned or overlapping.</summary>
    MalformedVma,

    /// <summary>PageTables: a special entry is not the read-only zero page.</summary>
    BadSpecialEntry,

    /// <summary>Memory: an entry maps a pfn outside physical memory, a free frame or a page-table frame.</summary>
    EntryMapsBadFrame,

    /// <summary>Policy (AnonExclusive generation): a writable entry maps an anonymous page that is not AnonExclusive.</summary>
    WritableNotExclusive,

    /// <summary>Policy (AnonExclusive generation): a pinned anonymous page is not AnonExclusive.</summary>
    PinnedNotExclusive,

    /// <summary>Memory: a writable entry maps an anonymous page mapped more than once.</summary>
    WritableShared,

    /// <summary>Memory: a page's mapcount differs from the number of entries mapping it.</summary>
    MapcountMismatch,

    /// <summary>Memory: a page's refcount differs from its holders (entries, page cache, GUP handles).</summary>
    RefcountMismatch,

    /// <summary>Memory: an allocated frame that nothing maps or holds.</summary>
    LeakedFrame,

    /// <summary>Memory: a free frame on no free list, twice on the lists, not clean, or on a list while referenced.</summary>
    FreeListCorrupt,

    /// <summary>Gup: a pinned page is not reported by <c>folio_maybe_dma_pinned</c>.</summary>
    PinNotDetected,

    /// <summary>Cpus: a TLB entry belongs to an exited mm, disagrees with its PTE, or points at a free frame.</summary>
    StaleTlbEntry,

    /// <summary>Rmap: an anonymous page's anon_vma or index does not place it where it is mapped, or a walk misses entries.</summary>
    AnonRmapBroken,

    /// <summary>Mm: VMAs and anon_vmas are not linked consistently, or a file's i_mmap lists the wrong VMAs.</summary>
    RmapLinksBroken,

    /// <summary>Mm: a file mapping's entry does not map the page cached for its index, or maps it wrongly.</summary>
    FileMappingBroken,

    /// <summary>Mm: a shared file page is mapped writable while clean (write-notify broken).</summary>
    WriteNotifyBroken,

    /// <summary>Files: the page cache's slots, tags or descriptors disagree.</summary>
    PageCacheCorrupt,

    /// <summary>Files: a clean cached page differs from its backing store (a store reached it without dirtying it).</summary>
    CleanPageDiffers,

    /// <summary>
    /// Memory: a page's <c>_refcount</c> is negative: references were taken past the counter's limit and it wrapped
    /// (possible only with <c>RefcountOverflowGuard</c> off), so it no longer says how many holders the page has.
    /// </summary>
    RefcountOverflow,

    /// <summary>Swap: a slot's reference count differs from the number of swap entries naming it.</summary>
    SwapCountMismatch,

    /// <summary>Swap: a swap entry carries the exclusive bit while its slot counts more than one reference.</summary>
    SwapExclusiveShared,

    /// <summary>Swap: the swap cache, the slots' has-cache flags and the pages' descriptors disagree, or a swap entry names no slot.</summary>
    SwapCacheCorrupt,

    /// <summary>Folios: a large folio's head or tail bits, a tail's own count, its pin count or its MM-id slots are wrong.</summary>
    FolioCorrupt,

    /// <summary>Folios: two mms map a large folio but "is it shared?" answers no (a false negative of the MM-id scheme, which has none).</summary>
    SharedFalseNegative,
}
