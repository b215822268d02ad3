using BugZoo;
using Engine.Systematic;
using Engine.Tests.Machine;
using Engine.Tests.PageTables;

namespace Engine.Tests;

/// <summary>
/// The engine's race scenarios as <c>[SystematicTest]</c> bodies, so that any budget can be run from the command
/// line, for example
/// <c>engine test concurrency-tests/Engine.Tests/bin/Release/net10.0/Engine.Tests.dll --method EngineRaceScenarios.FreeBeforeFlush --iterations 100000</c>.
/// Each pair is the protocol on (must pass) and the knob off (<c>ExpectBug</c>: must be found). The xunit tests run
/// the same bodies with the CI budgets.
/// </summary>
public static class EngineRaceScenarios
{
    /// <summary>Store through a cached TLB entry vs munmap, flush before free.</summary>
    [SystematicTest]
    public static void FlushBeforeFree() => StaleTlbStore.Scenario(flushBeforeFree: true, probe: null)();

    /// <summary>The same with <c>FlushBeforeFree</c> off: use-after-free.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void FreeBeforeFlush() => StaleTlbStore.Scenario(flushBeforeFree: false, probe: null)();

    /// <summary>TLB-miss walk vs madvise shootdown, with the walk-in-flight guard.</summary>
    [SystematicTest]
    public static void WalkInFlightGuarded() => MachineRaceTests.WalkVersusShootdown(guard: true, onReadDone: null)();

    /// <summary>The same without the guard: a stale translation survives.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void WalkInFlightUnguarded() => MachineRaceTests.WalkVersusShootdown(guard: false, onReadDone: null)();

    /// <summary>Two concurrent madvise(DONTNEED) of one page, with the nested flush.</summary>
    [SystematicTest]
    public static void NestedTlbFlush() => MachineRaceTests.ConcurrentMadvise(nestedFlush: true, onOverlap: null)();

    /// <summary>The same without it: old data read after madvise returned.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void NoNestedTlbFlush() => MachineRaceTests.ConcurrentMadvise(nestedFlush: false, onOverlap: null)();

    /// <summary>Fork vs a parent thread's stores, with the parent's TLB flushed before fork returns.</summary>
    [SystematicTest]
    public static void ForkFlushesParent() => ForkRaceTests.ForkVersusParentWrite(flush: true, onWriteDuringFork: null)();

    /// <summary>The same without the flush: a parent store leaks into the child.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void ForkWithoutParentFlush() => ForkRaceTests.ForkVersusParentWrite(flush: false, onWriteDuringFork: null)();

    /// <summary>A lockless walker with interrupts off vs munmap freeing the tables, with the grace period.</summary>
    [SystematicTest]
    public static void TableFreeAfterGracePeriod() => MachineRaceTests.LocklessWalkVersusTableFree(gracePeriod: true, onWalkDuringUnmap: null)();

    /// <summary>The same without it: the walker reads a freed table.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void TableFreeWithoutGracePeriod() => MachineRaceTests.LocklessWalkVersusTableFree(gracePeriod: false, onWalkDuringUnmap: null)();

    /// <summary>SplitPae lockless read vs replace, with the low-half re-read.</summary>
    [SystematicTest]
    public static void SplitPaeLocklessRetry()
        => LocklessPteReadTests.Scenario(PteLayout.SplitPae, retry: true, LocklessPteReadTests.s_first, LocklessPteReadTests.s_second, seen: null)();

    /// <summary>The same without the re-read: a torn entry.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void SplitPaeNoLocklessRetry()
        => LocklessPteReadTests.Scenario(PteLayout.SplitPae, retry: false, LocklessPteReadTests.s_first, LocklessPteReadTests.s_second, seen: null)();

    /// <summary>SplitPae machine: a GUP-fast-style lockless read vs madvise(DONTNEED) and a refault, with the re-read.</summary>
    [SystematicTest]
    public static void SplitPaeMachineLocklessRetry() => TornPte.Scenario(retry: true, probe: null)();

    /// <summary>The same without the re-read: the walker sees a present entry for a frame that was never mapped.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void SplitPaeMachineNoLocklessRetry() => TornPte.Scenario(retry: false, probe: null)();

    /// <summary>drain_all_pages vs the owner cycling a frame through its cache, with the owner/drainer handshake.</summary>
    [SystematicTest]
    public static void DrainHandshake() => Memory.FrameAllocatorTests.DrainVersusOwner(handshake: true, onOwnerInside: null)();

    /// <summary>The same without the handshake: the drain corrupts the owner's cache.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void NoDrainHandshake() => Memory.FrameAllocatorTests.DrainVersusOwner(handshake: false, onOwnerInside: null)();

    /// <summary>The 2022 lost-dirty race with the 6.2 fix (delayed rmap removal): no store is lost.</summary>
    [SystematicTest]
    public static void LostDirtyDelayRmap() => LostDirty.Scenario(delayRmap: true, flushDirtyUnderPtl: true, probe: null)();

    /// <summary>Linux 3.15 to 6.1: flush under the PTL, rmap removed at clear time: a store is lost.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void LostDirtyNoDelayRmap() => LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: true, probe: null)();

    /// <summary>The lost-dirty scenario with munmap as the zap, DelayRmap on.</summary>
    [SystematicTest]
    public static void LostDirtyMunmapDelayRmap() => LostDirty.Scenario(delayRmap: true, flushDirtyUnderPtl: true, probe: null, munmap: true)();

    /// <summary>The same, DelayRmap off.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void LostDirtyMunmapNoDelayRmap() => LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: true, probe: null, munmap: true)();

    /// <summary>Before 3.15: neither fix.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void LostDirtyNeitherFix() => LostDirty.Scenario(delayRmap: false, flushDirtyUnderPtl: false, probe: null)();

    /// <summary>Two first faults in one VMA: one anon_vma, re-checked under page_table_lock.</summary>
    [SystematicTest]
    public static void AnonVmaPrepare() => Rmap.AnonRmapRaceTests.PrepareRace(recheck: true, onRace: null)();

    /// <summary>Without the re-check: the loser's pages belong to an anon_vma no walk reaches.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void AnonVmaPrepareNoRecheck() => Rmap.AnonRmapRaceTests.PrepareRace(recheck: false, onRace: null)();

    /// <summary>An unmapping rmap walk vs fork, the child's VMA linked before the copy.</summary>
    [SystematicTest]
    public static void ForkLinksBeforeCopy() => Rmap.AnonRmapRaceTests.ForkVersusUnmapWalk(linkFirst: true, onWalk: null)();

    /// <summary>Linked after the copy: the walk misses the child's entry.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void ForkLinksAfterCopy() => Rmap.AnonRmapRaceTests.ForkVersusUnmapWalk(linkFirst: false, onWalk: null)();

    /// <summary>Two writebacks of one page: the later one waits for the earlier one's copy.</summary>
    [SystematicTest]
    public static void SyncWritebackWaits() => Files.FileRaceTests.ConcurrentWritebacks(waits: true, onInFlight: null)();

    /// <summary>Without the waits: an older copy lands after the later writeback returned.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void SyncWritebackDoesNotWait() => Files.FileRaceTests.ConcurrentWritebacks(waits: false, onInFlight: null)();

    /// <summary>A GUP-fast write pin vs fork, write_protect_seq checked.</summary>
    [SystematicTest]
    public static void GupFastForkSeq() => PinDuringFork.Scenario(forkSeq: true, probe: null)();

    /// <summary>Without the sequence check: the pin taken during fork is shared with the child.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void GupFastNoForkSeq() => PinDuringFork.Scenario(forkSeq: false, probe: null)();

    /// <summary>A R/O pin of a shared page vs the parent's store, with unshare.</summary>
    [SystematicTest]
    public static void ReadOnlyPinUnshares() => ReadOnlyPinUnshare.Scenario(unshare: true, probe: null)();

    /// <summary>Without unshare: the pin keeps a page the parent copies away from.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void ReadOnlyPinNoUnshare() => ReadOnlyPinUnshare.Scenario(unshare: false, probe: null)();

    /// <summary>PokeData vs madvise on a private read-only file mapping, with the AnonExclusive check.</summary>
    [SystematicTest]
    public static void ForceWriteCowCheck() => BugZoo.DirtyCow.Scenario(cowCheck: true, probe: null)();

    /// <summary>Before the 2016 fix: Dirty COW writes the file.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void DirtyCow() => BugZoo.DirtyCow.Scenario(cowCheck: false, probe: null)();

    /// <summary>vmsplice in the child after fork vs the parent's store, the modern reuse rule.</summary>
    [SystematicTest]
    public static void CowReuseAnonExclusiveVmsplice() => MissedCow.Scenario(CowReuse.AnonExclusive, probe: null)();

    /// <summary>The mapcount rule: CVE-2020-29374.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void CowReuseMapCountVmsplice() => MissedCow.Scenario(CowReuse.MapCount, probe: null)();

    /// <summary>A long-term pin, mprotect R/O then R/W, a store: the modern rule.</summary>
    [SystematicTest]
    public static void CowReuseAnonExclusivePin() => WrongCow.Scenario(CowReuse.AnonExclusive, probe: null)();

    /// <summary>The page-count rule: wrong COW.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void CowReusePageCountPin() => WrongCow.Scenario(CowReuse.PageCount, probe: null)();

    /// <summary>Many references to one page with the 2019 overflow guard.</summary>
    [SystematicTest]
    public static void RefcountOverflowGuard() => BugZoo.RefcountOverflow.Scenario(guard: true, probe: null)();

    /// <summary>Without it: the wrapped count frees the page while references remain.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void RefcountOverflow() => BugZoo.RefcountOverflow.Scenario(guard: false, probe: null)();

    /// <summary>GUP-fast pins vs madvise and another process's faults on an out-of-memory arm64-style machine, with the re-check.</summary>
    [SystematicTest]
    public static void GupFastRecheck() => GupFastReuse.Scenario(recheck: true, probe: null)();

    /// <summary>Without the re-check: a pin reads another process's secret from a frame it was handed.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void GupFastNoRecheck() => GupFastReuse.Scenario(recheck: false, probe: null)();
}
