using Engine.Cpus;
using Engine.Files;
using Engine.Folios;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Rmap;
using Engine.Stats;
using Engine.Swap;
using Engine.Sync;
using Engine.Writeback;

namespace Engine.Reclaim;

/// <summary>
/// Reclaim (<c>mm/vmscan.c</c>'s <c>shrink_folio_list</c>, with <c>mm/rmap.c</c>'s <c>folio_referenced</c> and
/// <c>try_to_unmap</c>): anonymous pages to swap, page-cache pages written back if dirty and dropped. Pages are aged
/// by a clock over the memmap that keeps the kernel's active and inactive lists as two flags (<see cref="Aged"/>): a
/// hand sweeps the frames and reclaims an inactive page whose entries were not accessed since its last look (the A
/// bits the hardware walker sets, found and cleared through the rmap), without putting every new page on a shared list.
/// <para>
/// For an anonymous page: take a reference and the page lock; leave it if it may be pinned
/// (<c>folio_maybe_dma_pinned</c>, "mm: don't put pinned pages into the swap cache", 5.11); give it a slot and put it
/// in the swap cache, dirty; unmap every entry through the rmap, each under its PTL (get-and-clear, a deferred flush,
/// move the dirty bit to the page, <c>swap_duplicate</c>, clear AnonExclusive unless the page may be pinned — then
/// restore the entry and give up — and write a swap entry carrying the exclusive bit, remove the rmap, drop the
/// entry's reference); flush; write the page to its slot; then <c>__remove_mapping</c>: freeze the refcount at exactly
/// the cache's reference and ours <b>before</b> testing dirty, so that a GUP user who dirties the page and drops its
/// reference cannot do so unseen; delete the page from the swap cache and free it. A page-cache page goes the same
/// way without a slot: unmapped, flushed, written to its file if dirty, frozen, removed from the page cache, freed.
/// </para>
/// </summary>
internal sealed class Reclaimer(
    PhysicalMemory memory,
    Memmap memmap,
    PageTableSet tables,
    PteAccess ptes,
    Shootdown shootdown,
    RmapWalk rmap,
    FileTable files,
    FileWriteback writeback,
    SwapCache swap,
    PageRelease release,
    StatCounters counters,
    bool freezeBeforeDirtyTest,
    bool skipMaybePinned,
    bool writeProtectBeforeSwap,
    bool tracksAnonExclusive,
    FolioSplitter splitter) : IReclaim
{
    private long _hand;

    /// <summary>
    /// How many pages reclaim unmaps before it flushes their TLB entries at once and writes and frees them
    /// (<c>SWAP_CLUSTER_MAX</c>).
    /// </summary>
    public const int BatchPages = 32;

    /// <summary>
    /// Reclaims until <paramref name="frames"/> frames were freed or two sweeps of the memmap found nothing more to
    /// free; returns how many were freed (never more than asked). Enter with no lock held; <paramref name="cpu"/> is
    /// the caller (−1: not a CPU, as kswapd).
    /// </summary>
    public int Reclaim(int frames, int cpu) => Scan(frames, 2L * memmap.Frames, cpu);

    /// <summary>
    /// One sweep of the hand over every frame, whatever it frees; returns how many it freed. For tests of the aging,
    /// which need to know how many looks each page has had. Enter with no lock held.
    /// </summary>
    internal int Sweep(int cpu = -1) => Scan(int.MaxValue, memmap.Frames, cpu);

    /// <summary>
    /// <c>shrink_folio_list</c> over the pages the hand passes, <see cref="BatchPages"/> at a time: each page that is
    /// old enough is locked and unmapped with its flush deferred (<see cref="Isolate"/>); then one flush for the batch
    /// (<c>try_to_unmap_flush</c>), and each page is written if dirty and removed (<see cref="Finish"/>). A batch never
    /// holds more pages than are still to be freed.
    /// </summary>
    private int Scan(int frames, long pages, int cpu)
    {
        var freed = 0;
        var span = memmap.Frames;
        Span<long> batch = stackalloc long[BatchPages];
        var scanned = 0L;
        while (freed < frames && scanned < pages)
        {
            var room = Math.Min(BatchPages, frames - freed);
            var count = 0;
            for (; count < room && scanned < pages; scanned++)
            {
                var pfn = memmap.BasePfn + (long)((ulong)Atomic.Add(ref _hand, 1) % (ulong)span);
                if (Isolate(pfn, cpu))
                {
                    batch[count++] = pfn;
                }
            }

            if (count == 0)
            {
                break;
            }

            freed += FinishBatch(batch[..count], cpu);
        }

        return freed;
    }

    /// <summary>
    /// <c>madvise(MADV_PAGEOUT)</c> over [<paramref name="from"/>, <paramref name="to"/>) of <paramref name="mm"/>
    /// (<c>madvise_cold_or_pageout_pte_range</c>, then <c>reclaim_pages</c>): each anonymous page mapped there that no
    /// other entry maps, read under its table's PTL and referenced, is reclaimed now whatever its age, in batches of
    /// <see cref="BatchPages"/>; returns how many were freed. Enter with the mmap_lock held for read and no spinlock or
    /// page lock held. Allocates nothing.
    /// </summary>
    public int PageOut(MmStruct mm, ulong from, ulong to, int cpu)
    {
        if (swap.Device.Slots == 0)
        {
            return 0;
        }

        var freed = 0;
        var count = 0;
        Span<long> batch = stackalloc long[BatchPages];
        for (var address = from; address < to; address += PhysicalMemory.PageSize)
        {
            var pfn = GetExclusiveAnonPage(mm, address);
            if (pfn >= 0 && IsolateAnon(pfn, cpu, ignoreReferences: true))
            {
                batch[count++] = pfn;
                if (count == BatchPages)
                {
                    freed += FinishBatch(batch, cpu);
                    count = 0;
                }
            }
        }

        return freed + FinishBatch(batch[..count], cpu);
    }

    /// <summary>
    /// The anonymous page <paramref name="address"/> of <paramref name="mm"/> maps, with a reference, if no other entry
    /// maps it; otherwise −1. Read under the table's PTL.
    /// </summary>
    private long GetExclusiveAnonPage(MmStruct mm, ulong address)
    {
        var table = tables.WalkToPteTable(mm.Pgd, address);
        if (table < 0)
        {
            return -1;
        }

        var ptl = tables.Ptl(table);
        ptl.Enter();
        var pte = ptes.PtepGet(table, PageTableSet.Index(address, 1));
        var pfn = -1L;
        if (pte.IsPresent && !pte.IsSpecial && memmap.TestFlags(pte.Pfn, PageFlags.Anon) && !memmap.MaybeMappedShared(pte.Pfn))
        {
            memmap.GetPage(pte.Pfn);
            pfn = pte.Pfn;
        }

        ptl.Exit();
        return pfn;
    }

    /// <summary>
    /// The rest of <c>shrink_folio_list</c> for a batch of pages <see cref="Isolate"/> took: one flush of their deferred
    /// TLB entries (<c>try_to_unmap_flush</c>) before any is written or given up on, then each is written if dirty and
    /// removed (<see cref="Finish"/>). Under <see cref="MachineOptions.WriteProtectBeforeSwap"/> the first flush is of
    /// the write-protected entries, and the anonymous pages are then added to the swap cache and unmapped, with a second
    /// flush. Returns how many pages were freed.
    /// </summary>
    private int FinishBatch(Span<long> batch, int cpu)
    {
        FlushDeferred(cpu);
        if (writeProtectBeforeSwap)
        {
            // Rule (d): only now, with no CPU able to write through an entry of theirs, do the pages enter the swap cache.
            var kept = 0;
            foreach (var pfn in batch)
            {
                if (!memmap.TestFlags(pfn, PageFlags.Anon) || UnmapAnonLocked(pfn, cpu))
                {
                    batch[kept++] = pfn;
                }
                else
                {
                    KeepAnon(pfn, cpu);
                }
            }

            batch = batch[..kept];
            FlushDeferred(cpu);
        }

        var freed = 0;
        foreach (var pfn in batch)
        {
            if (Finish(pfn, cpu))
            {
                freed++;
            }
        }

        return freed;
    }

    /// <summary>
    /// The first half of <c>shrink_folio_list</c> for one page: true when the page is old enough, now locked and
    /// referenced by us, and unmapped (its entries' flushes deferred), for <see cref="Finish"/>; false leaves nothing
    /// held.
    /// </summary>
    private bool Isolate(long pfn, int cpu)
    {
        // Anonymous pages and page-cache pages, not the ones being set up or torn down: a racy look first, then under a
        // reference.
        var flags = memmap.PeekFlags(pfn);
        if ((flags & (PageFlags.PageTable | PageFlags.Reserved | PageFlags.Zero)) != 0)
        {
            return false;
        }

        if ((flags & PageFlags.Anon) != 0)
        {
            return swap.Device.Slots > 0 && release.TryGetPage(cpu, pfn) && IsolateAnon(pfn, cpu, ignoreReferences: false);
        }

        return Volatile.Read(ref memmap.Page(pfn).Mapping) > 0 && release.TryGetPage(cpu, pfn) && IsolateFile(pfn, cpu);
    }

    /// <summary>
    /// An anonymous page, with our reference: locked, in the swap cache and unmapped (true), or kept (false, nothing
    /// held). <paramref name="ignoreReferences"/> takes it whatever its age (<c>MADV_PAGEOUT</c>). Under
    /// <see cref="MachineOptions.WriteProtectBeforeSwap"/> true means locked and write-protected, its flushes deferred:
    /// <see cref="FinishBatch"/> adds it to the swap cache and unmaps it after the flush.
    /// </summary>
    private bool IsolateAnon(long pfn, int cpu, bool ignoreReferences)
    {
        counters.Add(cpu, Stat.ReclaimScans);
        if (!memmap.TestFlags(pfn, PageFlags.Anon) || (!ignoreReferences && !Aged(pfn, cpu)) || !memmap.TryLockPage(pfn))
        {
            release.PutPage(cpu, pfn);
            return false;
        }

        if (memmap.IsLarge(pfn) && !SplitLocked(pfn, cpu))
        {
            return false;
        }

        if (writeProtectBeforeSwap ? WriteProtectLocked(pfn, cpu) : UnmapAnonLocked(pfn, cpu))
        {
            return true;
        }

        KeepAnon(pfn, cpu);
        return false;
    }

    /// <summary>
    /// <c>shrink_folio_list</c>'s <c>split_folio_to_list</c>: a large anonymous folio goes to swap as order-0 pages.
    /// Enter with a reference on <paramref name="pfn"/>'s folio and its lock; true with a reference on
    /// <paramref name="pfn"/>, now an order-0 page, and its lock; false with nothing held (not split, or
    /// <paramref name="pfn"/> taken by someone else meanwhile).
    /// </summary>
    private bool SplitLocked(long pfn, int cpu)
    {
        var head = memmap.Head(pfn);
        var visitor = new SplitVisitor(this, pfn, cpu);
        rmap.Walk(pfn, ref visitor);
        if (!visitor.Split)
        {
            memmap.UnlockPage(head);
            release.PutPage(cpu, head);
            return false;
        }

        if (head == pfn)
        {
            return true;
        }

        // The split left our lock and reference on the old head: move them to our page, if it is still mapped.
        memmap.UnlockPage(head);
        release.PutPage(cpu, head);
        if (!release.TryGetPage(cpu, pfn))
        {
            return false;
        }

        if (!memmap.TryLockPage(pfn))
        {
            release.PutPage(cpu, pfn);
            return false;
        }

        // Held by nothing of ours meanwhile, it may have been unmapped, freed and reused, even in a new large folio.
        if (memmap.IsLarge(pfn) || !memmap.TestFlags(pfn, PageFlags.Anon))
        {
            memmap.UnlockPage(pfn);
            release.PutPage(cpu, pfn);
            return false;
        }

        return true;
    }

    /// <summary>
    /// Rule (d)'s first step for a locked anonymous page: every writable entry mapping it is made read-only under its
    /// PTL, its flush deferred. False when the page is kept: it may be pinned (as <see cref="UnmapAnonLocked"/> would
    /// find), or a writable entry maps it while something other than its mappings, the swap cache and reclaim holds it
    /// (rule (c): such a page is not made read-only; by the rules' reasoning the holder is GUP).
    /// </summary>
    private bool WriteProtectLocked(long pfn, int cpu)
    {
        if (skipMaybePinned && memmap.MaybeDmaPinned(pfn))
        {
            counters.Add(cpu, Stat.ReclaimKeptPinned);
            ProtocolEvents.Mark("shrink_folio_list", "pfn 0x{0:x} may be pinned: keep it", pfn);
            return false;
        }

        if (!memmap.MaybeMapped(pfn))
        {
            return true;
        }

        var protect = new WriteProtectVisitor(this, pfn, cpu, memmap.CountsMappings ? -1 : rmap.MapCount(pfn));
        rmap.Walk(pfn, ref protect);
        return protect.Protected;
    }

    /// <summary>
    /// Rule (d) at one mapping, under its PTL: a writable entry is made read-only (get-and-clear, then set: a dirty bit
    /// the hardware sets meanwhile is kept) and its flush deferred, if only the page's mappings, the swap cache and
    /// reclaim hold the page; otherwise the entry is left and false stops the walk. The page's mappings are its
    /// mapcount, read here (<paramref name="mappings"/> −1), or under the proposals the count an rmap walk found.
    /// </summary>
    private bool WriteProtectOne(Vma vma, ulong address, long pfn, int cpu, int mappings)
    {
        if (!LockPteMapping(vma, address, pfn, out var table, out var index, out var ptl))
        {
            return true;
        }

        var pte = ptes.PtepGet(table, index);
        if (!pte.IsWrite)
        {
            ptl.Exit();
            return true;
        }

        var expected = (mappings < 0 ? memmap.MapCount(pfn) : mappings) + 1 + (memmap.TestFlags(pfn, PageFlags.SwapCache) ? 1 : 0);
        var count = memmap.PageCount(pfn);
        if (count != expected)
        {
            ptl.Exit();
            counters.Add(cpu, Stat.ReclaimKeptWritable);
            ProtocolEvents.Mark("add_to_swap", "pfn 0x{0:x} writable at 0x{1:x} with {2} references, {3} expected: someone else holds it (rule (c)): keep it", pfn, address, count, expected);
            return false;
        }

        ptes.SetPte(table, index, ptes.PtepGetAndClear(table, index).WrProtect());
        DeferFlush(vma.Mm, address);
        ptl.Exit();
        counters.Add(cpu, Stat.ReclaimWriteProtects);
        ProtocolEvents.Mark("add_to_swap", "pte at 0x{1:x}: pfn 0x{0:x} write-protected before the swap cache (rule (d))", pfn, address);
        return true;
    }

    /// <summary>Gives back a locked anonymous page reclaim keeps: unlocked, our reference dropped.</summary>
    private void KeepAnon(long pfn, int cpu)
    {
        // A page kept while nothing maps it and no swap entry names its slot (a zap took its last entry while we held
        // it) has no business in the swap cache: leave it to whoever holds it, without the slot. Nor has a page rule
        // (d) keeps because a fault made it writable again.
        // Held besides any mapping: reclaim's reference, and the swap cache's if it is there.
        if (!memmap.MaybeMappedBesides(pfn, 1, orSwapCache: true) || writeProtectBeforeSwap)
        {
            swap.FreeSwap(pfn, release, cpu);
        }

        memmap.UnlockPage(pfn);
        release.PutPage(cpu, pfn);
    }

    /// <summary>
    /// A page-cache page, with our reference (the page we hold may have left the cache, or never been in one: checked
    /// here): locked and unmapped through the file's rmap (true), or kept (false, nothing held).
    /// </summary>
    private bool IsolateFile(long pfn, int cpu)
    {
        var id = Atomic.Read(ref memmap.Page(pfn).Mapping);
        if (id <= 0 || memmap.TestFlags(pfn, PageFlags.Anon) || id > files.All.Count)
        {
            release.PutPage(cpu, pfn);
            return false;
        }

        var file = files.ById(id);
        var index = (int)Atomic.Read(ref memmap.Page(pfn).Index);
        if (index < 0 || index >= file.Cache.Pages || file.Cache.Peek(index) != pfn)
        {
            release.PutPage(cpu, pfn);
            return false;
        }

        counters.Add(cpu, Stat.ReclaimScans);
        if (!Aged(pfn, cpu) || !memmap.TryLockPage(pfn))
        {
            release.PutPage(cpu, pfn);
            return false;
        }

        // Under the page lock the page cannot leave the cache (removal takes it): once it is still there, it stays.
        if (file.Cache.Peek(index) == pfn && UnmapFileLocked(file, pfn, cpu))
        {
            return true;
        }

        memmap.UnlockPage(pfn);
        release.PutPage(cpu, pfn);
        return false;
    }

    /// <summary>
    /// The second half of <c>shrink_folio_list</c>, after the batch's flush, for a page <see cref="Isolate"/> locked and
    /// unmapped: written to its slot or file if dirty (<c>pageout</c>), then <c>__remove_mapping</c>. True when it was
    /// freed; otherwise it is kept, unlocked, and our reference dropped.
    /// </summary>
    private bool Finish(long pfn, int cpu)
    {
        if (memmap.TestFlags(pfn, PageFlags.Anon))
        {
            if (SwapOutUnmapped(pfn, cpu))
            {
                return true;
            }

            KeepAnon(pfn, cpu);
            return false;
        }

        var file = files.OfPage(pfn);
        var index = (int)Atomic.Read(ref memmap.Page(pfn).Index);
        writeback.PageOutLocked(file, pfn, index, cpu);
        var freed = file.Cache.RemoveLocked(pfn, index, freezeBeforeDirtyTest);
        memmap.UnlockPage(pfn);
        if (freed)
        {
            file.Cache.FreeRemoved(pfn, cpu);
            counters.Add(cpu, Stat.ReclaimFileDrops);
        }
        else
        {
            release.PutPage(cpu, pfn);
        }

        return freed;
    }

    /// <summary>
    /// <c>try_to_unmap</c> of a locked page-cache page: every entry cleared, flushes deferred, dirty bits moved to the
    /// page. False when it is kept: it may be pinned, or is still mapped.
    /// </summary>
    private bool UnmapFileLocked(Inode file, long pfn, int cpu)
    {
        if (memmap.MaybeDmaPinned(pfn))
        {
            // The kernel would unmap and write it, then fail the freeze; kept at once, the page also stays mapped and
            // dirty for the pin's writes instead of being cleaned under them.
            counters.Add(cpu, Stat.ReclaimKeptPinned);
            ProtocolEvents.Mark("shrink_folio_list", "file pfn 0x{0:x} may be pinned: keep it", pfn);
            return false;
        }

        var unmap = new UnmapFileVisitor(this, file, pfn, cpu);
        return TryToUnmap(pfn, ref unmap, "file pfn 0x{0:x} still mapped after try_to_unmap: keep it");
    }

    /// <summary>
    /// Truncation's unmap of one locked page-cache page (<c>truncate_cleanup_folio</c>, which the kernel does with
    /// <c>unmap_mapping_folio</c>, to the same effect), with reclaim's <c>try_to_unmap</c> for file pages: every entry
    /// mapping the page in a VMA of the file's rmap cleared under its PTL, its dirty bit moved to the page, its flush
    /// deferred; then the deferred flushes done at once (<c>try_to_unmap_flush</c>), so no TLB still translates to the
    /// page when this returns. Unlike reclaim it does not keep a page that may be pinned: truncation removes a page
    /// whoever holds it. True when no entry maps the page any more; false when one still counts (a zap cleared an entry
    /// and has not yet removed its delayed rmap, which it does after its flush): the caller walks again. Enter with the
    /// page locked and referenced and no spinlock held; returns the same.
    /// </summary>
    internal bool UnmapTruncatedPage(Inode file, long pfn, int cpu)
    {
        var unmap = new UnmapFileVisitor(this, file, pfn, cpu);
        var unmapped = TryToUnmap(pfn, ref unmap, "file pfn 0x{0:x} still mapped after truncation's walk: walk again");
        FlushDeferred(cpu);
        return unmapped;
    }

    /// <summary>
    /// <c>try_to_unmap</c>'s walk of a locked page's mappings, if it has any; true when none is left. False marks
    /// <paramref name="stillMapped"/> (the page is kept).
    /// </summary>
    private bool TryToUnmap<TVisitor>(long pfn, ref TVisitor unmap, string stillMapped)
        where TVisitor : struct, IRmapVisitor
    {
        if (!memmap.MaybeMapped(pfn))
        {
            return true;
        }

        rmap.Walk(pfn, ref unmap);
        if (!rmap.Mapped(pfn))
        {
            return true;
        }

        ProtocolEvents.Mark("shrink_folio_list", stillMapped, pfn);
        return false;
    }

    /// <summary>
    /// <c>try_to_unmap_one</c> of a page-cache page at one mapping, under its PTL: the entry is cleared (a later access
    /// faults the page in from the cache or the store), its flush deferred, its dirty bit moved to the page.
    /// </summary>
    private void UnmapFileOne(Inode file, Vma vma, ulong address, long pfn, int cpu)
    {
        if (!LockPteMapping(vma, address, pfn, out var table, out var index, out var ptl))
        {
            return;
        }

        var old = ptes.PtepGetAndClear(table, index);
        DeferFlush(vma.Mm, address);
        if (old.IsDirty)
        {
            file.Cache.MarkDirty(pfn);
        }

        memmap.RemoveMapTestLast(pfn);
        ptl.Exit();
        ProtocolEvents.Mark("try_to_unmap_one", old.IsDirty ? "pte at 0x{1:x}: file pfn 0x{0:x} cleared, dirty (page marked dirty)" : "pte at 0x{1:x}: file pfn 0x{0:x} cleared", pfn, address);
        release.PutPage(cpu, pfn);
    }

    /// <summary>
    /// The first half for a locked anonymous page: into the swap cache (<c>add_to_swap</c>) and unmapped through the
    /// rmap, flushes deferred. False when it is kept: it may be pinned, is not mapped and not in the swap cache (being
    /// set up or torn down), swap is full, or it is still mapped (an exclusive page found maybe pinned).
    /// </summary>
    private bool UnmapAnonLocked(long pfn, int cpu)
    {
        if (!memmap.TestFlags(pfn, PageFlags.Anon))
        {
            return false;
        }

        if (skipMaybePinned && memmap.MaybeDmaPinned(pfn))
        {
            counters.Add(cpu, Stat.ReclaimKeptPinned);
            ProtocolEvents.Mark("shrink_folio_list", "pfn 0x{0:x} may be pinned: keep it", pfn);
            return false;
        }

        int slot;
        if (memmap.TestFlags(pfn, PageFlags.SwapCache))
        {
            slot = swap.SlotOf(pfn);
        }
        else if (!rmap.Mapped(pfn))
        {
            // Not mapped and not in the swap cache: a page a fault is setting up or a zap is tearing down, which the
            // kernel's LRU would not hold yet (or any more).
            return false;
        }
        else
        {
            slot = swap.Device.Allocate();
            if (slot < 0 || !swap.TryAdd(slot, pfn))
            {
                if (slot >= 0)
                {
                    swap.Device.ClearCache(slot);
                }

                return false;
            }

            memmap.SetFlags(pfn, PageFlags.Dirty);
            ProtocolEvents.Mark("add_to_swap", "pfn 0x{0:x} gets swap slot {2}", pfn, value: slot);
        }

        var unmap = new UnmapVisitor(this, pfn, slot, cpu);
        return TryToUnmap(pfn, ref unmap, "pfn 0x{0:x} still mapped after try_to_unmap: keep it");
    }

    /// <summary>
    /// The second half for an anonymous page, unmapped, its flushes done: written to its slot if dirty, then removed
    /// and freed; true when freed (the page lock and our reference are gone then). False leaves both to the caller.
    /// </summary>
    private bool SwapOutUnmapped(long pfn, int cpu)
    {
        var slot = swap.SlotOf(pfn);
        if (memmap.TestAndClearFlag(pfn, PageFlags.Dirty))
        {
            // pageout: the page is unmapped and locked; only a GUP reference can still write it, and then the freeze
            // below fails (or the page is dirty again and is kept).
            memmap.SetFlags(pfn, PageFlags.Writeback);
            SchedulingPoint.Interleave();
            memory.Frame(pfn).CopyTo(swap.Device.Page(slot));
            memmap.ClearFlags(pfn, PageFlags.Writeback);
            counters.Add(cpu, Stat.SwapOuts);
            ProtocolEvents.Mark("swap_writepage", "pfn 0x{0:x} written to swap slot {2}", pfn, value: slot);
        }

        return RemoveMapping(pfn, slot, cpu);
    }

    /// <summary>
    /// <c>__remove_mapping</c> for a swap-cache page: freeze the refcount at the cache's reference and ours, then test
    /// dirty; delete from the swap cache, unlock and free. False (nothing changed) when someone else holds the page or
    /// dirtied it.
    /// </summary>
    private bool RemoveMapping(long pfn, int slot, int cpu)
    {
        if (!freezeBeforeDirtyTest)
        {
            // The old order: a GUP user may dirty the page and drop its reference between the test and the freeze.
            if (memmap.TestFlags(pfn, PageFlags.Dirty))
            {
                ProtocolEvents.Mark("__remove_mapping", "pfn 0x{0:x} is dirty: keep it", pfn);
                return false;
            }

            ProtocolEvents.Mark("__remove_mapping", "pfn 0x{0:x} is clean (tested before the freeze)", pfn);
            if (!FreezeUnderCacheLock(pfn))
            {
                ProtocolEvents.Mark("__remove_mapping", "pfn 0x{0:x}: refcount not 2 (someone holds it): keep it", pfn);
                return false;
            }

            return Discard(pfn, slot, cpu);
        }

        if (!FreezeUnderCacheLock(pfn))
        {
            ProtocolEvents.Mark("__remove_mapping", "pfn 0x{0:x}: refcount not 2 (someone holds it): keep it", pfn);
            return false;
        }

        if (memmap.TestFlags(pfn, PageFlags.Dirty))
        {
            Atomic.Write(ref memmap.Page(pfn).RefCount, 2);
            ProtocolEvents.Mark("__remove_mapping", "pfn 0x{0:x} dirtied again after the freeze: keep it", pfn);
            return false;
        }

        return Discard(pfn, slot, cpu);
    }

    /// <summary>
    /// <c>folio_ref_freeze</c> at the cache's reference and ours, under the swap cache's lock as <c>__remove_mapping</c>
    /// takes the mapping's <c>i_pages</c> lock for the freeze and the deletion.
    /// </summary>
    private bool FreezeUnderCacheLock(long pfn)
    {
        swap.Lock.Enter();
        var frozen = memmap.FreezeRefs(pfn, 2);
        swap.Lock.Exit();
        return frozen;
    }

    /// <summary>The end of <c>__remove_mapping</c>: the frozen page leaves the swap cache, is unlocked and freed.</summary>
    private bool Discard(long pfn, int slot, int cpu)
    {
        swap.Delete(pfn);
        swap.Device.ClearCache(slot);
        memmap.UnlockPage(pfn);
        ProtocolEvents.Mark("__remove_mapping", "pfn 0x{0:x} frozen at 0 and freed; its data is in swap slot {2}", pfn, value: slot);
        release.FreeReleasedPage(cpu, pfn);
        return true;
    }

    /// <summary>
    /// The page's age, from the A bits of its entries (<see cref="Referenced"/>, which clears them) and its aging flags;
    /// true when it is old enough to reclaim now. An active page the hand finds unused is deactivated
    /// (<c>shrink_active_list</c>); one it finds used stays active. An inactive page found used is kept and marked
    /// referenced, and activated if it was marked already: used on two looks in a row (<c>folio_check_references</c>'
    /// <c>FOLIOREF_ACTIVATE</c>). An inactive page found unused is reclaimed. So a page used once gets one second chance,
    /// as under the plain clock, and a page used repeatedly gets two more sweeps after its use stops.
    /// </summary>
    private bool Aged(long pfn, int cpu)
    {
        var young = Referenced(pfn);
        var flags = memmap.PeekFlags(pfn);
        if ((flags & PageFlags.Active) != 0)
        {
            if (!young)
            {
                memmap.Age(pfn, PageFlags.None, PageFlags.Active | PageFlags.Referenced);
                counters.Add(cpu, Stat.LruDeactivations);
            }

            return false;
        }

        if (!young)
        {
            memmap.Age(pfn, PageFlags.None, PageFlags.Referenced);
            return true;
        }

        if ((flags & PageFlags.Referenced) != 0)
        {
            memmap.Age(pfn, PageFlags.Active, PageFlags.Referenced);
            counters.Add(cpu, Stat.LruActivations);
        }
        else
        {
            memmap.Age(pfn, PageFlags.Referenced, PageFlags.None);
        }

        return false;
    }

    /// <summary><c>folio_referenced</c>: whether an entry mapping the page was accessed since the last look (clearing the A bits).</summary>
    private bool Referenced(long pfn)
    {
        if (!memmap.MaybeMapped(pfn))
        {
            return false;
        }

        var visitor = new ReferencedVisitor(this, pfn);
        rmap.Walk(pfn, ref visitor);
        return visitor.Referenced;
    }

    private bool ClearYoung(Vma vma, ulong address, long pfn)
    {
        if (!LockPteMapping(vma, address, pfn, out var table, out var index, out var ptl))
        {
            return false;
        }

        var young = ptes.PtepTestAndClearYoung(table, index);
        ptl.Exit();
        return young;
    }

    /// <summary>
    /// <c>page_vma_mapped_walk</c> for one page at one address: true, with the PTL held, when the entry at
    /// <paramref name="address"/> of <paramref name="vma"/> maps <paramref name="pfn"/>; false, with no lock held, when
    /// there is no page table there or the entry maps something else (or nothing).
    /// </summary>
    private bool LockPteMapping(Vma vma, ulong address, long pfn, out long table, out int index, out Spinlock ptl)
    {
        index = PageTableSet.Index(address, 1);
        table = tables.WalkToPteTable(vma.Mm.Pgd, address);
        if (table < 0)
        {
            ptl = null!;
            return false;
        }

        ptl = tables.Ptl(table);
        ptl.Enter();
        var pte = ptes.PtepGet(table, index);
        if (pte.IsPresent && pte.Pfn == pfn)
        {
            return true;
        }

        ptl.Exit();
        return false;
    }

    /// <summary>
    /// <c>try_to_unmap_one</c> at one mapping, under its PTL. False when the page turned out to be maybe pinned while
    /// exclusive: the entry is restored and the walk stops.
    /// </summary>
    private bool UnmapOne(Vma vma, ulong address, long pfn, int slot, int cpu)
    {
        if (!LockPteMapping(vma, address, pfn, out var table, out var index, out var ptl))
        {
            return true;
        }

        if (writeProtectBeforeSwap && ptes.PtepGet(table, index).IsWrite)
        {
            // A write fault reused the page after rule (d) write-protected it: it is not swapped writable.
            ptl.Exit();
            counters.Add(cpu, Stat.ReclaimKeptWritable);
            ProtocolEvents.Mark("try_to_unmap_one", "pfn 0x{0:x} at 0x{1:x} writable again since it was write-protected: keep it", pfn, address);
            return false;
        }

        var old = ptes.PtepGetAndClear(table, index);

        // set_tlb_ubc_flush_pending: the flush is deferred to the end of the batch (before the page is written or
        // freed), and the mm is marked so that mprotect, munmap and madvise flush first (flush_tlb_batched_pending).
        DeferFlush(vma.Mm, address);
        if (old.IsDirty)
        {
            memmap.SetFlags(pfn, PageFlags.Dirty);
        }

        // Before Linux 5.19 there is no exclusive bit to keep, and nothing here looks at pins.
        var exclusive = tracksAnonExclusive && memmap.TestFlags(pfn, PageFlags.AnonExclusive);
        if (exclusive && memmap.MaybeDmaPinned(pfn))
        {
            // folio_try_share_anon_rmap failed: a pin may write the page through the mapping it expects; put it back.
            ptes.SetPte(table, index, old);
            ptl.Exit();
            counters.Add(cpu, Stat.ReclaimKeptPinned);
            ProtocolEvents.Mark("try_to_unmap_one", "pfn 0x{0:x} at 0x{1:x} exclusive and maybe pinned: restore the pte", pfn, address);
            return false;
        }

        if (!swap.Device.Duplicate(slot))
        {
            throw new InvalidOperationException($"swap_duplicate of slot {slot}, which the page in the swap cache holds, failed.");
        }

        if (exclusive)
        {
            memmap.ClearFlags(pfn, PageFlags.AnonExclusive);
        }

        ptes.SetPte(table, index, Pte.MakeSwap(0, slot, exclusive));
        memmap.RemoveMapTestLast(pfn);
        ptl.Exit();
        ProtocolEvents.Mark("try_to_unmap_one", exclusive ? "pte at 0x{1:x}: pfn 0x{0:x} -> exclusive swap entry for slot {2}" : "pte at 0x{1:x}: pfn 0x{0:x} -> swap entry for slot {2}", pfn, address, slot);
        release.PutPage(cpu, pfn);
        return true;
    }

    /// <summary>This thread's deferred flushes (a reclaim's batch): each mm and the page it unmapped there.</summary>
    [ThreadStatic]
    private static List<(MmStruct Mm, ulong Address)>? t_deferred;

    private static void DeferFlush(MmStruct mm, ulong address)
    {
        (t_deferred ??= []).Add((mm, address));
        mm.SetTlbBatchPending();
        ProtocolEvents.Mark("set_tlb_ubc_flush_pending", "mm {2}: pte at 0x{1:x} cleared, its TLB flush deferred to the end of the batch", address: address, value: mm.Id);
    }

    /// <summary>
    /// <c>try_to_unmap_flush</c>: one flush per mm of the batch, over the range from its lowest to its highest deferred
    /// entry (the kernel flushes every TLB of the batch's cpumask whole: <c>arch_tlbbatch_flush</c>).
    /// </summary>
    private void FlushDeferred(int cpu)
    {
        var deferred = t_deferred;
        if (deferred is null)
        {
            return;
        }

        for (var i = 0; i < deferred.Count; i++)
        {
            var mm = deferred[i].Mm;
            var seen = false;
            for (var j = 0; j < i && !seen; j++)
            {
                seen = deferred[j].Mm == mm;
            }

            if (seen)
            {
                continue;
            }

            ulong low = ulong.MaxValue, high = 0;
            var entries = 0;
            for (var j = i; j < deferred.Count; j++)
            {
                if (deferred[j].Mm == mm)
                {
                    low = Math.Min(low, deferred[j].Address);
                    high = Math.Max(high, deferred[j].Address);
                    entries++;
                }
            }

            ProtocolEvents.Mark(
                "try_to_unmap_flush",
                entries == 1 ? "flush the deferred TLB entry of 0x{1:x} (mm {2})" : "flush the {3} deferred TLB entries of [0x{1:x}, 0x{0:x}] (mm {2})",
                (long)high,
                low,
                mm.Id,
                entries);
            shootdown.FlushTlbRange(mm.Context, low, high + PhysicalMemory.PageSize, cpu);
        }

        deferred.Clear();
    }

    private struct ReferencedVisitor(Reclaimer owner, long pfn) : IRmapVisitor
    {
        public bool Referenced { get; private set; }

        public bool Visit(Vma vma, ulong address)
        {
            Referenced |= owner.ClearYoung(vma, address, pfn);
            return true;
        }
    }

    private struct WriteProtectVisitor(Reclaimer owner, long pfn, int cpu, int mappings) : IRmapVisitor
    {
        public bool Protected { get; private set; } = true;

        public bool Visit(Vma vma, ulong address) => Protected = owner.WriteProtectOne(vma, address, pfn, cpu, mappings);
    }

    private bool SplitAt(Vma vma, ulong address, long pfn, int cpu) => splitter.TrySplitLocked(pfn, vma.Mm, address, cpu);

    private struct SplitVisitor(Reclaimer owner, long pfn, int cpu) : IRmapVisitor
    {
        public bool Split { get; private set; }

        // The first mapping decides: the split succeeds only if every mapping is an entry of that one table.
        public bool Visit(Vma vma, ulong address)
        {
            Split = owner.SplitAt(vma, address, pfn, cpu);
            return false;
        }
    }

    private struct UnmapVisitor(Reclaimer owner, long pfn, int slot, int cpu) : IRmapVisitor
    {
        public bool Visit(Vma vma, ulong address) => owner.UnmapOne(vma, address, pfn, slot, cpu);
    }

    private struct UnmapFileVisitor(Reclaimer owner, Inode file, long pfn, int cpu) : IRmapVisitor
    {
        public bool Visit(Vma vma, ulong address)
        {
            owner.UnmapFileOne(file, vma, address, pfn, cpu);
            return true;
        }
    }
}
