namespace Engine;

/// <summary>
/// The shape of a <c>Machine</c> and its protocol knobs. A knob is named after the protection it turns off and is
/// on (correct) by default; its comment cites the kernel change that introduced the protection.
/// </summary>
public sealed record MachineOptions
{
    /// <summary>Simulated CPUs. Default 4.</summary>
    public int Cpus { get; init; } = 4;

    /// <summary>
    /// The most frames a machine can have: physical memory is one array of 64-bit words, and a .NET array holds at most
    /// <see cref="Array.MaxLength"/> elements, 512 per frame (so 4,194,303 frames, 4 KiB short of 16 GiB).
    /// </summary>
    public const int MaxFrames = 0x7FFFFFC7 / 512;

    /// <summary>4 KiB physical frames, page tables included: 64 to <see cref="MaxFrames"/>. Default 65,536 (256 MiB).</summary>
    public int Frames { get; init; } = 65_536;

    /// <summary>How page-table entries are stored. Default <see cref="PteLayout.Native64"/>.</summary>
    public PteLayout PteLayout { get; init; } = PteLayout.Native64;

    /// <summary>
    /// <c>ptep_get_lockless</c> re-reads the low half of a split PTE and retries while it changed, so a lockless
    /// reader does not combine the halves of two different entries. The retry came with the lockless x86
    /// <c>get_user_pages_fast</c> (Nick Piggin, Linux 2.6.27, 2008, as <c>gup_get_pte</c>) and was made generic as
    /// <c>ptep_get_lockless()</c> in 2020. Off reproduces torn reads on <see cref="PteLayout.SplitPae"/>. Default on.
    /// </summary>
    public bool LocklessPteRetry { get; init; } = true;

    /// <summary>
    /// An <c>mmu_gather</c> flushes the TLB before it frees the pages it unmapped ("1) unhook page 2) TLB invalidate
    /// page 3) free page", the rule of <c>include/asm-generic/tlb.h</c> since the batched gather was introduced).
    /// Off frees first, so a CPU with a stale TLB entry can touch a free frame. Default on.
    /// </summary>
    public bool FlushBeforeFree { get; init; } = true;

    /// <summary>
    /// When a zap clears a dirty PTE of a file page it marks the page dirty and flushes the TLB before releasing the
    /// PTL, so that nobody can find the entry gone and the page clean while a stale writable translation survives
    /// ("mm: split 'tlb_flush_mmu()' into tlb flushing and memory freeing parts", commit 1cf35d47712d, Linux 3.15).
    /// Off: the flush happens after the PTL is released, as before 3.15. Default on.
    /// </summary>
    public bool FlushDirtyUnderPtl { get; init; } = true;

    /// <summary>
    /// A zapped file page that was mapped by a dirty PTE keeps its rmap (stays <c>folio_mapped</c>) until after the TLB
    /// flush, which runs under the PTL; then the delayed rmap removals run ("mm: delay page_remove_rmap() until after
    /// the TLB has been flushed", Linux 6.2). Off: the rmap goes when the entry is cleared, as from 3.15 to 6.1, and
    /// writeback's <c>folio_mkclean</c> can find the page unmapped, skip the PTL and clean it while a stale
    /// writable+dirty translation still stores into it: a lost store. Default on.
    /// </summary>
    public bool DelayRmap { get; init; } = true;

    /// <summary>
    /// A zap that ends while another zap of the same mm is in progress (<c>mm_tlb_flush_nested</c>: more than one
    /// <c>tlb_flush_pending</c>) flushes its whole range, even where it cleared nothing itself: the other zap may have
    /// cleared those entries and not flushed yet ("mm: fix MADV_[FREE|DONTNEED] TLB flush miss problem", Linux 4.14,
    /// 2017). Off lets madvise return while a stale translation still exists, so a store after it can be lost.
    /// Default on.
    /// </summary>
    public bool NestedTlbFlush { get; init; } = true;

    /// <summary>
    /// The model's guard against a page walk in flight during a shootdown: after invalidating, the initiator waits for
    /// every target CPU that was inside an access to leave it, then invalidates again, so a translation filled from a
    /// walk that read the entry before it changed cannot survive (hardware makes walk-and-fill atomic with respect to
    /// the IPI; the model needs this step). A test knob, not a kernel one: off shows the stale entry. Default on.
    /// </summary>
    internal bool GuardWalksInFlight { get; init; } = true;

    /// <summary>
    /// Page tables unhooked by munmap or exit are freed only after a grace period in which every CPU leaves any access
    /// or IRQ-disabled section it was in, so a lockless walker never reads a freed table (the kernel's
    /// <c>tlb_remove_table</c> with its IPI/RCU synchronisation, which GUP-fast relies on). A test knob: off frees
    /// at once. Default on.
    /// </summary>
    internal bool GracePeriodBeforeTableFree { get; init; } = true;

    /// <summary>
    /// Fork flushes the parent's TLBs before it returns (<c>flush_tlb_mm</c> at the end of <c>dup_mmap</c>), so no
    /// thread of the parent keeps writing through a translation that was writable before its page became shared with
    /// the child. A test knob: off lets a parent store after fork leak into the child. Default on.
    /// </summary>
    internal bool ForkFlushesParentTlb { get; init; } = true;

    /// <summary>
    /// <c>anon_vma_prepare</c> re-checks, under the mm's <c>page_table_lock</c>, that the VMA still has no anon_vma
    /// before installing its new one. A test knob: off, two first faults in one VMA both install theirs and the pages
    /// of the loser belong to an anon_vma that lists no VMA, so rmap walks cannot find them. Default on.
    /// </summary>
    internal bool AnonVmaPrepareRecheck { get; init; } = true;

    /// <summary>
    /// Fork links each child VMA into its anon_vmas before copying the parent's entries (<c>anon_vma_fork</c> before
    /// <c>copy_page_range</c> in <c>dup_mmap</c>), so a walk that sees the child's entry also sees its VMA. A test
    /// knob: off links after the copy and an rmap walk in between misses the child's mapping. Default on.
    /// </summary>
    internal bool ForkLinksAnonVmaBeforeCopy { get; init; } = true;

    /// <summary>
    /// A data-integrity writeback (<c>Machine.Writeback</c>, like fsync: <c>WB_SYNC_ALL</c>) waits for a page's
    /// writeback already in flight before cleaning it again, and for every page still under writeback before it
    /// returns (<c>folio_wait_writeback</c> in <c>write_cache_pages</c>, then <c>filemap_fdatawait</c>). A test knob:
    /// off, a concurrent writeback's older copy can land after this one's, or after it returned. Default on.
    /// </summary>
    internal bool SyncWritebackWaits { get; init; } = true;

    /// <summary>
    /// A file fault re-checks, under the page lock, that the page is still in the page cache and inside the file
    /// (<c>filemap_fault</c>: "Did it get truncated?", then "We must recheck i_size under page lock"). A test knob:
    /// off, a fault that found the page before truncation removed it maps it afterwards, a page no longer in the file.
    /// Default on.
    /// </summary>
    internal bool FaultRechecksTruncation { get; init; } = true;

    /// <summary>
    /// A read fault maps a page-cache page with the page locked, as <c>filemap_fault</c> returns it to
    /// <c>finish_fault</c>. A test knob: off, the read fault maps the page without its lock (the engine's read fault
    /// before truncation needed it; the truncation re-check goes with it), and under <see cref="MapcountScheme.TriState"/>
    /// an rmap walk made under the page lock can bring the word down to "not mapped" under a mapping it did not see
    /// (MapcountProposalRaceTests). Default on.
    /// </summary>
    internal bool ReadFaultLocksPage { get; init; } = true;

    /// <summary>
    /// GUP-fast re-reads the PMD and PTE after taking its reference and drops the page if either changed, so it never
    /// keeps a page that was unmapped (and maybe freed and reused) after it read the entry (the re-check of the
    /// lockless get_user_pages, "mm: introduce get_user_pages_fast", Linux 2.6.27, kept in <c>gup_fast_pte_range</c>).
    /// Default on.
    /// </summary>
    public bool GupFastRecheck { get; init; } = true;

    /// <summary>
    /// GUP-fast pins read the mm's <c>write_protect_seq</c> around the walk and back off while fork write-protects,
    /// so a pin taken during fork never ends up shared with the child ("mm/gup: prevent gup_fast from racing with
    /// COW during fork", Linux 5.11, commit 57efa1fe5957). Default on.
    /// </summary>
    public bool GupFastForkSeq { get; init; } = true;

    /// <summary>
    /// A new GUP reference or pin is refused (an <see cref="InvalidOperationException"/>, nothing taken) when the
    /// page's count is zero or negative, or when the new references would take it past its limit
    /// (<see cref="RefcountLimit"/>): "mm: prevent get_user_pages() from overflowing page refcount", Linux 5.1, commit
    /// 8fde12ca79af, after Jann Horn's report, made stricter. The kernel refuses only a count that has already wrapped
    /// to zero or below, so the pin that carries it across the sign still succeeds; here the count never wraps while
    /// the guard is on. Off, GUP's slow path takes references with a plain <c>get_page</c>, as before 2019, and the
    /// count wraps. Default on.
    /// </summary>
    public bool RefcountOverflowGuard { get; init; } = true;

    /// <summary>
    /// A read-only pin of an anonymous page that is not AnonExclusive first unshares it (<c>FAULT_FLAG_UNSHARE</c>:
    /// the page is made exclusive, copied if shared, and the entry stays read-only), so the pin stays coherent with
    /// the process's later writes ("mm/gup: trigger FAULT_FLAG_UNSHARE when R/O-pinning a possibly shared anonymous
    /// page", Linux 5.19, commit a7f226604170). Default on.
    /// </summary>
    public bool UnshareOnReadOnlyPin { get; init; } = true;

    /// <summary>
    /// A read-only long-term pin in a private mapping also unshares a page-cache page or the shared zero page (an
    /// anonymous copy, mapped read-only, which the process's later writes reuse), so the pin sees those writes
    /// ("mm/gup: reliable R/O long-term pinning in COW mappings", Linux 6.2, commit 84209e87c696). Before, such a
    /// pin held the page the process would copy away from at its next write. Default on; it takes effect only
    /// where <see cref="UnshareOnReadOnlyPin"/> does (the AnonExclusive generation).
    /// </summary>
    public bool ReliableLongTermReadOnlyPins { get; init; } = true;

    /// <summary>
    /// A forced write (<see cref="GupFlags.Force"/>) through a read-only entry is followed only to an anonymous page
    /// exclusive to the process: the private copy its own COW fault made. Off, GUP behaves as before Linux 4.8.3 /
    /// 4.9: after the forced write fault it looks the page up again as a mere read, and if madvise(DONTNEED) dropped
    /// the copy meanwhile, the read finds the page-cache page and the write goes to the file (Dirty COW,
    /// CVE-2016-5195, fixed by "mm: remove gup_flags FOLL_WRITE games from __get_user_pages()", 19be0eaffa3a, with
    /// FOLL_COW; in 2022 FOLL_COW gave way to the AnonExclusive test modelled here, "mm/gup: fix FOLL_FORCE COW
    /// security issue and remove FOLL_COW", 5535be309971, Linux 6.0). Default on.
    /// </summary>
    public bool ForceWriteCowCheck { get; init; } = true;

    /// <summary>
    /// A test setting, not a kernel knob: the width of a page's <c>_refcount</c> as GUP sees it. The largest value a
    /// GUP reference (<c>try_grab_folio</c>, or the slow path's plain <c>get_page</c>) can take the count to before it
    /// wraps negative, as the kernel's 32-bit count wraps past 2^31 − 1; every put (<c>put_page</c>) wraps back the
    /// same way. Other reference changes (fork, faults) count as usual. Why it exists: the overflow attack of 2019
    /// ("mm: prevent get_user_pages() from overflowing page refcount", Linux 5.1) needs 2^32 references, which no
    /// schedule can take one by one, so a scenario shrinks the counter to a few dozen (zoo entry 8 uses 15) and goes
    /// round it with plain references. A pin adds <c>GUP_PIN_COUNTING_BIAS</c> (1,024) at once, which on a limit below
    /// 1,024 the guard always refuses and, with the guard off, wraps modulo the counter's range. Must be positive (<see cref="Validate"/> rejects
    /// anything else). Default <see cref="int.MaxValue"/>: the real width, and the fast path that does not emulate
    /// a narrower counter.
    /// </summary>
    public int RefcountLimit { get; init; } = int.MaxValue;

    /// <summary>
    /// The architecture's TLB invalidation: false (default), x86-style shootdown IPIs, which a CPU with interrupts
    /// off does not acknowledge until it turns them on, so GUP-fast's IRQ-disabled walk holds off every flush and the
    /// frees behind it; true, arm64-style broadcast invalidation, which waits for no CPU's interrupts, so a page
    /// GUP-fast has just read from an entry may be freed and reused before it takes its reference, and only its
    /// re-check (<see cref="GupFastRecheck"/>) catches that. Page tables are freed after an RCU-like grace period in
    /// both (IRQ-disabled sections still hold that off).
    /// </summary>
    public bool BroadcastTlbInvalidate { get; init; }

    /// <summary>
    /// Reclaim's <c>__remove_mapping</c> freezes the page's refcount at exactly the expected holders before it tests the
    /// dirty flag. Off, it tests dirty first and freezes after, the order the lockless page cache (Linux 2.6.27)
    /// warned against: a GUP user who dirties the page and drops its reference between the two is not seen, and the
    /// page is freed with data its slot never got (zoo entry <c>reclaim-freeze-dirty</c>). Default on.
    /// </summary>
    public bool FreezeBeforeDirtyTest { get; init; } = true;

    /// <summary>
    /// mprotect, munmap and madvise call <c>flush_tlb_batched_pending</c> under the PTL: if reclaim cleared an entry of
    /// the mm and deferred its TLB flush to the end of its batch, they flush first, so they never return while a CPU
    /// can still write through a translation they could not see ("mm, mprotect: flush TLB if potentially racing with
    /// a parallel reclaim leaving stale TLB entries", 3ea277194daa, 4.13). Off, mprotect(PROT_READ) can return while a
    /// stale writable translation survives (zoo entry <c>batched-flush-mprotect</c>). Default on.
    /// </summary>
    public bool FlushTlbBatchedPending { get; init; } = true;

    /// <summary>The most swap slots a machine can have: a swap entry's offset field is 26 bits wide.</summary>
    public const int MaxSwapSlots = 1 << 26;

    /// <summary>
    /// Swap slots of the machine's swap device: 0 for no swap; null (the default) for as many as <see cref="Frames"/>.
    /// The slots' metadata is allocated lazily, in chunks of 4,096 slots: 16 bytes per 4,096 slots (a chunk reference
    /// each in the swap device and the swap cache) until a slot of the chunk is first used; then 20 bytes per slot of
    /// that chunk (80 KiB: the slot's count word, its page reference and its swap cache entry); and a slot's page, 4 KiB,
    /// once the slot is first written. So 2^26 slots cost 256 KiB while unused.
    /// </summary>
    public int? SwapSlots { get; init; }

    /// <summary>The number of swap slots <see cref="SwapSlots"/> gives.</summary>
    internal int EffectiveSwapSlots => SwapSlots ?? Frames;

    /// <summary>The copy-on-write reuse rule and the behaviours of its kernel generation. Default <see cref="CowReuse.AnonExclusive"/>.</summary>
    public CowReuse CowReuse { get; init; } = CowReuse.AnonExclusive;

    /// <summary>
    /// How a swap-in decides that the page it maps may be written (<see cref="Engine.SwapReuse"/>): null (the default)
    /// for the last design that shipped with <see cref="CowReuse"/> (<see cref="SwapReuse.ReuseSwapPage"/> with
    /// <see cref="CowReuse.MapCount"/>, <see cref="SwapReuse.PageCount"/> with <see cref="CowReuse.PageCount"/>,
    /// <see cref="SwapReuse.ExclusiveEntry"/> with <see cref="CowReuse.AnonExclusive"/>). A pair that never shipped
    /// is refused; the one choice is (<see cref="CowReuse.PageCount"/>, <see cref="SwapReuse.ReuseSwapPage"/>):
    /// Linux 5.9 to 5.17.
    /// </summary>
    public SwapReuse? SwapReuse { get; init; }

    /// <summary>The swap design <see cref="SwapReuse"/> gives.</summary>
    internal SwapReuse EffectiveSwapReuse => SwapReuse ?? DefaultSwapReuse(CowReuse);

    /// <summary>
    /// Reclaim leaves an anonymous page that may be pinned (<c>folio_maybe_dma_pinned</c>) out of the swap cache ("mm:
    /// don't put pinned pages into the swap cache", feb889fb40fa, 5.11). Off, before 5.19 nothing else stops it: the
    /// pinned page is unmapped, and the process's next write after the swap-in copies it away from the pin (zoo entry
    /// <c>reclaim-pinned</c>). With <see cref="CowReuse.AnonExclusive"/> the unmap itself refuses a pinned exclusive
    /// page (<c>folio_try_share_anon_rmap</c>), so the knob then changes nothing that is observable. Default on.
    /// </summary>
    public bool ReclaimSkipsMaybePinned { get; init; } = true;

    /// <summary>
    /// The swap device is synchronous (zram, pmem: <c>SWP_SYNCHRONOUS_IO</c>): a swap-in of a slot that only one swap
    /// entry names reads it straight into a new page, exclusive to the faulting process, and skips the swap cache
    /// (Linux 4.15's "mm, swap: skip swapcache for swapin of synchronous device"). Default off: every swap-in goes
    /// through the swap cache, as for a disk.
    /// </summary>
    public bool SynchronousSwapDevice { get; init; }

    /// <summary>
    /// With <see cref="SynchronousSwapDevice"/>, a swap-in that skips the swap cache first claims the entry with
    /// <c>swapcache_prepare</c> and releases it after mapping the page, so a second fault on the same entry waits, and
    /// the slot freed by the first cannot be handed to another swap-out meanwhile ("mm/swap: fix race when skipping
    /// swapcache", 13ddaf26be32, 6.8). Off, two faults may read the slot at once: the first maps its page and frees
    /// the slot, the page is swapped out again into the same slot, and the second fault's <c>pte_same</c> passes and
    /// maps its stale copy (zoo entry <c>swap-skip-cache-aba</c>). Default on.
    /// </summary>
    public bool SwapcachePrepareWhenSkipping { get; init; } = true;

    /// <summary>
    /// A proposal, not a kernel generation: rule (d) of Linus Torvalds's January 2021 mail (seed 001), "we never create
    /// a swap cache page out of a writable COW mapping page". Reclaim first write-protects every writable entry of an
    /// anonymous page through the rmap and flushes the TLBs (batched, as its unmap is), and only then adds the page to
    /// the swap cache; with the mail's rule (c) it write-protects a page only when nothing but its mapping and reclaim
    /// holds it, so a writable page with another reference (GUP's, by the rules' reasoning) is kept. A write fault that
    /// makes the entry writable again before the unmap makes reclaim keep the page too. Measured in docs/swap.md.
    /// Default off.
    /// </summary>
    public bool WriteProtectBeforeSwap { get; init; }

    /// <summary>The largest <see cref="AnonFolioOrder"/>: 2 MiB folios, a whole PTE table.</summary>
    public const int MaxAnonFolioOrder = 9;

    /// <summary>
    /// The order of large anonymous folios (mTHP, mapped by PTEs): a write fault in an empty, naturally aligned range
    /// of 2^order pages that lies in one VMA allocates a folio of that many contiguous, aligned frames and maps all of
    /// them (<c>alloc_anon_folio</c>), falling back to one page when the range is not empty, not in one VMA, or no
    /// aligned block is free. 4 gives 64 KiB folios. 0 (the default) is off: every anonymous page is order 0.
    /// docs/folios.md describes the model.
    /// </summary>
    public int AnonFolioOrder { get; init; }

    /// <summary>
    /// How pages and folios count their mappings (<see cref="Engine.MapcountScheme"/>): <see cref="MapcountScheme.PerPage"/>
    /// (Linux ≤ 6.14, the default) or <see cref="MapcountScheme.MmId"/> (Linux 6.15's MM owner tracking), which only
    /// shipped with <see cref="CowReuse.AnonExclusive"/> and change nothing while <see cref="AnonFolioOrder"/> is 0; or
    /// seed 002's proposals <see cref="MapcountScheme.TriState"/> and <see cref="MapcountScheme.None"/>, which apply to
    /// every page and run only with <see cref="CowReuse.AnonExclusive"/> (docs/mapcount.md).
    /// </summary>
    public MapcountScheme Mapcount { get; init; } = MapcountScheme.PerPage;

    /// <summary>
    /// A road not taken (seed 003), not a kernel generation: with <see cref="MapcountScheme.PerPage"/> and
    /// <see cref="CowReuse.AnonExclusive"/>, a write fault on a page of a large folio that is not AnonExclusive reuses
    /// it when <c>folio_likely_mapped_shared</c> says the folio is not shared and every reference to it is a mapping
    /// (6.15's reuse test with ≤ 6.14's estimate). The estimate misses a folio two mms map through pages other than
    /// the first, and the write lands in a page another process maps (zoo entry 17). Default off.
    /// </summary>
    public bool ReuseLargeFoliosByEstimate { get; init; }

    /// <summary>
    /// A test knob, not a kernel generation: under <see cref="MapcountScheme.MmId"/>, adding and removing mappings of a
    /// large folio takes the folio's mapcount lock bit. Off, two mms changing their mappings at once can leave the
    /// "maybe mapped shared" bit clear while both map the folio (FolioRaceTests). Default on.
    /// </summary>
    internal bool LargeMapcountLock { get; init; } = true;

    /// <summary>Fill freed frames with a poison pattern so stale readers see it (the kernel's page poisoning). Default on.</summary>
    public bool PoisonFreedFrames { get; init; } = true;

    /// <summary>The first pfn of physical memory: above 4 GiB on <see cref="PteLayout.SplitPae"/>, so the high half of an entry carries pfn bits.</summary>
    internal long BasePfn => PteLayout == PteLayout.SplitPae ? 1L << 20 : 0;

    /// <summary>Throws <see cref="ArgumentException"/> when a setting is out of range.</summary>
    public void Validate()
    {
        if (Cpus is < 1 or > 64)
        {
            throw new ArgumentOutOfRangeException(nameof(Cpus), Cpus, "A machine has 1 to 64 CPUs.");
        }

        if (Frames is < 64 or > MaxFrames)
        {
            throw new ArgumentOutOfRangeException(nameof(Frames), Frames, $"A machine has 64 to {MaxFrames:N0} frames (just under 16 GiB).");
        }

        if (!Enum.IsDefined(PteLayout))
        {
            throw new ArgumentOutOfRangeException(nameof(PteLayout), PteLayout, "Unknown PTE layout.");
        }

        if (!Enum.IsDefined(CowReuse))
        {
            throw new ArgumentOutOfRangeException(nameof(CowReuse), CowReuse, "Unknown copy-on-write reuse rule.");
        }

        if (SwapReuse is { } swapReuse && !Enum.IsDefined(swapReuse))
        {
            throw new ArgumentOutOfRangeException(nameof(SwapReuse), swapReuse, "Unknown swap-in reuse design.");
        }

        if (!Shipped(CowReuse, EffectiveSwapReuse))
        {
            var valid = string.Join(" or ", Enum.GetValues<SwapReuse>().Where(s => Shipped(CowReuse, s)));
            throw new ArgumentException(
                $"SwapReuse = {EffectiveSwapReuse} never shipped with CowReuse = {CowReuse}: that rule ran with SwapReuse = {valid} (docs/swap.md, \"Swap generations\").",
                nameof(SwapReuse));
        }

        if (AnonFolioOrder is < 0 or > MaxAnonFolioOrder)
        {
            throw new ArgumentOutOfRangeException(nameof(AnonFolioOrder), AnonFolioOrder, $"A large anonymous folio has order 1 to {MaxAnonFolioOrder} (0: off).");
        }

        if ((1 << AnonFolioOrder) * 4 > Frames)
        {
            throw new ArgumentOutOfRangeException(nameof(AnonFolioOrder), AnonFolioOrder, $"Folios of order {AnonFolioOrder} ({1 << AnonFolioOrder} frames) need at least {(1 << AnonFolioOrder) * 4} frames; the machine has {Frames}.");
        }

        if (!Enum.IsDefined(Mapcount))
        {
            throw new ArgumentOutOfRangeException(nameof(Mapcount), Mapcount, "Unknown mapcount scheme.");
        }

        if (Mapcount == MapcountScheme.MmId && CowReuse != CowReuse.AnonExclusive)
        {
            throw new ArgumentException(
                $"Mapcount = MmId never shipped with CowReuse = {CowReuse}: MM owner tracking is Linux 6.15, whose rule is AnonExclusive (docs/folios.md).",
                nameof(Mapcount));
        }

        if (ReuseLargeFoliosByEstimate && Mapcount is MapcountScheme.TriState or MapcountScheme.None)
        {
            throw new ArgumentException(
                $"ReuseLargeFoliosByEstimate reuses by folio_likely_mapped_shared and _large_mapcount, which Mapcount = {Mapcount} does not keep.",
                nameof(ReuseLargeFoliosByEstimate));
        }

        if (Mapcount is MapcountScheme.TriState or MapcountScheme.None && CowReuse != CowReuse.AnonExclusive)
        {
            throw new ArgumentException(
                $"Mapcount = {Mapcount} is a proposal for the AnonExclusive rule, which asks no mapcount; CowReuse = {CowReuse} decides by one (docs/mapcount.md).",
                nameof(Mapcount));
        }

        if (SwapSlots is < 0 or > MaxSwapSlots)
        {
            throw new ArgumentOutOfRangeException(nameof(SwapSlots), SwapSlots, $"A machine has 0 to {MaxSwapSlots:N0} swap slots (null: as many as frames).");
        }

        if (RefcountLimit < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(RefcountLimit), RefcountLimit, "The refcount limit (a test setting: the counter's width as GUP sees it) must be positive.");
        }
    }

    /// <summary>The last swap design that shipped with <paramref name="rule"/>.</summary>
    internal static SwapReuse DefaultSwapReuse(CowReuse rule) => rule switch
    {
        CowReuse.MapCount => Engine.SwapReuse.ReuseSwapPage,
        CowReuse.PageCount => Engine.SwapReuse.PageCount,
        _ => Engine.SwapReuse.ExclusiveEntry,
    };

    /// <summary>
    /// Whether Linux shipped <paramref name="swap"/> with <paramref name="rule"/>: ≤ 5.8 with reuse_swap_page; 5.9 to
    /// 5.17 with reuse_swap_page, 5.18 with the streamlined page_count; ≥ 5.19 with the exclusive swap entry.
    /// </summary>
    public static bool Shipped(CowReuse rule, SwapReuse swap) => (rule, swap) switch
    {
        (CowReuse.MapCount, Engine.SwapReuse.ReuseSwapPage) => true,
        (CowReuse.PageCount, Engine.SwapReuse.ReuseSwapPage or Engine.SwapReuse.PageCount) => true,
        (CowReuse.AnonExclusive, Engine.SwapReuse.ExclusiveEntry) => true,
        _ => false,
    };
}
