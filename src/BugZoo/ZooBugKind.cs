using Engine.Invariants;

namespace BugZoo;

/// <summary>
/// The kinds of bug the zoo's scenarios state when an assertion fails (<c>Specification.Assert(condition, kind,
/// message)</c>), carried to the report as <c>BugReport.Category</c>. Each entry declares the kind its bug is
/// (<see cref="ZooEntry.Kind"/>); a run that fails with any other kind, or with none, fails for another reason. A
/// broken machine invariant is reported with its <see cref="ViolationKind"/>'s name (<see cref="ZooScenario.AssertInvariants"/>).
/// </summary>
public static class ZooBugKind
{
    /// <summary>Entry 1 (CVE-2020-29374): the child's reference to a page reads what the parent stored after fork.</summary>
    public const string MissedCow = nameof(MissedCow);

    /// <summary>Entry 2: a write fault copied the page away from a pin.</summary>
    public const string WrongCow = nameof(WrongCow);

    /// <summary>Entry 3: a lockless read returned a present entry pairing halves of two different entries.</summary>
    public const string TornRead = nameof(TornRead);

    /// <summary>Entry 4: GUP-fast pinned a frame that was freed and given to another process after it read the entry.</summary>
    public const string GupFastReuse = nameof(GupFastReuse);

    /// <summary>Entry 5: a page pinned during fork was shared with the child, and the parent's write copied it away from the pin.</summary>
    public const string PinSharedWithChild = nameof(PinSharedWithChild);

    /// <summary>Entry 6: a store is missing from the backing store after everything was written back.</summary>
    public const string LostStore = nameof(LostStore);

    /// <summary>Entry 7: an access reached a freed frame through a stale translation (the invariant checker's kind too).</summary>
    public const string UseAfterFree = nameof(ViolationKind.UseAfterFree);

    /// <summary>Entry 8: references wrapped the refcount and the page was freed while they remained.</summary>
    public const string RefcountOverflow = nameof(RefcountOverflow);

    /// <summary>Entry 9: a read-only pin holds a page the process no longer maps, and misses its later store.</summary>
    public const string ReadOnlyPinStale = nameof(ReadOnlyPinStale);

    /// <summary>Entry 10 (CVE-2016-5195): a forced write to a private read-only file mapping reached the page cache.</summary>
    public const string DirtyCow = nameof(DirtyCow);

    /// <summary>Entry 11: what a GUP user wrote into a page is lost: reclaim freed the page without writing it to swap again.</summary>
    public const string SwapDataLost = nameof(SwapDataLost);

    /// <summary>Entry 12: a store through a stale writable translation succeeded after mprotect(PROT_READ) returned.</summary>
    public const string StoreAfterMprotect = nameof(StoreAfterMprotect);

    /// <summary>Entry 13: the child's reference to a page swapped out at fork reads what the parent stored after fork.</summary>
    public const string SwapMissedCow = nameof(SwapMissedCow);

    /// <summary>Entry 14: what an I/O wrote through a GUP reference is missing from the process's memory after a swap round trip.</summary>
    public const string SwapWriteLost = nameof(SwapWriteLost);

    /// <summary>Entry 15: a long-term pin no longer sees the process's stores: reclaim swapped the pinned page out.</summary>
    public const string PinDiverged = nameof(PinDiverged);

    /// <summary>Entry 16: a swap-in that skipped the swap cache mapped a stale copy of the page: a store is lost.</summary>
    public const string SwapSkipCacheStale = nameof(SwapSkipCacheStale);

    /// <summary>Entry 17: the parent's write reused a page of a large folio the child still maps, and the child reads the store.</summary>
    public const string SharedFolioReused = nameof(SharedFolioReused);

    /// <summary>The child sees a store its parent made after fork.</summary>
    public const string ChildSeesParentStore = nameof(ChildSeesParentStore);

    /// <summary>The process does not see what a device wrote through a pin.</summary>
    public const string DeviceStoreLost = nameof(DeviceStoreLost);

    /// <summary>A pin reads neither the data it pinned nor the zero page.</summary>
    public const string PinReadsGarbage = nameof(PinReadsGarbage);

    /// <summary>A scenario could not set itself up as it needs to.</summary>
    public const string ScenarioSetup = nameof(ScenarioSetup);
}
