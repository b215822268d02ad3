using System.Diagnostics;
using System.Runtime.CompilerServices;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Memory;

/// <summary>
/// The memmap: a page descriptor per frame, indexed by pfn, and the counting protocol on it.
/// <para>
/// <c>_refcount</c> counts every holder (each PTE, each cache membership, each get and pin, each batch); 0 means
/// free. Speculative holders use <see cref="TryGetPage"/> (add-unless-zero, refusing a count that has wrapped
/// negative: the 2019 overflow hardening). <c>_mapcount</c> counts PTEs and is biased by −1: the first mapping is
/// an increment that reaches 0 (<see cref="AddMapTestFirst"/>), the last unmapping a decrement that goes negative
/// (<see cref="RemoveMapTestLast"/>); a brand-new private anon page is set to 0 directly
/// (<see cref="SetNewAnonMap"/>). Pairing rule: raise the refcount before the mapcount when mapping, drop it after
/// the mapcount when unmapping.
/// </para>
/// </summary>
internal sealed partial class Memmap
{
    private readonly PageDescriptor[] _pages;

    // An anonymous page's mapping: the anon_vma object itself, beside the descriptor (a long cannot hold a reference).
    private readonly IAnonMapping?[] _anonMappings;

    // Checker bookkeeping, not protocol state (see AccountGup): per page, references in the low 40 bits and pins
    // above, so that one atomic add keeps both.
    private readonly long[] _gupHeld;
    private const int GupPinShift = 40;

    public Memmap(long basePfn, int frames, int folioOrder = 0, MapcountScheme scheme = MapcountScheme.PerPage)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(frames);
        ArgumentOutOfRangeException.ThrowIfNegative(basePfn);
        ArgumentOutOfRangeException.ThrowIfNegative(folioOrder);
        BasePfn = basePfn;
        _folioOrder = folioOrder;
        _scheme = scheme;
        _folios = folioOrder == 0 ? [] : new FolioState[(frames >> folioOrder) + 2];
        _pages = new PageDescriptor[frames];
        _anonMappings = new IAnonMapping?[frames];
        _gupHeld = new long[frames];
        for (var i = 0; i < frames; i++)
        {
            _pages[i].MapCount = -1;
        }
    }

    /// <summary>The pfn of the first frame.</summary>
    public long BasePfn { get; }

    /// <summary>Number of frames.</summary>
    public int Frames => _pages.Length;

    /// <summary>True when <paramref name="pfn"/> names a frame of this machine.</summary>
    public bool Contains(long pfn) => (ulong)(pfn - BasePfn) < (ulong)_pages.Length;

    /// <summary>The descriptor of <paramref name="pfn"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref PageDescriptor Page(long pfn)
    {
        Debug.Assert(Contains(pfn), "pfn outside the memmap");
        return ref _pages[pfn - BasePfn];
    }

    /// <summary>
    /// Makes <paramref name="pfn"/> a reserved frame (<c>PG_reserved</c>) with <paramref name="flags"/> as well: one
    /// reference that is never dropped, so it is never freed. For the zero page, before the machine runs.
    /// </summary>
    public void Reserve(long pfn, PageFlags flags)
    {
        Page(pfn).RefCount = 1;
        Page(pfn).Flags = (int)(PageFlags.Reserved | flags);
    }

    /// <summary><c>page_count</c>.</summary>
    public int PageCount(long pfn) => Atomic.Read(ref Page(Head(pfn)).RefCount);

    /// <summary>
    /// <c>page_mapcount</c>: the number of PTEs mapping the page. Only the schemes that count mappings have it
    /// (<see cref="CountsMappings"/>); under the others a caller asks <see cref="MaybeMapped"/>, or walks the rmap.
    /// </summary>
    public int MapCount(long pfn)
    {
        Debug.Assert(CountsMappings, "MapCount under a mapcount scheme that keeps no count");
        return _folioOrder != 0 && _scheme == MapcountScheme.MmId && IsLarge(pfn) ? FolioMapCount(pfn) : Atomic.Read(ref Page(pfn).MapCount) + 1;
    }

    /// <summary><c>get_page</c>: a new reference on a page the caller already holds a reference to.</summary>
    public void GetPage(long pfn)
    {
        var now = Atomic.Increment(ref Page(Head(pfn)).RefCount);
        Debug.Assert(now > 1, "get_page on a page nobody held");
    }

    /// <summary>
    /// <c>try_get_page</c> / <c>folio_try_get</c>: a reference on the folio of a page found without holding one. Fails on
    /// a free page (count 0, or frozen) and on a count that has wrapped negative, so a reference overflow cannot reach
    /// a free. The reference goes to the head the page's folio had at the lookup; if a split made the page a folio of
    /// its own before the reference was taken, it is given back and the lookup starts again, as the kernel re-checks
    /// <c>page_folio</c> after <c>folio_try_get</c>. Giving it back may drop the last reference of the old head (a page
    /// of its own by then, which nothing else holds any more): it is then <paramref name="orphan"/>, for the caller to
    /// free, and the get fails; otherwise <paramref name="orphan"/> is −1.
    /// </summary>
    public bool TryGetPage(long pfn, out long orphan)
    {
        orphan = -1;
        while (true)
        {
            var head = Head(pfn);
            ref var count = ref Page(head).RefCount;
            var seen = Atomic.Read(ref count);
            if (seen <= 0)
            {
                return false;
            }

            if (Atomic.CompareExchange(ref count, seen + 1, seen) != seen)
            {
                continue;
            }

            if (_folioOrder == 0 || Head(pfn) == head)
            {
                return true;
            }

            ProtocolEvents.Mark("folio_try_get", "pfn 0x{0:x} left folio 0x{2:x} before the reference: give it back, look again", pfn, value: head);
            if (Atomic.Decrement(ref count) == 0)
            {
                orphan = head;
                return false;
            }
        }
    }

    /// <summary>
    /// <c>GUP_PIN_COUNTING_BIAS</c>: what one pin adds to the refcount of a small page, so that
    /// <see cref="MaybeDmaPinned"/> can tell pinned pages from merely referenced ones.
    /// </summary>
    public const int GupPinCountingBias = 1024;

    /// <summary>
    /// <c>try_grab_folio</c>: <paramref name="refs"/> references (1 for a get, <see cref="GupPinCountingBias"/> for a pin)
    /// on a page found without holding one, refused on a free page. When <paramref name="overflowGuard"/> is on it is
    /// also refused, changing nothing, when the count is not positive or when the new references would take it past
    /// <see cref="RefcountLimit"/>. That is stricter than the kernel's 2019 hardening, which refuses only once the count
    /// has already wrapped to zero or below (so one more pin can still carry it across the sign): here the count never
    /// wraps while the guard is on. Off, the count wraps as the real 32-bit counter does.
    /// </summary>
    public bool TryGrabPage(long pfn, int refs, bool overflowGuard)
    {
        if (_folioOrder != 0 && IsLarge(pfn))
        {
            return TryGrabFolio(Head(pfn), refs, overflowGuard);
        }

        ref var count = ref Page(pfn).RefCount;
        while (true)
        {
            var seen = Atomic.Read(ref count);
            if (seen == 0 || (overflowGuard && (seen < 0 || seen > RefcountLimit - refs)))
            {
                return false;
            }

            if (Atomic.CompareExchange(ref count, Wrap((long)seen + refs), seen) == seen)
            {
                return true;
            }
        }
    }

    /// <summary>
    /// A plain <c>get_page</c> of <paramref name="refs"/> references on a page the caller knows is mapped (under its
    /// PTL): what GUP's slow path did before the 2019 overflow guard. Wraps like the real counter. Returns the new count.
    /// </summary>
    public int GetPageRefsUnchecked(long pfn, int refs)
    {
        if (_folioOrder != 0 && IsLarge(pfn))
        {
            return GetFolioRefsUnchecked(Head(pfn), refs);
        }

        ref var count = ref Page(pfn).RefCount;
        while (true)
        {
            var seen = Atomic.Read(ref count);
            var now = Wrap((long)seen + refs);
            if (Atomic.CompareExchange(ref count, now, seen) == seen)
            {
                return now;
            }
        }
    }

    /// <summary>Drops <paramref name="refs"/> references (<c>gup_put_folio</c>); true when they were the last.</summary>
    public bool PutPageRefsTestZero(long pfn, int refs)
    {
        if (_folioOrder != 0 && IsLarge(pfn))
        {
            return PutFolioRefsTestZero(Head(pfn), refs);
        }

        ref var count = ref Page(pfn).RefCount;
        if (RefcountLimit == int.MaxValue)
        {
            // The real width: one atomic subtract, which wraps as the 32-bit count does.
            return Atomic.Add(ref count, -refs) == 0;
        }

        while (true)
        {
            var seen = Atomic.Read(ref count);
            var now = Wrap((long)seen - refs);
            if (Atomic.CompareExchange(ref count, now, seen) == seen)
            {
                return now == 0;
            }
        }
    }

    /// <summary>
    /// The counter's width (<c>MachineOptions.RefcountLimit</c>): a count past the limit wraps to the negative end, as a
    /// 32-bit count wraps past 2^31 − 1.
    /// </summary>
    public int RefcountLimit { get; init; } = int.MaxValue;

    /// <summary>
    /// <paramref name="value"/> reduced into the counter's range [−limit − 1, limit], as two's complement arithmetic of
    /// that width reduces it: modulo 2 × (limit + 1), whatever the distance (a pin adds 1024, more than a small test
    /// limit's whole range).
    /// </summary>
    private int Wrap(long value)
    {
        var half = (long)RefcountLimit + 1;
        var span = half * 2;
        return (int)((((value + half) % span) + span) % span - half);
    }

    /// <summary><c>folio_maybe_dma_pinned</c> for a small page: the count has reached the pin bias (false positives allowed, never false negatives).</summary>
    public bool MaybeDmaPinned(long pfn) => _folioOrder != 0 && IsLarge(pfn) ? FolioPinCount(pfn) > 0 : (uint)PageCount(pfn) >= GupPinCountingBias;

    /// <summary>
    /// Bookkeeping for <c>CheckInvariants</c> only (no protocol reads it): references and pins held by live
    /// <c>PageReferences</c> and <c>PinnedPages</c>, per page.
    /// </summary>
    public void AccountGup(long pfn, int refs, int pins)
        => Atomic.Add(ref _gupHeld[pfn - BasePfn], refs + ((long)pins << GupPinShift));

    /// <summary>
    /// Takes back one pin of <paramref name="refs"/> references from the bookkeeping of <paramref name="pfn"/> if it
    /// records at least one pin; false, changing nothing, if it records none (the check that refuses an unpin of a frame
    /// no one pinned). Atomic, so two unpins racing for one pin cannot both succeed.
    /// </summary>
    public bool TryUnaccountPin(long pfn, int refs)
    {
        ref var held = ref _gupHeld[pfn - BasePfn];
        while (true)
        {
            var seen = Atomic.Read(ref held);
            if (seen >> GupPinShift <= 0)
            {
                return false;
            }

            if (Atomic.CompareExchange(ref held, seen - refs - (1L << GupPinShift), seen) == seen)
            {
                return true;
            }
        }
    }

    /// <summary>The references and pins live GUP handles hold on <paramref name="pfn"/> (see <see cref="AccountGup"/>).</summary>
    public (int Refs, int Pins) GupHeld(long pfn)
    {
        // Never negative: a release subtracts what its take added, after it.
        var held = Atomic.Read(ref _gupHeld[pfn - BasePfn]);
        return ((int)(held & ((1L << GupPinShift) - 1)), (int)(held >> GupPinShift));
    }

    /// <summary><c>put_page_testzero</c>: drops a reference; true when it was the last (the caller frees the frame).</summary>
    public bool PutPageTestZero(long pfn)
    {
        var now = Atomic.Decrement(ref Page(Head(pfn)).RefCount);
        Debug.Assert(now >= 0, "put_page on a free page");
        return now == 0;
    }

    /// <summary><c>folio_ref_freeze</c>: 0 if and only if the count was exactly <paramref name="expected"/>.</summary>
    public bool FreezeRefs(long pfn, int expected) => Atomic.CompareExchange(ref Page(Head(pfn)).RefCount, 0, expected) == expected;

    /// <summary>
    /// Maps the order-0 page once more; true for the first mapping (−1 → 0). Under <see cref="MapcountScheme.TriState"/>
    /// the state rises instead, and under <see cref="MapcountScheme.None"/> the "ever mapped" bit is set (true when this
    /// set it).
    /// </summary>
    public bool AddMapTestFirst(long pfn) => _scheme switch
    {
        MapcountScheme.TriState => RaiseTriState(ref Page(pfn).MapCount),
        MapcountScheme.None => MarkEverMapped(ref Page(pfn).MapCount),
        _ => Atomic.Increment(ref Page(pfn).MapCount) == 0,
    };

    /// <summary>
    /// Unmaps the order-0 page once; true when it is known to be the last mapping (0 → −1, <c>atomic_add_negative</c>).
    /// Under <see cref="MapcountScheme.TriState"/> "once" falls to "not mapped" and "maybe more" stays; under
    /// <see cref="MapcountScheme.None"/> nothing is written and the answer is always false (unknown).
    /// </summary>
    public bool RemoveMapTestLast(long pfn)
    {
        switch (_scheme)
        {
            case MapcountScheme.TriState:
                return LowerTriState(ref Page(pfn).MapCount);
            case MapcountScheme.None:
                return false;
        }

        var now = Atomic.Decrement(ref Page(pfn).MapCount);
        Debug.Assert(now >= -1, "mapcount underflow");
        return now < 0;
    }

    /// <summary>
    /// <c>folio_add_new_anon_rmap</c>: a new private page, mapped once, set directly (the tri-state's "once" and the
    /// "ever mapped" bit are the same word value, 0).
    /// </summary>
    public void SetNewAnonMap(long pfn) => Atomic.Write(ref Page(pfn).MapCount, 0);

    /// <summary>An anonymous page's <c>mapping</c> and <c>index</c> (<c>__folio_set_anon</c>). Enter before the page is mapped.</summary>
    public void SetAnonMapping(long pfn, IAnonMapping anonVma, long index)
    {
        Atomic.Write(ref _anonMappings[pfn - BasePfn], anonVma);
        Atomic.Write(ref Page(pfn).Index, index);
    }

    /// <summary><c>folio_move_anon_rmap</c>: an anonymous page now belongs to <paramref name="anonVma"/>. Enter with the page locked.</summary>
    public void MoveAnonMapping(long pfn, IAnonMapping anonVma)
    {
        if (Checks.Enabled)
        {
            Contract.That((PeekFlags(Head(pfn)) & PageFlags.Locked) != 0, "the page lock");
        }

        Atomic.Write(ref _anonMappings[pfn - BasePfn], anonVma);
    }

    /// <summary>An anonymous page's anon_vma, or null (read without a lock, as <c>folio_anon</c>; the object stays valid).</summary>
    public IAnonMapping? AnonMappingOf(long pfn) => Atomic.Read(ref _anonMappings[pfn - BasePfn]);

    /// <summary>Forgets the page's anon_vma (the page is being freed).</summary>
    public void ClearAnonMapping(long pfn) => Atomic.Write(ref _anonMappings[pfn - BasePfn], null);

    /// <summary>The page's flags.</summary>
    public PageFlags GetFlags(long pfn) => (PageFlags)Atomic.Read(ref Page(pfn).Flags);

    /// <summary>
    /// The page's flags read plainly, without a scheduling point: for contract checks (is the page locked?) only,
    /// never for a protocol decision, so that checks on or off leave the tester's schedules unchanged.
    /// </summary>
    public PageFlags PeekFlags(long pfn) => (PageFlags)Volatile.Read(ref Page(pfn).Flags);

    /// <summary>True when every flag of <paramref name="flags"/> is set.</summary>
    public bool TestFlags(long pfn, PageFlags flags) => (GetFlags(pfn) & flags) == flags;

    /// <summary>Sets <paramref name="flags"/>; returns the flags as they were.</summary>
    public PageFlags SetFlags(long pfn, PageFlags flags) => (PageFlags)Atomic.Or(ref Page(pfn).Flags, (int)flags);

    /// <summary>Clears <paramref name="flags"/>; returns the flags as they were.</summary>
    public PageFlags ClearFlags(long pfn, PageFlags flags) => (PageFlags)Atomic.And(ref Page(pfn).Flags, ~(int)flags);

    /// <summary>
    /// Sets <paramref name="set"/> and clears <paramref name="clear"/> among the aging flags (<see cref="PageFlags.Active"/>,
    /// <see cref="PageFlags.Referenced"/>) without a scheduling point: only reclaim reads them, to choose which page to
    /// try next, and two reclaimers racing on them change nothing but that choice. So aging adds no step to the
    /// tester's schedules.
    /// </summary>
    public void Age(long pfn, PageFlags set, PageFlags clear)
    {
        Debug.Assert(((set | clear) & ~(PageFlags.Active | PageFlags.Referenced)) == 0, "not an aging flag");
        ref var flags = ref Page(pfn).Flags;
        if (clear != 0)
        {
            Interlocked.And(ref flags, ~(int)clear);
        }

        if (set != 0)
        {
            Interlocked.Or(ref flags, (int)set);
        }
    }

    /// <summary>Sets one flag; true when it was already set (<c>test_and_set_bit</c>).</summary>
    public bool TestAndSetFlag(long pfn, PageFlags flag) => (SetFlags(pfn, flag) & flag) != 0;

    /// <summary>Clears one flag; true when it was set (<c>test_and_clear_bit</c>).</summary>
    public bool TestAndClearFlag(long pfn, PageFlags flag) => (ClearFlags(pfn, flag) & flag) != 0;

    /// <summary>
    /// <c>folio_lock</c>: takes the page lock (the <see cref="PageFlags.Locked"/> bit), waiting while another holder
    /// has it. Enter with no spinlock held (it sleeps in the kernel).
    /// </summary>
    public void LockPage(long pfn)
    {
        pfn = Head(pfn);
        while (TestAndSetFlag(pfn, PageFlags.Locked))
        {
            Wait.Until((memmap: this, pfn), static s => !s.memmap.TestFlags(s.pfn, PageFlags.Locked));
        }
    }

    /// <summary><c>folio_trylock</c>: true when the page lock was free and is now held.</summary>
    public bool TryLockPage(long pfn) => !TestAndSetFlag(Head(pfn), PageFlags.Locked);

    /// <summary><c>folio_unlock</c>.</summary>
    public void UnlockPage(long pfn)
    {
        var was = ClearFlags(Head(pfn), PageFlags.Locked);
        Debug.Assert((was & PageFlags.Locked) != 0, "unlocking a page that is not locked");
    }
}
