using Engine.Stats;

namespace Engine;

/// <summary>A snapshot of a machine's counters (exact when taken at quiescence).</summary>
public sealed class MachineStats
{
    internal MachineStats(StatCounters counters, long remoteCacheDrains, int swapSlotsInUse)
    {
        RemoteCacheDrains = remoteCacheDrains;
        SwapSlotsInUse = swapSlotsInUse;
        Reads = counters.Get(Stat.Reads);
        Writes = counters.Get(Stat.Writes);
        TlbMisses = counters.Get(Stat.TlbMisses);
        AnonymousFaults = counters.Get(Stat.AnonymousFaults);
        ZeroPageFaults = counters.Get(Stat.ZeroPageFaults);
        WriteProtectFaults = counters.Get(Stat.WriteProtectFaults);
        CowCopies = counters.Get(Stat.CowCopies);
        CowReuses = counters.Get(Stat.CowReuses);
        FaultRetries = counters.Get(Stat.FaultRetries);
        SpuriousFaults = counters.Get(Stat.SpuriousFaults);
        TlbShootdowns = counters.Get(Stat.TlbShootdowns);
        ShootdownTargets = counters.Get(Stat.ShootdownTargets);
        PagesAllocated = counters.Get(Stat.PagesAllocated);
        PagesFreed = counters.Get(Stat.PagesFreed);
        PageTablesAllocated = counters.Get(Stat.PageTablesAllocated);
        PageTablesFreed = counters.Get(Stat.PageTablesFreed);
        UseAfterFree = counters.Get(Stat.UseAfterFree);
        FileReadFaults = counters.Get(Stat.FileReadFaults);
        FileSharedWriteFaults = counters.Get(Stat.FileSharedWriteFaults);
        FilePrivateWriteFaults = counters.Get(Stat.FilePrivateWriteFaults);
        PageCacheFills = counters.Get(Stat.PageCacheFills);
        PagesWrittenBack = counters.Get(Stat.PagesWrittenBack);
        PagesEvicted = counters.Get(Stat.PagesEvicted);
        AnonVmaPrepareRaces = counters.Get(Stat.AnonVmaPrepareRaces);
        ForkPinnedCopies = counters.Get(Stat.ForkPinnedCopies);
        GupFastPages = counters.Get(Stat.GupFastPages);
        GupSlowPages = counters.Get(Stat.GupSlowPages);
        GupFastRecheckDrops = counters.Get(Stat.GupFastRecheckDrops);
        SwapOuts = counters.Get(Stat.SwapOuts);
        SwapIns = counters.Get(Stat.SwapIns);
        SwapCacheHits = counters.Get(Stat.SwapCacheHits);
        ReclaimScans = counters.Get(Stat.ReclaimScans);
        ReclaimKeptPinned = counters.Get(Stat.ReclaimKeptPinned);
        SwapCacheFreesAfterCow = counters.Get(Stat.SwapCacheFreesAfterCow);
        ReclaimFileDrops = counters.Get(Stat.ReclaimFileDrops);
        LruActivations = counters.Get(Stat.LruActivations);
        LruDeactivations = counters.Get(Stat.LruDeactivations);
        ReclaimWriteProtects = counters.Get(Stat.ReclaimWriteProtects);
        ReclaimKeptWritable = counters.Get(Stat.ReclaimKeptWritable);
        SwapInReuses = counters.Get(Stat.SwapInReuses);
        AnonFolioFaults = counters.Get(Stat.AnonFolioFaults);
        AnonFolioFallbacks = counters.Get(Stat.AnonFolioFallbacks);
        LargeFolioReuses = counters.Get(Stat.LargeFolioReuses);
        FolioSplits = counters.Get(Stat.FolioSplits);
        FolioSplitsRefused = counters.Get(Stat.FolioSplitsRefused);
        PagesTruncated = counters.Get(Stat.PagesTruncated);
        TruncateRmapWalks = counters.Get(Stat.TruncateRmapWalks);
    }

    /// <summary>Loads done by <c>Cpu.Read</c>.</summary>
    public long Reads { get; }

    /// <summary>Stores done by <c>Cpu.Write</c>.</summary>
    public long Writes { get; }

    /// <summary>Accesses that walked the page tables.</summary>
    public long TlbMisses { get; }

    /// <summary>Faults that allocated a new anonymous page (<c>do_anonymous_page</c>, write).</summary>
    public long AnonymousFaults { get; }

    /// <summary>Read faults that mapped the shared zero page.</summary>
    public long ZeroPageFaults { get; }

    /// <summary>Write faults on a present read-only entry (<c>do_wp_page</c>).</summary>
    public long WriteProtectFaults { get; }

    /// <summary>Write-protect faults that copied the page (<c>wp_page_copy</c>).</summary>
    public long CowCopies { get; }

    /// <summary>Write-protect faults that reused the page in place.</summary>
    public long CowReuses { get; }

    /// <summary>Faults that found the entry changed under the PTL (<c>pte_same</c> failed) and retried.</summary>
    public long FaultRetries { get; }

    /// <summary>Faults that found nothing to do (another CPU resolved them first).</summary>
    public long SpuriousFaults { get; }

    /// <summary>TLB shootdowns (range flushes sent to the CPUs of an mm).</summary>
    public long TlbShootdowns { get; }

    /// <summary>CPUs targeted, summed over shootdowns (divide by <see cref="TlbShootdowns"/> for the average, as RadixVM reports).</summary>
    public long ShootdownTargets { get; }

    /// <summary>Data pages allocated.</summary>
    public long PagesAllocated { get; }

    /// <summary>Data pages freed.</summary>
    public long PagesFreed { get; }

    /// <summary>Page tables allocated.</summary>
    public long PageTablesAllocated { get; }

    /// <summary>Page tables freed.</summary>
    public long PageTablesFreed { get; }

    /// <summary>Accesses that reached a free frame through a stale TLB entry (each is also an invariant violation).</summary>
    public long UseAfterFree { get; }

    /// <summary>
    /// Per-CPU frame caches emptied by another CPU that found no free frame elsewhere (<c>drain_all_pages</c>).
    /// </summary>
    public long RemoteCacheDrains { get; }

    /// <summary>Read faults on file mappings that mapped a page-cache page read-only (<c>do_read_fault</c>).</summary>
    public long FileReadFaults { get; }

    /// <summary>
    /// Write faults on shared file mappings: first writes (<c>do_shared_fault</c>) and writes after writeback cleaned
    /// the entry (<c>wp_page_shared</c>); each locks the page and dirties it.
    /// </summary>
    public long FileSharedWriteFaults { get; }

    /// <summary>Write faults on private file mappings that copied a page-cache page into a new anon page (<c>do_cow_fault</c>).</summary>
    public long FilePrivateWriteFaults { get; }

    /// <summary>Page-cache misses filled from the backing store.</summary>
    public long PageCacheFills { get; }

    /// <summary>Dirty page-cache pages copied to their backing store by writeback.</summary>
    public long PagesWrittenBack { get; }

    /// <summary>Clean, unmapped page-cache pages dropped.</summary>
    public long PagesEvicted { get; }

    /// <summary>First anonymous faults in a VMA that found another fault had just given it its anon_vma (theirs was dropped).</summary>
    public long AnonVmaPrepareRaces { get; }

    /// <summary>Pages fork copied for the child at once because they were exclusive and maybe pinned.</summary>
    public long ForkPinnedCopies { get; }

    /// <summary>Pages get_user_pages / pin_user_pages took on the lockless fast path.</summary>
    public long GupFastPages { get; }

    /// <summary>Pages they took on the slow path (under the mmap_lock and the PTL).</summary>
    public long GupSlowPages { get; }

    /// <summary>Pages the fast path grabbed and dropped again because the re-read of the PMD or PTE found it changed.</summary>
    public long GupFastRecheckDrops { get; }

    /// <summary>Anonymous pages reclaim wrote to a swap slot.</summary>
    public long SwapOuts { get; }

    /// <summary>Swap faults that read a page back from its slot.</summary>
    public long SwapIns { get; }

    /// <summary>Swap faults that found the page still in the swap cache (no read).</summary>
    public long SwapCacheHits { get; }

    /// <summary>Pages reclaim looked at.</summary>
    public long ReclaimScans { get; }

    /// <summary>Pages reclaim left alone because they may be pinned (<c>folio_maybe_dma_pinned</c>).</summary>
    public long ReclaimKeptPinned { get; }

    /// <summary>
    /// Entries rule (d) made read-only before their page entered the swap cache
    /// (<see cref="MachineOptions.WriteProtectBeforeSwap"/>).
    /// </summary>
    public long ReclaimWriteProtects { get; }

    /// <summary>
    /// Pages rule (d) kept: mapped writable while someone other than their mappings held them (rule (c)), or made
    /// writable again by a fault before the unmap (<see cref="MachineOptions.WriteProtectBeforeSwap"/>).
    /// </summary>
    public long ReclaimKeptWritable { get; }

    /// <summary>
    /// Write faults on a swap entry that mapped the page read in writable, with no copy and no write-protect fault: the
    /// swap-in's own reuse decision (<c>reuse_swap_page</c>, page_count 1, or an exclusive entry), which
    /// <see cref="CowReuses"/> does not count.
    /// </summary>
    public long SwapInReuses { get; }

    /// <summary>Write faults that mapped a new large anonymous folio (<c>MachineOptions.AnonFolioOrder</c>); also counted in <see cref="AnonymousFaults"/>.</summary>
    public long AnonFolioFaults { get; }

    /// <summary>Anonymous write faults on a machine with large folios that mapped one page instead: the aligned range was not empty or not in one VMA, or no aligned block was free.</summary>
    public long AnonFolioFallbacks { get; }

    /// <summary>
    /// Write and unshare faults that reused a page of a large folio in place, whichever rule allowed it (an AnonExclusive
    /// page, mapcount 1, a folio count of 1, or the folio exclusive to the mm under <c>MapcountScheme.MmId</c>); also
    /// counted in <see cref="CowReuses"/>.
    /// </summary>
    public long LargeFolioReuses { get; }

    /// <summary>Large folios split into order-0 pages (by a partial munmap, madvise or mprotect, or by reclaim).</summary>
    public long FolioSplits { get; }

    /// <summary>Splits refused: the folio was mapped through more than one page table, or held by a reference other than its mappings (a GUP reference or pin); it stays large.</summary>
    public long FolioSplitsRefused { get; }

    /// <summary>Swap-cache pages a write fault freed from the cache before reusing or after copying them.</summary>
    public long SwapCacheFreesAfterCow { get; }

    /// <summary>Page-cache pages reclaim unmapped and dropped (written back first when dirty); they count in <see cref="PagesEvicted"/> too.</summary>
    public long ReclaimFileDrops { get; }

    /// <summary>
    /// Page-cache pages <c>Machine.Truncate</c> removed, beyond the file's new end (dirty or clean: their contents are
    /// discarded, not written); not counted in <see cref="PagesEvicted"/>.
    /// </summary>
    public long PagesTruncated { get; }

    /// <summary>
    /// Pages truncation found maybe mapped (<c>folio_mapped</c>, after its first <c>unmap_mapping_range</c>) and so
    /// unmapped through the file's rmap walk: a fault mapped them meanwhile, or the mapcount scheme cannot tell.
    /// </summary>
    public long TruncateRmapWalks { get; }

    /// <summary>Pages reclaim found in use on two looks in a row and made active (<c>pgactivate</c>).</summary>
    public long LruActivations { get; }

    /// <summary>Active pages reclaim found unused and made inactive again (<c>pgdeactivate</c>).</summary>
    public long LruDeactivations { get; }

    /// <summary>
    /// Swap slots in use when the snapshot was taken (named by a swap entry or holding a swap-cache page): a level, not a
    /// count of events; <c>SwapTotal − SwapFree</c> of <c>/proc/meminfo</c>.
    /// </summary>
    public int SwapSlotsInUse { get; }
}
