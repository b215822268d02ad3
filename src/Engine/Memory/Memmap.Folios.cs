using System.Diagnostics;
using System.Runtime.CompilerServices;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Memory;

/// <summary>
/// Large folios (docs/folios.md): naturally aligned blocks of 2^<see cref="FolioOrder"/> frames that count as one
/// page. The head's descriptor holds the folio's <c>_refcount</c> (a tail's stays 0) and its lock; the folio's own
/// state (<see cref="FolioState"/>: <c>_large_mapcount</c>, <c>_pincount</c> and the MM-id slots) sits beside the
/// memmap. Every reference and lock operation of <see cref="Memmap"/> goes to the head, so a caller holding a tail's
/// pfn counts on the folio, as the kernel's <c>page_folio</c> makes it. With folios off (order 0) the head lookup is
/// one branch on a readonly field and nothing else changes.
/// <para>
/// How mappings are counted depends on the <see cref="MapcountScheme"/>: per page and in total
/// (<see cref="MapcountScheme.PerPage"/>), or in total and per mm in two slots under a lock bit
/// (<see cref="MapcountScheme.MmId"/>, Linux 6.15), where a large folio's pages keep no mapcount of their own.
/// </para>
/// </summary>
internal sealed partial class Memmap
{
    // The MM-id word's bits (the kernel keeps them in _mm_ids beside the ids).
    private const int MmIdsLockBit = 1;
    private const int MmIdsSharedBit = 2;

    private readonly int _folioOrder;
    private readonly MapcountScheme _scheme;
    private readonly FolioState[] _folios;

    /// <summary>The order of large folios; 0 when the machine has none.</summary>
    public int FolioOrder => _folioOrder;

    /// <summary>Pages in a large folio.</summary>
    public int FolioPages => 1 << _folioOrder;

    /// <summary>How large folios count mappings.</summary>
    public MapcountScheme Scheme => _scheme;

    /// <summary>
    /// <c>page_folio</c>: the head of the folio <paramref name="pfn"/> belongs to (itself for an order-0 page). Read
    /// without a scheduling point: the tail bit changes only while nobody can take a reference (a new folio before it
    /// is mapped, a folio being split with its count frozen, a freed one), and a speculative reference is checked
    /// again after it is taken (<see cref="TryGrabPage"/>'s callers).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long Head(long pfn)
        => _folioOrder == 0 || (Volatile.Read(ref Page(pfn).Flags) & (int)PageFlags.Tail) == 0 ? pfn : pfn & ~((1L << _folioOrder) - 1);

    /// <summary><c>folio_test_large</c> for the folio of <paramref name="pfn"/> (no scheduling point, as <see cref="Head"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool IsLarge(long pfn)
        => _folioOrder != 0 && (Volatile.Read(ref Page(pfn).Flags) & (int)(PageFlags.Head | PageFlags.Tail)) != 0;

    /// <summary>
    /// Whether adding and removing mappings of an MM-id folio takes its lock bit (always, in the kernel). Off is a test
    /// knob only (<c>MachineOptions.LargeMapcountLock</c>): the race tests show that the slots then lose track of who
    /// maps the folio.
    /// </summary>
    public bool LargeMapcountLockOn { get; init; } = true;

    /// <summary>
    /// Makes the block at <paramref name="head"/> (fresh from <c>FrameAllocator.AllocateFolio</c>: the head's count 1,
    /// the tails' 0, nobody able to reach any of it) a large folio: head and tail bits, no mappings, no pins, free
    /// slots. Plain stores, published by the entries that will map it (set under the PTL).
    /// </summary>
    public void PrepareFolio(long head)
    {
        Debug.Assert(_folioOrder != 0 && (head & (FolioPages - 1)) == 0, "a folio's head is aligned to its order");
        Interlocked.Or(ref Page(head).Flags, (int)PageFlags.Head);
        for (var pfn = head + 1; pfn < head + FolioPages; pfn++)
        {
            Interlocked.Or(ref Page(pfn).Flags, (int)PageFlags.Tail);
        }

        Folio(head) = new FolioState { LargeMapCount = -1 };
    }

    /// <summary>
    /// Takes <paramref name="refs"/> − 1 more references on a new folio, so that it has one per page its entries will
    /// map (<c>folio_ref_add(folio, nr_pages - 1)</c> after the allocator's one).
    /// </summary>
    public void AddFolioRefs(long head, int refs) => Atomic.Add(ref Page(head).RefCount, refs);

    /// <summary>
    /// <c>folio_add_new_anon_rmap</c> for a new large folio that entries of <paramref name="mmId"/> will map, one per
    /// page: per-page mapcounts (where the scheme keeps them) and the total are
    /// set directly; under <see cref="MapcountScheme.MmId"/> the mm takes the first slot. Enter with the PTL held,
    /// before the entries are set.
    /// </summary>
    public void SetNewAnonFolio(long head, int mmId)
    {
        ref var folio = ref Folio(head);
        if (!CountsMappings)
        {
            // One word for the folio, in its head: one mm maps it ("once"), or it was mapped (the "ever mapped" bit).
            Atomic.Write(ref Page(head).MapCount, 0);
            return;
        }

        if (_scheme == MapcountScheme.PerPage)
        {
            for (var pfn = head; pfn < head + FolioPages; pfn++)
            {
                Volatile.Write(ref Page(pfn).MapCount, 0);
            }
        }
        else
        {
            Volatile.Write(ref folio.MmId0, mmId);
            Volatile.Write(ref folio.MmIdCount0, FolioPages);
        }

        Atomic.Write(ref folio.LargeMapCount, FolioPages - 1);
    }

    /// <summary>
    /// One more entry of <paramref name="mmId"/> maps <paramref name="pfn"/> (<c>folio_add_anon_rmap_pte</c>, or fork's
    /// <c>folio_try_dup_anon_rmap_pte</c>): an order-0 page's mapcount goes up as <see cref="AddMapTestFirst"/>; a large
    /// folio's as its scheme counts. Enter holding the PTL of the entry.
    /// </summary>
    public void AddAnonRmapPte(long pfn, int mmId)
    {
        if (_folioOrder == 0 || !IsLarge(pfn))
        {
            AddMapTestFirst(pfn);
            return;
        }

        var head = Head(pfn);
        ref var folio = ref Folio(head);
        switch (_scheme)
        {
            case MapcountScheme.PerPage:
                Atomic.Increment(ref Page(pfn).MapCount);
                Atomic.Increment(ref folio.LargeMapCount);
                return;
            case MapcountScheme.TriState:
                // An existing folio gains entries only from fork, i.e. in another mm: "maybe more" from now on.
                RaiseTriState(ref Page(head).MapCount);
                return;
            case MapcountScheme.None:
                MarkEverMapped(ref Page(head).MapCount);
                return;
        }

        if (LargeMapcountLockOn)
        {
            LockLargeMapcount(head);
        }

        var before = Atomic.Add(ref folio.LargeMapCount, 1) - 1;
        if (Atomic.Read(ref folio.MmId0) == mmId)
        {
            Atomic.Increment(ref folio.MmIdCount0);
        }
        else if (Atomic.Read(ref folio.MmId1) == mmId)
        {
            Atomic.Increment(ref folio.MmIdCount1);
        }
        else if (Atomic.Read(ref folio.MmId0) == 0)
        {
            ClaimSlot(ref folio.MmId0, ref folio.MmIdCount0, ref folio.MmIds, mmId, othersMapped: before >= 0);
        }
        else if (Atomic.Read(ref folio.MmId1) == 0)
        {
            ClaimSlot(ref folio.MmId1, ref folio.MmIdCount1, ref folio.MmIds, mmId, othersMapped: before >= 0);
        }
        else
        {
            // No slot for a third mm: only the total counts it, and the folio stays "maybe mapped shared".
            Atomic.Or(ref folio.MmIds, MmIdsSharedBit);
            ProtocolEvents.Mark("folio_add_rmap", "pfn 0x{0:x}: no free MM-id slot for mm {2}; maybe shared", pfn, value: mmId);
        }

        if (LargeMapcountLockOn)
        {
            UnlockLargeMapcount(head);
        }
    }

    /// <summary>
    /// An entry of <paramref name="mmId"/> no longer maps <paramref name="pfn"/> (<c>folio_remove_rmap_pte</c>); true
    /// when that was the page's last mapping (for a large folio under <see cref="MapcountScheme.MmId"/>: the folio's).
    /// Enter holding the PTL of the entry, or after the TLB flush of a delayed removal.
    /// </summary>
    public bool RemoveAnonRmapPte(long pfn, int mmId)
    {
        if (_folioOrder == 0 || !IsLarge(pfn))
        {
            return RemoveMapTestLast(pfn);
        }

        if (!CountsMappings)
        {
            // Neither proposal can tell an unmapping of a large folio's last entry from another: nothing changes (the
            // tri-state falls to "not mapped" only by an rmap walk or the free).
            return false;
        }

        var head = Head(pfn);
        ref var folio = ref Folio(head);
        if (_scheme == MapcountScheme.PerPage)
        {
            var last = Atomic.Decrement(ref Page(pfn).MapCount) < 0;
            Atomic.Decrement(ref folio.LargeMapCount);
            return last;
        }

        if (LargeMapcountLockOn)
        {
            LockLargeMapcount(head);
        }

        var after = Atomic.Add(ref folio.LargeMapCount, -1);
        if (Atomic.Read(ref folio.MmId0) == mmId)
        {
            ReleaseSlotMapping(ref folio.MmId0, ref folio.MmIdCount0);
        }
        else if (Atomic.Read(ref folio.MmId1) == mmId)
        {
            ReleaseSlotMapping(ref folio.MmId1, ref folio.MmIdCount1);
        }

        // No longer shared once one mm holds every mapping (a slot's count is never above its mm's real count, so
        // equality with the total means that mm alone maps the folio), or once nothing does.
        var total = after + 1;
        if (total == 0 || Atomic.Read(ref folio.MmIdCount0) == total || Atomic.Read(ref folio.MmIdCount1) == total)
        {
            Atomic.And(ref folio.MmIds, ~MmIdsSharedBit);
        }

        if (LargeMapcountLockOn)
        {
            UnlockLargeMapcount(head);
        }

        return after < 0;
    }

    /// <summary>
    /// <c>page_trans_huge_map_swapcount</c>'s mapcount (≤ 5.8's <c>reuse_swap_page</c>): for a page of a large folio with
    /// per-page mapcounts, the largest of its pages' mapcounts (a write reuses the page only if no page of the folio is
    /// mapped twice); otherwise <see cref="MapCount"/>.
    /// </summary>
    public int LargestPageMapCount(long pfn)
    {
        if (_folioOrder == 0 || _scheme != MapcountScheme.PerPage || !IsLarge(pfn))
        {
            return MapCount(pfn);
        }

        var head = Head(pfn);
        var largest = 0;
        for (var page = head; page < head + FolioPages; page++)
        {
            largest = Math.Max(largest, Atomic.Read(ref Page(page).MapCount) + 1);
        }

        return largest;
    }

    /// <summary><c>folio_mapcount</c>: every entry mapping a page of the folio of <paramref name="pfn"/>.</summary>
    public int FolioMapCount(long pfn)
    {
        Debug.Assert(CountsMappings, "FolioMapCount under a mapcount scheme that keeps no count");
        return _folioOrder != 0 && IsLarge(pfn) ? Atomic.Read(ref Folio(Head(pfn)).LargeMapCount) + 1 : Atomic.Read(ref Page(pfn).MapCount) + 1;
    }

    /// <summary>
    /// "Is the folio of <paramref name="pfn"/> mapped by more than one mm?" as the scheme answers it: an order-0 page
    /// when it is mapped more than once; a large folio by <c>folio_likely_mapped_shared</c>
    /// (<see cref="MapcountScheme.PerPage"/>: mapped at most once, no; more often than it has pages, yes; else whether
    /// its first page is mapped more than once) or <c>folio_maybe_mapped_shared</c> (<see cref="MapcountScheme.MmId"/>:
    /// mapped at most once, no; else the "maybe mapped shared" bit). The proposals: <see cref="MapcountScheme.TriState"/>
    /// says "maybe more" (of a page: more than one entry; of a large folio: more than one mm); <see cref="MapcountScheme.None"/>
    /// says yes unless the page is <c>PageAnonExclusive</c>. None of the four has a false negative.
    /// </summary>
    public bool MaybeMappedShared(long pfn)
    {
        switch (_scheme)
        {
            case MapcountScheme.TriState:
                return Atomic.Read(ref Page(Head(pfn)).MapCount) > 0;
            case MapcountScheme.None:
                return (GetFlags(pfn) & PageFlags.AnonExclusive) == 0;
        }

        if (_folioOrder == 0 || !IsLarge(pfn))
        {
            return MapCount(pfn) > 1;
        }

        var head = Head(pfn);
        var mapcount = Atomic.Read(ref Folio(head).LargeMapCount) + 1;
        if (mapcount <= 1)
        {
            return false;
        }

        if (_scheme == MapcountScheme.MmId)
        {
            return (Atomic.Read(ref Folio(head).MmIds) & MmIdsSharedBit) != 0;
        }

        return mapcount > FolioPages || Atomic.Read(ref Page(head).MapCount) > 0;
    }

    /// <summary>
    /// <c>folio_lock_large_mapcount</c>: the bit lock of <see cref="MapcountScheme.MmId"/> that orders every change of
    /// a large folio's mappings and the reuse test that reads them.
    /// </summary>
    public void LockLargeMapcount(long head)
    {
        Debug.Assert(_scheme == MapcountScheme.MmId, "only MM-id folios have the lock bit");
        while ((Atomic.Or(ref Folio(head).MmIds, MmIdsLockBit) & MmIdsLockBit) != 0)
        {
            Wait.Until((memmap: this, head), static s => (Atomic.Read(ref s.memmap.Folio(s.head).MmIds) & MmIdsLockBit) == 0);
        }
    }

    /// <summary><c>folio_unlock_large_mapcount</c>.</summary>
    public void UnlockLargeMapcount(long head) => Atomic.And(ref Folio(head).MmIds, ~MmIdsLockBit);

    /// <summary>
    /// The MM-id state of the folio at <paramref name="head"/> read under its lock bit, as one snapshot: the total of
    /// mappings, the two slots and the "maybe mapped shared" bit. For the race tests' observer, which checks at every
    /// step that a clear bit means one slot holds every mapping (so "is it shared?" has no false negative).
    /// </summary>
    public (int Total, (int Id, int Count) First, (int Id, int Count) Second, bool Shared) MmIdSnapshot(long head)
    {
        LockLargeMapcount(head);
        ref var folio = ref Folio(head);
        var snapshot = (Atomic.Read(ref folio.LargeMapCount) + 1, (Atomic.Read(ref folio.MmId0), Atomic.Read(ref folio.MmIdCount0)),
            (Atomic.Read(ref folio.MmId1), Atomic.Read(ref folio.MmIdCount1)), (Atomic.Read(ref folio.MmIds) & MmIdsSharedBit) != 0);
        UnlockLargeMapcount(head);
        return snapshot;
    }

    /// <summary>The "maybe mapped shared" bit of an MM-id folio (read with its lock held, or at quiescence).</summary>
    public bool SharedBit(long head) => (Atomic.Read(ref Folio(head).MmIds) & MmIdsSharedBit) != 0;

    /// <summary>The folio's two (mm id, mapcount) slots; id 0 is a free slot.</summary>
    public ((int Id, int Count) First, (int Id, int Count) Second) MmIdSlots(long head)
    {
        ref var folio = ref Folio(head);
        return ((Atomic.Read(ref folio.MmId0), Atomic.Read(ref folio.MmIdCount0)), (Atomic.Read(ref folio.MmId1), Atomic.Read(ref folio.MmIdCount1)));
    }

    /// <summary>Whether the MM-id lock bit is held (for the invariant that nobody holds it at quiescence).</summary>
    public bool LargeMapcountLocked(long head) => (Volatile.Read(ref Folio(head).MmIds) & MmIdsLockBit) != 0;

    /// <summary><c>folio_maybe_dma_pinned</c> of a large folio: its <c>_pincount</c>.</summary>
    public int FolioPinCount(long pfn) => Atomic.Read(ref Folio(Head(pfn)).PinCount);

    /// <summary>
    /// The page's own <c>_mapcount</c> word, +1, read plainly: what a large folio's page counts under
    /// <see cref="MapcountScheme.PerPage"/> (0 under <see cref="MapcountScheme.MmId"/>, which keeps none). For the
    /// invariants and the split.
    /// </summary>
    public int OwnMapCount(long pfn) => Volatile.Read(ref Page(pfn).MapCount) + 1;

    /// <summary>The head's own count word read plainly, and a tail's (always 0 while it is a tail): for the invariants.</summary>
    public int OwnRefCount(long pfn) => Volatile.Read(ref Page(pfn).RefCount);

    /// <summary>
    /// Splits the large folio at <paramref name="head"/> into order-0 pages (<c>__split_huge_page</c>), which the caller
    /// has made possible: it holds the folio's lock and one reference, every mapping of the folio is one of the entries
    /// it counted in <paramref name="mappings"/> (per page) under the PTL it holds, and the folio's count has been
    /// frozen at their sum + 1 (<see cref="FreezeRefs"/>), so no reference can come or go. Each page gets a count of its
    /// own mappings (the head also the caller's reference) and its own mapcount; the tails stop being tails only after
    /// their counts are set, and the head's count is written last, which unfreezes it. Pages nothing maps are written
    /// to <paramref name="unmapped"/> (count 0) for the caller to free; returns how many.
    /// </summary>
    public int SplitFrozenFolio(long head, ReadOnlySpan<int> mappings, Span<long> unmapped)
    {
        Debug.Assert(Volatile.Read(ref Page(head).RefCount) == 0, "splitting a folio whose count is not frozen");
        Debug.Assert(Volatile.Read(ref Folio(head).PinCount) == 0, "splitting a pinned folio");
        Debug.Assert((Volatile.Read(ref Page(head).Flags) & (int)PageFlags.Locked) != 0, "splitting an unlocked folio");
        var freed = 0;
        for (var i = FolioPages - 1; i >= 0; i--)
        {
            var pfn = head + i;
            Debug.Assert(_scheme != MapcountScheme.PerPage || OwnMapCount(pfn) == mappings[i], "a page's mapcount disagrees with its entries");
            Atomic.Write(ref Page(pfn).MapCount, SplitPageWord(mappings[i]));
            if (i == 0)
            {
                break;
            }

            Atomic.Write(ref Page(pfn).RefCount, mappings[i]);
            Atomic.And(ref Page(pfn).Flags, ~(int)PageFlags.Tail);
            if (mappings[i] == 0)
            {
                unmapped[freed++] = pfn;
            }
        }

        Folio(head) = default;
        Atomic.And(ref Page(head).Flags, ~(int)PageFlags.Head);
        Atomic.Write(ref Page(head).RefCount, mappings[0] + 1);
        return freed;
    }

    /// <summary>
    /// Forgets a large folio whose last reference went, before its frames are freed: the tail bits go first (a stale
    /// speculative reader then finds a free order-0 frame), the head bit and the folio state last.
    /// </summary>
    public void ClearFolio(long head)
    {
        Debug.Assert(Volatile.Read(ref Page(head).RefCount) == 0, "clearing a referenced folio");
        for (var pfn = head + 1; pfn < head + FolioPages; pfn++)
        {
            Interlocked.And(ref Page(pfn).Flags, ~(int)PageFlags.Tail);
        }

        Interlocked.And(ref Page(head).Flags, ~(int)PageFlags.Head);
        Folio(head) = default;
    }

    /// <summary>
    /// <c>try_grab_folio_fast</c>: <see cref="TryGrabPage"/> for GUP-fast, which holds no lock that keeps the folio of
    /// <paramref name="pfn"/> from being split or freed between its lookup and the grab. Takes the references on the
    /// head it found, then looks again: if <paramref name="pfn"/> belongs to another folio by then, gives them back and
    /// starts over. When giving them back drops the last reference, <paramref name="stale"/> names the frame the caller
    /// must free (otherwise −1). On an order-0 machine this is <see cref="TryGrabPage"/>.
    /// </summary>
    public bool TryGrabPageSpeculative(long pfn, int refs, bool overflowGuard, out long stale)
    {
        stale = -1;
        if (_folioOrder == 0)
        {
            return TryGrabPage(pfn, refs, overflowGuard);
        }

        var pin = refs == GupPinCountingBias;
        while (true)
        {
            var head = Head(pfn);
            var large = IsLarge(head);
            var add = large && pin ? 1 : refs;
            ref var count = ref Page(head).RefCount;
            var seen = Atomic.Read(ref count);
            if (seen == 0 || (overflowGuard && (seen < 0 || seen > RefcountLimit - add)))
            {
                return false;
            }

            if (Atomic.CompareExchange(ref count, Wrap((long)seen + add), seen) != seen)
            {
                continue;
            }

            if (Head(pfn) == head && IsLarge(head) == large)
            {
                if (large && pin)
                {
                    Atomic.Increment(ref Folio(head).PinCount);
                }

                return true;
            }

            // Split (or freed and reused) between the lookup and the grab: the references went to a page that is no
            // longer this one's folio.
            ProtocolEvents.Mark("try_grab_folio_fast", "pfn 0x{0:x} left folio 0x{2:x} before the grab: give the references back, look again", pfn, value: head);
            if (Atomic.Add(ref count, -add) == 0)
            {
                stale = head;
                return false;
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryGrabFolio(long head, int refs, bool overflowGuard)
    {
        // try_grab_folio for a large folio: a pin is one reference and one _pincount (no bias).
        var pin = refs == GupPinCountingBias;
        var add = pin ? 1 : refs;
        ref var count = ref Page(head).RefCount;
        while (true)
        {
            var seen = Atomic.Read(ref count);
            if (seen == 0 || (overflowGuard && (seen < 0 || seen > RefcountLimit - add)))
            {
                return false;
            }

            if (Atomic.CompareExchange(ref count, Wrap((long)seen + add), seen) == seen)
            {
                if (pin)
                {
                    Atomic.Increment(ref Folio(head).PinCount);
                }

                return true;
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private int GetFolioRefsUnchecked(long head, int refs)
    {
        var pin = refs == GupPinCountingBias;
        var now = Atomic.Add(ref Page(head).RefCount, pin ? 1 : refs);
        if (pin)
        {
            Atomic.Increment(ref Folio(head).PinCount);
        }

        return now;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool PutFolioRefsTestZero(long head, int refs)
    {
        // gup_put_folio: the pin count first, then the reference.
        var pin = refs == GupPinCountingBias;
        if (pin)
        {
            Atomic.Decrement(ref Folio(head).PinCount);
        }

        return Atomic.Add(ref Page(head).RefCount, pin ? -1 : -refs) == 0;
    }

    private static void ClaimSlot(ref int id, ref int count, ref int word, int mmId, bool othersMapped)
    {
        Atomic.Write(ref id, mmId);
        Atomic.Write(ref count, 1);
        if (othersMapped)
        {
            Atomic.Or(ref word, MmIdsSharedBit);
        }
    }

    private static void ReleaseSlotMapping(ref int id, ref int count)
    {
        // A slot counts no more than its mm maps (it was claimed by one of that mm's mappings); it is freed when its
        // count reaches 0, even if the mm maps the folio through mappings the slot never counted.
        if (Atomic.Decrement(ref count) <= 0)
        {
            Atomic.Write(ref count, 0);
            Atomic.Write(ref id, 0);
        }
    }

    private ref FolioState Folio(long head)
        => ref _folios[(head - (BasePfn & ~((long)FolioPages - 1))) >> _folioOrder];

    /// <summary>A large folio's own state (the kernel keeps it in the first tail pages' descriptors).</summary>
    private struct FolioState
    {
        /// <summary><c>_large_mapcount</c>, biased by −1: every entry mapping a page of the folio.</summary>
        public int LargeMapCount;

        /// <summary><c>_pincount</c>: FOLL_PIN pins (each also one reference).</summary>
        public int PinCount;

        /// <summary><c>_mm_ids</c>' lock and "maybe mapped shared" bits.</summary>
        public int MmIds;

        /// <summary>The slots: an mm id (0 = free) and the mappings counted for it.</summary>
        public int MmId0;
        public int MmIdCount0;
        public int MmId1;
        public int MmIdCount1;
    }
}
