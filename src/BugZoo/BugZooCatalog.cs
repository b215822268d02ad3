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
            probe => MissedCow.Scenario(CowReuse.AnonExclusive, probe), MissedCow.Scenario(CowReuse.MapCount, probe: null)),
        new(2, "wrong-cow", "a long-term pin loses its page to a COW copy after mprotect R/O then R/W",
            "CowReuse = PageCount",
            "PG_anon_exclusive and FAULT_FLAG_UNSHARE (\"mm/rmap: introduce PG_anon_exclusive\" and the unshare series, 5.19)",
            ZooBugKind.WrongCow, WrongCow.Events,
            probe => WrongCow.Scenario(CowReuse.AnonExclusive, probe), WrongCow.Scenario(CowReuse.PageCount, probe: null)),
        new(3, "torn-pte", "a lockless PAE read pairs halves of two different entries",
            "LocklessPteRetry (with PteLayout.SplitPae)",
            "x86's lockless gup_get_pte (2.6.27), generalised as ptep_get_lockless() (2020)",
            ZooBugKind.TornRead, TornPte.Events,
            probe => TornPte.Scenario(retry: true, probe), TornPte.Scenario(retry: false, probe: null)),
        new(4, "gup-fast-recheck", "GUP-fast pins a frame freed and handed to another process after it read the entry",
            "GupFastRecheck (with BroadcastTlbInvalidate)",
            "\"mm: introduce get_user_pages_fast\" (2.6.27): the entry is read again after the reference is taken, as in every gup_fast since",
            ZooBugKind.GupFastReuse, GupFastReuse.Events,
            probe => GupFastReuse.Scenario(recheck: true, probe), GupFastReuse.Scenario(recheck: false, probe: null)),
        new(5, "pin-during-fork", "a GUP-fast pin taken during fork ends up on a page shared with the child",
            "GupFastForkSeq",
            "\"mm/gup: prevent gup_fast from racing with COW during fork\" (57efa1fe5957, 5.11)",
            ZooBugKind.PinSharedWithChild, PinDuringFork.Events,
            probe => PinDuringFork.Scenario(forkSeq: true, probe), PinDuringFork.Scenario(forkSeq: false, probe: null)),
        new(6, "lost-dirty", "a store through a dirty TLB entry is lost to writeback while the zap has not flushed",
            "DelayRmap",
            "\"mm: delay page_remove_rmap() until after the TLB has been flushed\" (6.2)",
            ZooBugKind.LostStore, LostDirty.Events,
            probe => LostDirty.Scenario(delayRmap: true, flushDirtyUnderPtl: true, probe), LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: true, probe: null)),
        new(7, "free-before-flush", "a store through a stale TLB entry reaches a freed frame",
            "FlushBeforeFree",
            "the mmu_gather rule: unhook, invalidate the TLB, then free (tlb_finish_mmu)",
            ZooBugKind.UseAfterFree, StaleTlbStore.Events,
            probe => StaleTlbStore.Scenario(flushBeforeFree: true, probe), StaleTlbStore.Scenario(flushBeforeFree: false, probe: null)),
        new(8, "refcount-overflow", "references wrap _refcount and the unmap frees a page pipes still reference",
            "RefcountOverflowGuard (on a counter shrunk to 15)",
            "\"mm: prevent get_user_pages() from overflowing page refcount\" (5.1)",
            ZooBugKind.RefcountOverflow, RefcountOverflow.Events,
            probe => RefcountOverflow.Scenario(guard: true, probe), RefcountOverflow.Scenario(guard: false, probe: null)),
        new(9, "ro-pin-unshare", "a read-only pin of a page shared after fork misses the process's later store",
            "UnshareOnReadOnlyPin",
            "\"mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a possibly shared anonymous page\" (a7f226604170, 5.19)",
            ZooBugKind.ReadOnlyPinStale, ReadOnlyPinUnshare.Events,
            probe => ReadOnlyPinUnshare.Scenario(unshare: true, probe), ReadOnlyPinUnshare.Scenario(unshare: false, probe: null)),
        new(10, "dirty-cow", "CVE-2016-5195: a forced write to a private read-only file mapping writes the file",
            "ForceWriteCowCheck",
            "\"mm: remove gup_flags FOLL_WRITE games from __get_user_pages()\" (19be0eaffa3a, 4.9, FOLL_COW); since \"mm/gup: fix FOLL_FORCE COW security issue and remove FOLL_COW\" (6.0) the AnonExclusive test",
            ZooBugKind.DirtyCow, DirtyCow.Events,
            probe => DirtyCow.Scenario(cowCheck: true, probe), DirtyCow.Scenario(cowCheck: false, probe: null)),
        new(11, "reclaim-freeze-dirty", "reclaim tests dirty before freezing the refcount: a GUP user's write is freed with the page",
            "FreezeBeforeDirtyTest",
            "__remove_mapping's order since the lockless page cache (2.6.27): freeze the refcount at the expected holders, then test dirty",
            ZooBugKind.SwapDataLost, ReclaimFreezeDirty.Events,
            probe => ReclaimFreezeDirty.Scenario(freezeFirst: true, probe), ReclaimFreezeDirty.Scenario(freezeFirst: false, probe: null)),
        new(12, "batched-flush-mprotect", "mprotect returns while reclaim's deferred TLB flush leaves a writable translation: a later store lands",
            "FlushTlbBatchedPending",
            "\"mm, mprotect: flush TLB if potentially racing with a parallel reclaim leaving stale TLB entries\" (3ea277194daa, 4.13)",
            ZooBugKind.StoreAfterMprotect, BatchedFlushMprotect.Events,
            probe => BatchedFlushMprotect.Scenario(flushBatchedPending: true, probe), BatchedFlushMprotect.Scenario(flushBatchedPending: false, probe: null)),
    ];

    /// <summary>The entry called <paramref name="name"/>, or numbered so.</summary>
    public static ZooEntry Get(string name) => All.FirstOrDefault(e => e.Name == name || e.Number.ToString(CultureInfo.InvariantCulture) == name)
        ?? throw new ArgumentException($"No bug-zoo entry '{name}'. Known: {string.Join(", ", All.Select(e => $"{e.Number} {e.Name}"))}.", nameof(name));
}
