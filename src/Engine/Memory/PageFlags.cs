namespace Engine.Memory;

/// <summary>Page descriptor flags (the kernel's <c>PG_*</c> bits and the anon-exclusive marker).</summary>
[Flags]
public enum PageFlags
{
    /// <summary>No flag.</summary>
    None = 0,
    /// <summary><c>PG_locked</c>: the page lock is held.</summary>
    Locked = 1 << 0,
    /// <summary><c>PG_dirty</c>.</summary>
    Dirty = 1 << 1,
    /// <summary>An anonymous page (the kernel tags <c>mapping</c> with <c>PAGE_MAPPING_ANON</c>).</summary>
    Anon = 1 << 2,
    /// <summary><c>PG_anon_exclusive</c>: the page is exclusive to one mm and may be reused by a write fault.</summary>
    AnonExclusive = 1 << 3,
    /// <summary>The frame holds a page table.</summary>
    PageTable = 1 << 4,
    /// <summary>The shared zero page.</summary>
    Zero = 1 << 5,
    /// <summary>Never allocated (the zero page, and frames kept back by the machine).</summary>
    Reserved = 1 << 6,
    /// <summary><c>PG_uptodate</c>.</summary>
    Uptodate = 1 << 7,
    /// <summary><c>PG_writeback</c>.</summary>
    Writeback = 1 << 8,

    /// <summary><c>PG_swapcache</c>: the page is in the swap cache, at the slot <c>PageDescriptor.SwapSlot</c> names.</summary>
    SwapCache = 1 << 9,

    /// <summary><c>PG_active</c>: reclaim found the page in use on two looks in a row; it ages once more before it goes.</summary>
    Active = 1 << 10,

    /// <summary><c>PG_referenced</c>: reclaim's last look found the page in use.</summary>
    Referenced = 1 << 11,

    /// <summary><c>PG_head</c>: the first page of a large folio, whose descriptor holds the folio's counts.</summary>
    Head = 1 << 12,

    /// <summary>
    /// A tail page of a large folio (the kernel's <c>compound_head</c> bit): its references, its lock and its folio
    /// state are the head's, found by aligning the pfn down to the folio order (folios are naturally aligned).
    /// </summary>
    Tail = 1 << 13,
}
