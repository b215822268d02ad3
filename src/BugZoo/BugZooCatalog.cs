using System.Globalization;
using Engine;

namespace BugZoo;

/// <summary>
/// The bug zoo (issue 5), in the order of docs/bug-zoo.md's table: historical races and holes of Linux memory
/// management that the engine brings back by switching one knob.
/// </summary>
public static class BugZooCatalog
{
    /// <summary>Every entry.</summary>
    public static IReadOnlyList<ZooEntry> All { get; } =
    [
        new(1, "missed-cow", "CVE-2020-29374: the child's vmsplice reads the parent's store after fork",
            "CowReuse = MapCount",
            "\"gup: document and work around 'COW can break either way' issue\" (17839856fd58, 5.8), then \"mm: do_wp_page() simplification\" (09854ba94c6a, 5.9)",
            ZooBugKind.MissedCow, MissedCow.Events,
            (probe, proposal) => MissedCow.Scenario(CowReuse.AnonExclusive, probe, proposal), proposal => MissedCow.Scenario(CowReuse.MapCount, probe: null, proposal)),
        new(2, "wrong-cow", "a long-term pin loses its page to a COW copy after mprotect R/O then R/W",
            "CowReuse = PageCount",
            "PG_anon_exclusive and FAULT_FLAG_UNSHARE (\"mm/rmap: introduce PG_anon_exclusive\" and the unshare series, 5.19)",
            ZooBugKind.WrongCow, WrongCow.Events,
            (probe, proposal) => WrongCow.Scenario(CowReuse.AnonExclusive, probe, proposal), proposal => WrongCow.Scenario(CowReuse.PageCount, probe: null, proposal)),
        new(3, "torn-pte", "a lockless PAE read pairs halves of two different entries",
            "LocklessPteRetry (with PteLayout.SplitPae)",
            "x86's lockless gup_get_pte (2.6.27), generalised as ptep_get_lockless() (2020)",
            ZooBugKind.TornRead, TornPte.Events,
            (probe, proposal) => TornPte.Scenario(retry: true, probe, proposal), proposal => TornPte.Scenario(retry: false, probe: null, proposal)),
        new(4, "gup-fast-recheck", "GUP-fast pins a frame freed and handed to another process after it read the entry",
            "GupFastRecheck (with BroadcastTlbInvalidate)",
            "\"mm: introduce get_user_pages_fast\" (2.6.27): the entry is read again after the reference is taken, as in every gup_fast since",
            ZooBugKind.GupFastReuse, GupFastReuse.Events,
            (probe, proposal) => GupFastReuse.Scenario(recheck: true, probe, proposal), proposal => GupFastReuse.Scenario(recheck: false, probe: null, proposal)),
        new(5, "pin-during-fork", "a GUP-fast pin taken during fork ends up on a page shared with the child",
            "GupFastForkSeq",
            "\"mm/gup: prevent gup_fast from racing with COW during fork\" (57efa1fe5957, 5.11)",
            ZooBugKind.PinSharedWithChild, PinDuringFork.Events,
            (probe, proposal) => PinDuringFork.Scenario(forkSeq: true, probe, proposal), proposal => PinDuringFork.Scenario(forkSeq: false, probe: null, proposal)),
        new(6, "lost-dirty", "a store through a dirty TLB entry is lost to writeback while the zap has not flushed",
            "DelayRmap",
            "\"mm: delay page_remove_rmap() until after the TLB has been flushed\" (6.2)",
            ZooBugKind.LostStore, LostDirty.Events,
            (probe, proposal) => LostDirty.Scenario(delayRmap: true, flushDirtyUnderPtl: true, probe, proposal: proposal), proposal => LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: true, probe: null, proposal: proposal)),
        new(7, "free-before-flush", "a store through a stale TLB entry reaches a freed frame",
            "FlushBeforeFree",
            "the mmu_gather rule: unhook, invalidate the TLB, then free (tlb_finish_mmu)",
            ZooBugKind.UseAfterFree, StaleTlbStore.Events,
            (probe, proposal) => StaleTlbStore.Scenario(flushBeforeFree: true, probe, proposal), proposal => StaleTlbStore.Scenario(flushBeforeFree: false, probe: null, proposal)),
        new(8, "refcount-overflow", "references wrap _refcount and the unmap frees a page pipes still reference",
            "RefcountOverflowGuard (on a counter shrunk to 15)",
            "\"mm: prevent get_user_pages() from overflowing page refcount\" (5.1)",
            ZooBugKind.RefcountOverflow, RefcountOverflow.Events,
            (probe, proposal) => RefcountOverflow.Scenario(guard: true, probe, proposal), proposal => RefcountOverflow.Scenario(guard: false, probe: null, proposal)),
        new(9, "ro-pin-unshare", "a read-only pin of a page shared after fork misses the process's later store",
            "UnshareOnReadOnlyPin",
            "\"mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a possibly shared anonymous page\" (a7f226604170, 5.19)",
            ZooBugKind.ReadOnlyPinStale, ReadOnlyPinUnshare.Events,
            (probe, proposal) => ReadOnlyPinUnshare.Scenario(unshare: true, probe, proposal), proposal => ReadOnlyPinUnshare.Scenario(unshare: false, probe: null, proposal)),
        new(10, "dirty-cow", "CVE-2016-5195: a forced write to a private read-only file mapping writes the file",
            "ForceWriteCowCheck",
            "\"mm: remove gup_flags FOLL_WRITE games from __get_user_pages()\" (19be0eaffa3a, 4.9, FOLL_COW); since \"mm/gup: fix FOLL_FORCE COW security issue and remove FOLL_COW\" (6.0) the AnonExclusive test",
            ZooBugKind.DirtyCow, DirtyCow.Events,
            (probe, proposal) => DirtyCow.Scenario(cowCheck: true, probe, proposal), proposal => DirtyCow.Scenario(cowCheck: false, probe: null, proposal)),
        new(11, "reclaim-freeze-dirty", "reclaim tests dirty before freezing the refcount: a GUP user's write is freed with the page",
            "FreezeBeforeDirtyTest",
            "__remove_mapping's order since the lockless page cache (2.6.27): freeze the refcount at the expected holders, then test dirty",
            ZooBugKind.SwapDataLost, ReclaimFreezeDirty.Events,
            (probe, proposal) => ReclaimFreezeDirty.Scenario(freezeFirst: true, probe, proposal), proposal => ReclaimFreezeDirty.Scenario(freezeFirst: false, probe: null, proposal)),
        new(12, "batched-flush-mprotect", "mprotect returns while reclaim's deferred TLB flush leaves a writable translation: a later store lands",
            "FlushTlbBatchedPending",
            "\"mm, mprotect: flush TLB if potentially racing with a parallel reclaim leaving stale TLB entries\" (3ea277194daa, 4.13)",
            ZooBugKind.StoreAfterMprotect, BatchedFlushMprotect.Events,
            (probe, proposal) => BatchedFlushMprotect.Scenario(flushBatchedPending: true, probe, proposal), proposal => BatchedFlushMprotect.Scenario(flushBatchedPending: false, probe: null, proposal)),
        new(13, "swap-missed-cow", "CVE-2020-29374 through swap: do_swap_page's reuse_swap_page() ignores the child's pipe reference",
            "CowReuse = PageCount with SwapReuse = ReuseSwapPage (Linux 5.9-5.17)",
            "\"mm: streamline COW logic in do_swap_page()\" (c145e0b47c77, 5.18): reuse only on page_count 1 after swap_free",
            ZooBugKind.SwapMissedCow, SwapMissedCow.Events,
            (probe, proposal) => SwapMissedCow.Scenario(SwapReuse.PageCount, probe, proposal), proposal => SwapMissedCow.Scenario(SwapReuse.ReuseSwapPage, probe: null, proposal)),
        new(14, "swap-lost-write", "a FOLL_GET write reference survives swap-out; the swap-in maps the page read-only and the next write copies it away from the I/O",
            "CowReuse = PageCount with SwapReuse = PageCount (Linux 5.18)",
            "\"mm/swap: remember PG_anon_exclusive via a swp pte bit\" (1493a1913e34, 5.19)",
            ZooBugKind.SwapWriteLost, SwapLostWrite.Events,
            (probe, proposal) => SwapLostWrite.Scenario(CowReuse.AnonExclusive, probe, proposal), proposal => SwapLostWrite.Scenario(CowReuse.PageCount, probe: null, proposal)),
        new(15, "reclaim-pinned", "reclaim swaps out a long-term pinned page; the write after the swap-in copies it away from the pin",
            "ReclaimSkipsMaybePinned (with CowReuse = PageCount, SwapReuse = ReuseSwapPage)",
            "\"mm: don't put pinned pages into the swap cache\" (feb889fb40fa, 5.11); from 5.19 folio_try_share_anon_rmap refuses too",
            ZooBugKind.PinDiverged, ReclaimPinned.Events,
            (probe, proposal) => ReclaimPinned.Scenario(CowReuse.PageCount, skipPinned: true, probe, proposal), proposal => ReclaimPinned.Scenario(CowReuse.PageCount, skipPinned: false, probe: null, proposal)),
        new(16, "swap-skip-cache-aba", "two swap-ins that skip the swap cache read one slot; the slot is reused and the second maps a stale copy",
            "SwapcachePrepareWhenSkipping (with SynchronousSwapDevice)",
            "\"mm/swap: fix race when skipping swapcache\" (13ddaf26be32, 6.8): swapcache_prepare claims the entry for the whole swap-in",
            ZooBugKind.SwapSkipCacheStale, SwapSkipCacheAba.Events,
            (probe, proposal) => SwapSkipCacheAba.Scenario(claim: true, probe, proposal), proposal => SwapSkipCacheAba.Scenario(claim: false, probe: null, proposal)),
    ];

    /// <summary>The entry called <paramref name="name"/>, or numbered so.</summary>
    public static ZooEntry Get(string name) => All.FirstOrDefault(e => e.Name == name || e.Number.ToString(CultureInfo.InvariantCulture) == name)
        ?? throw new ArgumentException($"No bug-zoo entry '{name}'. Known: {string.Join(", ", All.Select(e => $"{e.Number} {e.Name}"))}.", nameof(name));
}
