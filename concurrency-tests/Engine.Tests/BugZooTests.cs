using BugZoo;
using Engine.Systematic;

namespace Engine.Tests;

/// <summary>
/// The bug zoo's claims (docs/bug-zoo.md), entry by entry: with the knob off, the default portfolio finds the entry's
/// bug within 1,000 schedules for each of seeds 0–9; with the fix, 10,000 schedules pass, none cut short by the step
/// bound, and every interleaving the entry names was met (so the pass is not vacuous). <c>engine zoo</c> runs the same.
/// </summary>
public sealed class BugZooTests
{
    public static TheoryData<int> Entries => new(BugZooCatalog.All.Select(e => e.Number));

    [Theory]
    [MemberData(nameof(Entries))]
    public void WithTheKnobOffTheBugIsFoundWithinOneThousandSchedulesForEachOfTenSeeds(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        for (var seed = 0; seed < 10; seed++)
        {
            var report = ZooRunner.FindBug(entry, seed, budget: 1_000);
            Assert.True(report.FirstBug is not null, $"entry {entry.Number} ({entry.Name}), seed {seed}: not found in 1,000 schedules");
            Assert.Null(ZooRunner.Mismatch(entry, report.FirstBug));
        }
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void WithTheFixTenThousandSchedulesPassAndEveryNamedInterleavingIsMet(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        // Lanes change nothing in what is explored (iteration i has the same schedule on any lane), only how long the
        // 10,000 schedules take: as many as `engine zoo` uses.
        var (report, events) = ZooRunner.RunFixed(entry, iterations: 10_000, parallelism: Environment.ProcessorCount);
        Assert.Null(ZooRunner.FixedFailure(entry, report, events));
        Assert.Equal(10_000, report.Iterations);
    }

    [Theory]
    [MemberData(nameof(Entries))]
    public void TheBuggyScenariosReportCarriesItsEntrysKindAndItsReplayToo(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var bug = ZooRunner.FindBug(entry, seed: 0, budget: 1_000).FirstBug!;
        Assert.Equal(BugKind.Assertion, bug.Kind);
        Assert.Equal(entry.Kind, bug.Category);
        Assert.Equal(entry.Kind, bug.Trace.BugCategory);

        var replay = TestingEngine.Replay(bug.ReplayString, entry.Buggy);
        Assert.Null(replay.Divergence);
        Assert.Equal(entry.Kind, replay.FirstBug!.Category);
    }

    /// <summary>
    /// The steps of each entry's race as its kernel commit message tells it, in order: each is the start of an event
    /// (<c>function: what</c>) that must appear in the failing schedule's story, after the previous one.
    /// </summary>
    private static readonly Dictionary<string, string[]> s_races = new()
    {
        // Fork shares the page; the child takes a reference (vmsplice) and unmaps; the parent's write reuses the
        // page because only the mapcount is looked at, and the child's reference sees the store.
        ["missed-cow"] = ["copy_present_pte: pfn", "gup_fast: read pte", "munmap:", "zap_pte_range: clear pte", "do_wp_page: reuse pfn", "mapcount 1"],
        // A long-term pin; mprotect R/O then R/W leaves the entry read-only; the write fault sees page_count > 1 and
        // copies the page away from the pin.
        ["wrong-cow"] = ["gup_fast: read pte", "gup_fast: try_grab_folio pfn", ": pin (+1024)", "change_pte_range:", "do_wp_page: write fault", "do_wp_page: copy pfn", "page_count", "wp_page_copy: map new pfn"],
        // The zap clears the entry and a new page is mapped while the lockless walker reads the two halves.
        ["torn-pte"] = ["zap_pte_range: clear pte", "ptep_get_lockless: read pte", "do_anonymous_page: write fault"],
        // GUP-fast reads the entry; the zap clears it, the broadcast flush does not wait, the frame is freed and
        // faulted into the other process; GUP-fast's grab then succeeds on it.
        ["gup-fast-recheck"] = ["gup_fast: read pte", "zap_pte_range: clear pte", "invalidate", "free_unref_page: pfn", "do_anonymous_page: write fault", "gup_fast: try_grab_folio pfn"],
        // Fork decides a page needs no copy; GUP-fast pins it (not backing off); fork shares it and write-protects.
        ["pin-during-fork"] = ["dup_mmap: write_protect_seq begins", "copy_present_pte: pfn", "gup_fast: read pte", "copy_present_pte: pfn", "shared with the child"],
        // The zap clears a dirty entry and drops the rmap before its flush; writeback's folio_mkclean sees the page
        // unmapped and writes it; a store through the stale TLB entry lands after; the flush comes too late.
        ["lost-dirty"] = ["zap_pte_range: clear pte", "folio_mkclean: pfn", "not mapped", "write_cache_pages: pfn", "mmu: store", "TLB hit", "flush_tlb_mm_range"],
        // The page is freed before the flush; a CPU stores through its stale TLB entry into the free frame.
        ["free-before-flush"] = ["munmap:", "zap_pte_range: clear pte", "free 1 page(s), then flush", "tlb_flush_mmu_free: put pfn", "the last reference", "mmu: store", "TLB hit"],
        // References wrap the count round; the unmap's put takes it to zero and frees the page the pipes hold.
        ["refcount-overflow"] = ["follow_page_pte: pte", "get_page (+1, unchecked)", "munmap:", "zap_pte_range: clear pte", "tlb_flush_mmu_free: put pfn", "the last reference"],
        // Fork shares the page; a R/O pin takes it without unsharing; the parent's write copies away from the pin.
        ["ro-pin-unshare"] = ["copy_present_pte: pfn", ": pin (+1024)", "do_wp_page: write fault", "do_wp_page: copy pfn", "wp_page_copy: map new pfn"],
        // The forced write fault makes a private copy; madvise zaps the copy; FOLL_WRITE is dropped (before or after
        // the zap); the lookup as a read faults the page-cache page in and the poke writes it.
        ["dirty-cow"] = ["do_cow_fault: copy page-cache pfn", "zap_pte_range: clear pte", "do_read_fault: map page-cache pfn", "access_remote_vm: store"],
        // Reclaim has written the page to its slot and finds it clean; the I/O then dirties it and drops its reference;
        // the freeze, done after the test, succeeds and the page is freed; the swap-in reads the slot's old data.
        // Reclaim clears the entry and defers its flush; mprotect finds a swap entry and flushes nothing; CPU 1's store
        // hits its stale writable translation; only then the deferred flush.
        ["batched-flush-mprotect"] = ["set_tlb_ubc_flush_pending: mm", "mprotect:", "is a swap entry: nothing to change", "= 0x2 into pfn", "TLB hit", "try_to_unmap_flush"],
        ["reclaim-freeze-dirty"] = ["__remove_mapping: pfn", "is clean (tested before the freeze)", "set_page_dirty_lock: swap-cache pfn", "put_page: pfn", "frozen at 0 and freed", "do_swap_page: swap slot"],
        // The page is swapped out and fork shares the swap entry; the child's GUP reads it in read-only and the child
        // unmaps; the parent's write fault asks reuse_swap_page, which counts one swap entry and no mapping, reuses the
        // page the pipe still holds and takes it out of the swap cache.
        ["swap-missed-cow"] = ["copy_nonpresent_pte: swap pte", "do_swap_page: read fault on swap slot", "munmap:", "zap_pte_range: clear pte", "reuse_swap_page: pfn", "references not counted", "reuse_swap_page: pfn", "deleted from the swap cache"],
        // The I/O's reference is taken; reclaim unmaps the page to a swap entry (no pin stops it) and cannot free it;
        // the swap-in finds it in the swap cache with page_count 3 and maps it read-only; the write copies it; only
        // then the I/O completes into the old page and drops its reference.
        ["swap-lost-write"] = ["gup_fast: try_grab_folio pfn", "get (+1)", "try_to_unmap_one: pte at", "-> swap entry for slot", "__remove_mapping: pfn", "refcount not 2", "do_swap_page: swap slot", "found in the swap cache", "after swap_free: read-only, then copy", "do_wp_page: copy pfn", "wp_page_copy: map new pfn", "put_page: pfn"],
        // The long-term pin; reclaim adds the pinned page to the swap cache and unmaps it (nothing asks about pins) but
        // cannot free it; the read maps it back read-only; the write counts the pin's references and copies.
        ["reclaim-pinned"] = ["gup_fast: try_grab_folio pfn", ": pin (+1024)", "add_to_swap: pfn", "try_to_unmap_one: pte at", "-> swap entry for slot", "__remove_mapping: pfn", "refcount not 2", "do_swap_page: swap slot", "found in the swap cache", "do_wp_page: copy pfn", "page_count", "wp_page_copy: map new pfn"],
        // Two faults read the only slot past the swap cache, neither claiming the entry; one maps its page and frees
        // the slot; the page is written and swapped out into the same slot; the other's pte_same passes on the same
        // swap entry and it maps its stale copy.
        ["swap-skip-cache-aba"] = ["entry not claimed", "entry not claimed", "add_to_swap: pfn", "try_to_unmap_one: pte at", "do_swap_page: map pfn"],
        // Fork shares a large folio; the partial munmaps cannot split it (two mms map it) and leave the parent pages 1
        // and 2, the child page 1; the parent's write asks folio_likely_mapped_shared, which looks at page 0 only, and
        // reuses the page the child maps.
        ["estimated-sharers-reuse"] = ["do_anonymous_page: write fault", "large folio", "copy_present_pte: pfn", "split_folio: folio", "not split", "do_wp_page: write fault", "folio_likely_mapped_shared says"],
    };

    /// <summary>Steps of a race that must appear but whose order against the others varies with the schedule.</summary>
    private static readonly Dictionary<string, string[]> s_raceSteps = new()
    {
        ["dirty-cow"] = ["faultin_page: forced write fault done"],
    };

    [Theory]
    [MemberData(nameof(Entries))]
    public void TheReportTellsTheRaceInTheStepsOfItsKernelCommitMessage(int number)
    {
        var entry = BugZooCatalog.Get(number.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var bug = ZooRunner.FindBug(entry, seed: 0, budget: 1_000).FirstBug!;
        var events = string.Join("\n", bug.Trace.Events.Select(e => e.ToString()));
        var at = 0;
        foreach (var step in s_races[entry.Name])
        {
            var found = events.IndexOf(step, at, StringComparison.Ordinal);
            Assert.True(found >= 0, $"entry {entry.Name}: '{step}' does not follow the earlier steps of the race in:\n{events}");
            at = found + step.Length;
        }

        foreach (var step in s_raceSteps.GetValueOrDefault(entry.Name, []))
        {
            Assert.Contains(step, events, StringComparison.Ordinal);
        }

        // The printed report is the story, not the table of steps, with the failure's objects marked.
        var report = bug.ToString();
        Assert.Contains("> ", report);
        Assert.DoesNotContain("step | T0", report);
        Assert.Contains(bug.Trace.Events[^1].Function, report);
    }

    [Fact]
    public void AFailureOfAnotherKindIsNotTheEntrysBugWhateverItsMessageSays()
    {
        var entry = BugZooCatalog.Get("free-before-flush");

        // The words of the entry's own assertion, but another kind (or none): another bug.
        var other = Fail(() => Specification.Assert(false, ZooBugKind.LostStore, "use-after-free through a stale TLB entry"));
        Assert.Contains("that is not its bug (kind LostStore, not UseAfterFree)", ZooRunner.Mismatch(entry, other), StringComparison.Ordinal);
        Assert.Contains("(kind none, not UseAfterFree)", ZooRunner.Mismatch(entry, Fail(() => Specification.Assert(false, "use-after-free through a stale TLB entry"))), StringComparison.Ordinal);
        Assert.Contains("failed with a Exception that is not its bug (kind none", ZooRunner.Mismatch(entry, Fail(() => throw new InvalidOperationException("use-after-free"))), StringComparison.Ordinal);

        // Its kind, whatever the words.
        Assert.Null(ZooRunner.Mismatch(entry, Fail(() => Specification.Assert(false, ZooBugKind.UseAfterFree, "worded otherwise"))));

        // A real report of one entry is no other entry's bug: the kinds are distinct.
        Assert.Equal(BugZooCatalog.All.Count, BugZooCatalog.All.Select(e => e.Kind).Distinct().Count());
        var wrongCow = BugZooCatalog.Get("wrong-cow");
        var found = ZooRunner.FindBug(wrongCow, seed: 0, budget: 1_000).FirstBug!;
        Assert.Null(ZooRunner.Mismatch(wrongCow, found));
        Assert.All(BugZooCatalog.All.Where(e => e != wrongCow), e => Assert.NotNull(ZooRunner.Mismatch(e, found)));
    }

    [Fact]
    public void ABrokenInvariantIsReportedWithTheKindOfTheFirstViolation()
    {
        var bug = Fail(() =>
        {
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64 });
            var leaked = machine.Allocator.AllocatePage(0);
            Assert.True(leaked >= 0);
            ZooScenario.AssertInvariants(machine);
        });

        Assert.Equal(nameof(Invariants.ViolationKind.LeakedFrame), bug.Category);
        Assert.Contains("but nothing maps or holds it (leak)", bug.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TheCatalogueNumbersItsEntriesInOrderWithDistinctNames()
    {
        Assert.Equal(Enumerable.Range(1, BugZooCatalog.All.Count), BugZooCatalog.All.Select(e => e.Number));
        Assert.True(BugZooCatalog.All.Count >= 11);
        Assert.Equal(BugZooCatalog.All.Count, BugZooCatalog.All.Select(e => e.Name).Distinct().Count());
        Assert.All(BugZooCatalog.All, e => Assert.False(string.IsNullOrWhiteSpace(e.Kind)));
        Assert.Throws<ArgumentException>(() => BugZooCatalog.Get("no-such-bug"));
    }

    private static BugReport Fail(Action body)
        => TestingEngine.Run(Configuration.Create().WithTestingIterations(1).WithTraceFiles(false), body).FirstBug
            ?? throw new InvalidOperationException("the body did not fail");
}
