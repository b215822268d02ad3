using System.Diagnostics;
using Engine.Memory;
using Engine.Sync;

namespace Engine.Policy;

/// <summary>
/// Every behaviour that depends on which kernel generation the machine models, built once per machine from its
/// validated settings (<see cref="MachineOptions.CowReuse"/> and the pin-unsharing knobs). The fault handler, fork,
/// GUP, mprotect and the invariant checks ask this object what to do; none of them asks which generation it is.
/// <para>
/// A generation's behaviours shipped together (docs/gup.md): the reuse test of a write-protect fault, fork's early copy
/// of pages that may be pinned, the unshare of read-only pins, mprotect's shortcut to writable entries, and the
/// invariants that hold only under the rule that keeps them. The swap and folio issues add their axes here.
/// </para>
/// </summary>
internal sealed class KernelGeneration
{
    private readonly CowReuse _rule;
    private readonly bool _reliableLongTermReadOnlyPins;

    private readonly bool _reuseLargeFoliosByEstimate;

    private KernelGeneration(CowReuse rule, SwapReuse swapReuse, bool unshareOnReadOnlyPin, bool reliableLongTermReadOnlyPins, bool reuseLargeFoliosByEstimate)
    {
        _reuseLargeFoliosByEstimate = reuseLargeFoliosByEstimate && rule == CowReuse.AnonExclusive;
        _rule = rule;
        SwapReuse = swapReuse;
        UnsharesReadOnlyPins = unshareOnReadOnlyPin && rule == CowReuse.AnonExclusive;
        _reliableLongTermReadOnlyPins = reliableLongTermReadOnlyPins;
    }

    /// <summary>The generation <paramref name="options"/> (already validated) describes.</summary>
    public static KernelGeneration From(MachineOptions options)
        => new(options.CowReuse, options.EffectiveSwapReuse, options.UnshareOnReadOnlyPin, options.ReliableLongTermReadOnlyPins, options.ReuseLargeFoliosByEstimate);

    /// <summary>How a swap-in decides that its page may be written (<c>do_swap_page</c>'s generation).</summary>
    public SwapReuse SwapReuse { get; }

    /// <summary>
    /// Read-only pins of possibly shared anonymous pages unshare them (<c>FAULT_FLAG_UNSHARE</c>, Linux 5.19): only in
    /// the AnonExclusive generation, and only with <see cref="MachineOptions.UnshareOnReadOnlyPin"/> on.
    /// </summary>
    public bool UnsharesReadOnlyPins { get; }

    /// <summary>
    /// Whether a write fault on a swap-cache page first tries to drop it from the swap cache, so that the cache's
    /// reference does not force a copy (<c>do_wp_page</c> since 5.18, "mm: optimize do_wp_page() for exclusive pages
    /// in the swapcache", 53a05ad9f21d; <c>wp_can_reuse_anon_folio</c> since 5.19). From 5.9 to 5.17 the reference
    /// count test copies every page in the swap cache; the mapcount rule asks <c>reuse_swap_page</c>, which drops the
    /// page from the cache itself (<see cref="CanReuse"/>).
    /// </summary>
    public bool FreesSwapCacheBeforeReuse => _rule == CowReuse.AnonExclusive || SwapReuse == SwapReuse.PageCount;

    /// <summary>Whether pages carry the AnonExclusive flag (and swap entries its bit): the AnonExclusive generation only.</summary>
    public bool TracksAnonExclusive => _rule == CowReuse.AnonExclusive;

    /// <summary>"A writable anonymous entry maps an AnonExclusive page": an invariant of the AnonExclusive generation only.</summary>
    public bool WritableAnonImpliesExclusive => _rule == CowReuse.AnonExclusive;

    /// <summary>"A pinned anonymous page is AnonExclusive": holds only where read-only pins unshare.</summary>
    public bool PinnedAnonImpliesExclusive => UnsharesReadOnlyPins;

    /// <summary>
    /// The reuse test of a write-protect fault on an anonymous page (<c>wp_can_reuse_anon_folio</c>, and the
    /// <c>do_wp_page</c> of earlier kernels): whether the page may be reused in place; when it may, it is moved to the
    /// faulting VMA's anon_vma (<c>folio_move_anon_rmap</c>) and, in the AnonExclusive generation, marked exclusive. A
    /// page-cache page (mapped by a private file mapping) is never reused: the file keeps it. Enter with the PTE
    /// table's PTL held and no extra reference on the page; returns the same.
    /// </summary>
    public bool CanReuse(Memmap memmap, long pfn, IAnonMapping? anonVma, int mmId, ISwapCounts swap, int cpu)
    {
        if (_rule == CowReuse.AnonExclusive && memmap.TestFlags(pfn, PageFlags.AnonExclusive))
        {
            ProtocolEvents.Mark("do_wp_page", "reuse pfn 0x{0:x}: AnonExclusive", pfn);
            return true;
        }

        if (!memmap.TestFlags(pfn, PageFlags.Anon))
        {
            ProtocolEvents.Mark("do_wp_page", "copy pfn 0x{0:x}: a page-cache page is never reused", pfn);
            return false;
        }

        if (memmap.IsLarge(pfn))
        {
            if (memmap.Scheme == MapcountScheme.MmId || _reuseLargeFoliosByEstimate)
            {
                return CanReuseLargeAnonFolio(memmap, pfn, mmId);
            }

            if (_rule == CowReuse.AnonExclusive)
            {
                // wp_can_reuse_anon_folio from 6.9 to 6.14: a large folio's page is reused only through PageAnonExclusive
                // (6.8 still reused a folio nothing else referenced, page_count 1).
                ProtocolEvents.Mark("do_wp_page", "copy pfn 0x{0:x}: a page of a large folio is reused only when AnonExclusive", pfn);
                return false;
            }
        }

        // wp_can_reuse_anon_folio (5.19+) and do_wp_page (5.9-5.18) bail out early on extra references; the
        // mapcount generation only looks at mappings.
        if (_rule != CowReuse.MapCount)
        {
            var count = memmap.PageCount(pfn);
            if (count != 1)
            {
                ProtocolEvents.Mark("do_wp_page", "copy pfn 0x{0:x}: page_count {2} != 1", pfn, value: count);
                return false;
            }
        }

        if (!memmap.TryLockPage(pfn))
        {
            ProtocolEvents.Mark("do_wp_page", "copy pfn 0x{0:x}: page locked (trylock failed)", pfn);
            return false;
        }

        // Re-check under the page lock: a racing GUP or a swap-cache addition raises the count. The mapcount rule is
        // reuse_swap_page's: mappings and swap entries of the page's slot, at most one in all.
        var seen = _rule == CowReuse.MapCount ? memmap.LargestPageMapCount(pfn) + swap.SwapCount(pfn) : memmap.PageCount(pfn);
        var reuse = seen == 1;
        ProtocolEvents.Mark(
            "do_wp_page",
            _rule == CowReuse.MapCount
                ? reuse ? "reuse pfn 0x{0:x}: mapcount 1 (other references not counted)" : "copy pfn 0x{0:x}: mapcount {2}"
                : reuse ? "reuse pfn 0x{0:x}: page_count 1 under the page lock" : "copy pfn 0x{0:x}: page_count {2} under the page lock",
            pfn,
            value: seen);

        if (reuse)
        {
            if (anonVma is not null)
            {
                memmap.MoveAnonMapping(pfn, anonVma);
            }

            if (_rule == CowReuse.AnonExclusive)
            {
                memmap.SetFlags(pfn, PageFlags.AnonExclusive);
            }
            else if (_rule == CowReuse.MapCount)
            {
                swap.LeaveForReuse(pfn, cpu);
            }
        }

        memmap.UnlockPage(pfn);
        return reuse;
    }

    /// <summary>
    /// <c>__wp_can_reuse_large_anon_folio</c> (Linux 6.15, <see cref="MapcountScheme.MmId"/>): a page of a large folio
    /// is reused when the folio is mapped more than once, by this mm alone (the "maybe mapped shared" bit clear), and
    /// every reference to it is a mapping (<c>_large_mapcount == _refcount</c>: no GUP reference, no copy in flight);
    /// both are checked again under the folio's mapcount lock, which every change of its mappings takes. A folio mapped
    /// once is copied rather than reused, so that the large folio can be freed. The reused page becomes AnonExclusive;
    /// the folio stays where its rmap put it (other VMAs of the mm may map it). Large folios are never in the swap cache
    /// (reclaim splits them first). With <see cref="MachineOptions.ReuseLargeFoliosByEstimate"/> under
    /// <see cref="MapcountScheme.PerPage"/> the same test asks <c>folio_likely_mapped_shared</c> instead and has no lock
    /// to check again under (seed 003's road not taken: zoo entry 17). Enter with the PTL held; returns the same.
    /// </summary>
    private static bool CanReuseLargeAnonFolio(Memmap memmap, long pfn, int mmId)
    {
        var head = memmap.Head(pfn);
        var mapcount = memmap.FolioMapCount(head);
        if (mapcount <= 1)
        {
            ProtocolEvents.Mark("do_wp_page", "copy pfn 0x{0:x}: its large folio is mapped once (copy, so the folio can go)", pfn);
            return false;
        }

        if (memmap.MaybeMappedShared(head) || memmap.PageCount(head) != mapcount)
        {
            ProtocolEvents.Mark("do_wp_page", "copy pfn 0x{0:x}: its large folio may be mapped shared, or holds references besides its mappings", pfn);
            return false;
        }

        var exclusive = true;
        if (memmap.Scheme == MapcountScheme.MmId)
        {
            memmap.LockLargeMapcount(head);
            exclusive = !memmap.SharedBit(head) && memmap.FolioMapCount(head) == memmap.PageCount(head);
            memmap.UnlockLargeMapcount(head);
        }

        if (!exclusive)
        {
            ProtocolEvents.Mark("do_wp_page", "copy pfn 0x{0:x}: its large folio changed before the mapcount lock", pfn);
            return false;
        }

        Debug.Assert(memmap.Scheme != MapcountScheme.MmId || memmap.MmIdSlots(head).First.Id == mmId || memmap.MmIdSlots(head).Second.Id == mmId, "an exclusive folio is in a slot of the faulting mm");
        ProtocolEvents.Mark(
            "do_wp_page",
            memmap.Scheme == MapcountScheme.MmId
                ? "reuse pfn 0x{0:x}: its large folio is exclusive to this mm (_large_mapcount == _refcount under the mapcount lock)"
                : "reuse pfn 0x{0:x}: folio_likely_mapped_shared says its large folio is not shared, and _large_mapcount == _refcount",
            pfn);
        memmap.SetFlags(pfn, PageFlags.AnonExclusive);
        return true;
    }

    /// <summary>
    /// Whether fork must give the child its own copy of a page now instead of sharing it: never in the mapcount
    /// generation; from 5.9 an anonymous page that may be pinned in an mm that has pinned
    /// (<c>page_needs_cow_for_dma</c>); from 5.19 only if it is also exclusive (<c>folio_try_dup_anon_rmap</c> failing).
    /// Enter with the source PTL held.
    /// </summary>
    public bool ForkMustCopy(bool mmHasPinned, Memmap memmap, long pfn) => _rule switch
    {
        CowReuse.MapCount => false,
        CowReuse.PageCount => mmHasPinned && memmap.TestFlags(pfn, PageFlags.Anon) && memmap.MaybeDmaPinned(pfn),
        _ => mmHasPinned && memmap.TestFlags(pfn, PageFlags.AnonExclusive) && memmap.MaybeDmaPinned(pfn),
    };

    /// <summary>
    /// <c>gup_must_unshare</c> for a read-only pin: an anonymous page must be exclusive to its mm (Linux 5.19); a
    /// long-term pin in a private mapping must not hold a page-cache page or the shared zero page either, since the
    /// process's next write would copy away from it (Linux 6.2). <paramref name="mappingIsShared"/> is null on the
    /// fast path, which cannot look at the mapping and leaves such pages to the slow path.
    /// </summary>
    public bool GupMustUnshare(Memmap memmap, long pfn, bool isZeroPage, bool longTerm, bool? mappingIsShared)
    {
        if (!UnsharesReadOnlyPins)
        {
            return false;
        }

        if (!isZeroPage && memmap.TestFlags(pfn, PageFlags.Anon))
        {
            return !memmap.TestFlags(pfn, PageFlags.AnonExclusive);
        }

        return _reliableLongTermReadOnlyPins && longTerm && mappingIsShared != true;
    }

    /// <summary>
    /// <c>can_change_pte_writable</c> for a private anonymous page (Linux 6.0): mprotect may make the entry writable
    /// without a fault only when the page is exclusive to the mm, which only the AnonExclusive generation knows.
    /// </summary>
    public bool CanChangePteWritable(Memmap memmap, long pfn)
        => _rule == CowReuse.AnonExclusive && memmap.TestFlags(pfn, PageFlags.Anon | PageFlags.AnonExclusive);
}
