using Engine.Cpus;
using Engine.Files;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Policy;
using Engine.Rmap;
using Engine.Stats;
using Engine.Swap;
using Engine.Sync;

namespace Engine.Faults;

/// <summary>
/// Page faults on anonymous memory (<c>mm/memory.c</c>): <see cref="HandleMmFault"/>, <see cref="DoAnonymousPage"/>,
/// <see cref="DoWpPage"/>, <see cref="WpPageCopy"/>. Every handler snapshots the entry without the PTL
/// (<c>PtepGetLockless</c>), prepares what it can unlocked, then takes the PTL and re-validates with
/// <c>pte_same</c>; when the entry changed it undoes its preparation and returns, and the access retries.
/// </summary>
internal sealed class FaultHandler(
    PhysicalMemory memory,
    Memmap memmap,
    FrameAllocator allocator,
    PageRelease release,
    PageTableSet tables,
    PteAccess ptes,
    Shootdown shootdown,
    AnonRmap anonRmap,
    KernelGeneration generation,
    StatCounters counters,
    SwapCache swap,
    long zeroPfn,
    SwapInKnobs swapIn,
    bool truncationRecheck = true,
    bool readFaultLocksPage = true)
{
    private readonly SwapReuseView _swapCounts = new(memmap, swap, release);

    /// <summary>
    /// <c>handle_mm_fault</c>. Enter with nothing held; takes the mmap_lock for read; returns with nothing held.
    /// Throws <see cref="SegmentationFault"/> for an access no VMA allows and <see cref="OutOfFramesException"/> when
    /// no frame is left (nothing is changed then). <paramref name="unshare"/> (<c>FAULT_FLAG_UNSHARE</c>, from GUP
    /// for a read-only pin): a read access after which an anonymous page mapped here is exclusive to this mm, reused
    /// or copied, its entry left read-only. <paramref name="force"/> (<c>FOLL_FORCE</c>, from ptrace's pokes): a
    /// write to a read-only private mapping is allowed and breaks copy-on-write, but the new page is mapped read-only
    /// (<c>maybe_mkwrite</c>: only a writable VMA gets writable entries).
    /// </summary>
    public void HandleMmFault(CpuContext cpu, MmStruct mm, ulong address, bool write, bool unshare = false, bool force = false)
    {
        mm.MmapLock.EnterRead();
        try
        {
            HandleMmFaultLocked(cpu, mm, address, write, unshare, force);
        }
        finally
        {
            mm.MmapLock.ExitRead();
        }
    }

    /// <summary>
    /// <see cref="HandleMmFault"/> for a caller that holds <paramref name="mm"/>'s mmap_lock for read already (GUP for
    /// another process, as ptrace's <c>access_remote_vm</c> calls it); returns with it still held.
    /// </summary>
    public void HandleMmFaultLocked(CpuContext cpu, MmStruct mm, ulong address, bool write, bool unshare = false, bool force = false)
    {
        if (Checks.Enabled)
        {
            Contract.Held(mm.MmapLock, "the mmap_lock");
        }

        var vma = mm.FindVma(address) ?? throw new SegmentationFault(address, SegmentationFaultReason.Unmapped, write);
        if (write ? !vma.CanWrite && !MayForceWrite(vma, force) : !vma.CanRead)
        {
            throw new SegmentationFault(address, SegmentationFaultReason.Protection, write);
        }

        var table = tables.PteAlloc(mm.Pgd, mm.PageTableLock, address, cpu.Id);
        if (table < 0)
        {
            throw new OutOfFramesException($"Out of frames for a page table at 0x{address:x}.");
        }

        var index = PageTableSet.Index(address, 1);
        var orig = ptes.PtepGetLockless(table, index);
        if (orig.IsNone)
        {
            if (vma.File is null)
            {
                DoAnonymousPage(cpu, vma, table, index, address, write);
            }
            else
            {
                DoFault(cpu, vma, table, index, address, write);
            }
        }
        else if (orig.IsSwap)
        {
            DoSwapPage(cpu, vma, table, index, address, orig, write);
        }
        else if (orig.IsPresent && unshare && !write && !orig.IsWrite && !vma.IsShared)
        {
            DoWpPage(cpu, vma, table, index, address, orig, unshare: true);
        }
        else if (orig.IsPresent && write && !orig.IsWrite)
        {
            if (vma.File is not null && vma.IsShared)
            {
                WpPageShared(cpu, vma, table, index, orig);
            }
            else
            {
                DoWpPage(cpu, vma, table, index, address, orig, unshare: false);
            }
        }
        else
        {
            // Present and usable (another CPU resolved it first), or a protnone entry in a VMA that allows the
            // access again: change_protection restores those, so seeing one here means mprotect is racing and
            // the retry will find the result.
            counters.Add(cpu.Id, Stat.SpuriousFaults);
        }
    }

    /// <summary>
    /// <c>do_anonymous_page</c>. Enter with the mmap_lock held for read, the PTE table present, no PTL; returns the
    /// same. A read maps the shared zero page read-only; a write maps a new zeroed page, AnonExclusive, mapcount set
    /// to 0 directly.
    /// </summary>
    private void DoAnonymousPage(CpuContext cpu, Vma vma, long table, int index, ulong address, bool write)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var ptl = tables.Ptl(table);
        if (!write)
        {
            ptl.Enter();
            if (ptes.PtepGet(table, index).IsNone)
            {
                ptes.SetPte(table, index, Pte.Make(zeroPfn, write: false, young: true, special: true));
                ProtocolEvents.Mark("do_anonymous_page", "read fault at 0x{1:x}: map the zero page read-only", zeroPfn, address);
                counters.Add(cpu.Id, Stat.ZeroPageFaults);
            }
            else
            {
                ProtocolEvents.Mark("do_anonymous_page", "pte at 0x{1:x} is no longer none: another fault won, retry", address: address);
                counters.Add(cpu.Id, Stat.FaultRetries);
            }

            ptl.Exit();
            return;
        }

        // vmf_anon_prepare: the page's anon_vma exists before the page does.
        anonRmap.Prepare(vma, cpu.Id);
        if (memmap.FolioOrder != 0 && TryMapAnonFolio(cpu, vma, table, address))
        {
            return;
        }

        var pfn = allocator.AllocatePage(cpu.Id);
        if (pfn < 0)
        {
            throw new OutOfFramesException($"Out of frames for a page at 0x{address:x}.");
        }

        memmap.SetFlags(pfn, PageFlags.Anon | PageFlags.AnonExclusive);
        if (!LockPteStillNone(cpu, ptl, table, index))
        {
            // Another fault mapped the page first. Nobody saw ours.
            release.PutPage(cpu.Id, pfn);
            return;
        }

        // The new page's one reference (taken by the allocator) is the PTE's; the mapcount is set directly.
        anonRmap.AddNewAnonRmap(pfn, vma, address);
        ptes.SetPte(table, index, Pte.Make(pfn, write: vma.CanWrite, dirty: true, young: true));
        ProtocolEvents.Mark("do_anonymous_page", "write fault at 0x{1:x}: map new page pfn 0x{0:x} (AnonExclusive)", pfn, address);
        ptl.Exit();
        counters.Add(cpu.Id, Stat.AnonymousFaults);
        counters.Add(cpu.Id, Stat.PagesAllocated);
    }

    /// <summary>
    /// <c>alloc_anon_folio</c> and the large-folio half of <c>do_anonymous_page</c>: when the naturally aligned range of
    /// a folio around <paramref name="address"/> lies in the VMA and no entry of it is set (<c>pte_range_none</c>, read
    /// without the PTL and again under it), allocates a large folio and maps every page of it writable, dirty and
    /// AnonExclusive, one reference and one mapping per entry. Returns false, having changed nothing, when the range
    /// does not qualify or no aligned block is free (the caller maps one page); true when it mapped the folio or found
    /// the range taken under the PTL (the access retries). Enter with the mmap_lock held for read, the anon_vma
    /// prepared, no PTL; returns the same.
    /// </summary>
    private bool TryMapAnonFolio(CpuContext cpu, Vma vma, long table, ulong address)
    {
        var pages = memmap.FolioPages;
        var size = (ulong)pages << PhysicalMemory.PageShift;
        var start = address & ~(size - 1);
        var first = PageTableSet.Index(start, 1);
        if (start < vma.Start || start + size > vma.End || !RangeNone(table, first, pages, locked: false))
        {
            ProtocolEvents.Mark("alloc_anon_folio", "0x{1:x}: the aligned range is not empty or not in one VMA: one page", address: address);
            counters.Add(cpu.Id, Stat.AnonFolioFallbacks);
            return false;
        }

        var head = allocator.AllocateFolio(cpu.Id);
        if (head < 0)
        {
            ProtocolEvents.Mark("alloc_anon_folio", "0x{1:x}: no free aligned block: one page", address: address);
            counters.Add(cpu.Id, Stat.AnonFolioFallbacks);
            return false;
        }

        memmap.PrepareFolio(head);
        for (var i = 0; i < pages; i++)
        {
            memmap.SetFlags(head + i, PageFlags.Anon | PageFlags.AnonExclusive);
        }

        var ptl = tables.Ptl(table);
        ptl.Enter();
        if (!RangeNone(table, first, pages, locked: true))
        {
            // Another fault mapped part of the range first. Nobody saw the folio.
            ptl.Exit();
            ProtocolEvents.Mark("do_anonymous_page", "the range at 0x{1:x} is no longer empty: another fault won, retry", address: start);
            counters.Add(cpu.Id, Stat.FaultRetries);
            release.PutPage(cpu.Id, head);
            return true;
        }

        // One reference per entry (the allocator's is the first), then the rmap, then the entries.
        memmap.AddFolioRefs(head, pages - 1);
        for (var i = 0; i < pages; i++)
        {
            anonRmap.SetAnonMapping(head + i, vma, start + ((ulong)i << PhysicalMemory.PageShift));
        }

        memmap.SetNewAnonFolio(head, vma.Mm.Id);
        for (var i = 0; i < pages; i++)
        {
            ptes.SetPte(table, first + i, Pte.Make(head + i, write: vma.CanWrite, dirty: true, young: true));
        }

        ProtocolEvents.Mark("do_anonymous_page", "write fault at 0x{1:x}: map a new large folio at pfn 0x{0:x} ({2} pages, AnonExclusive)", head, address, pages);
        ptl.Exit();
        counters.Add(cpu.Id, Stat.AnonymousFaults);
        counters.Add(cpu.Id, Stat.AnonFolioFaults);
        counters.Add(cpu.Id, Stat.PagesAllocated, pages);
        return true;
    }

    /// <summary><c>pte_range_none</c>: no entry of <paramref name="count"/> from <paramref name="first"/> is set. Unlocked reads are lockless snapshots.</summary>
    private bool RangeNone(long table, int first, int count, bool locked)
    {
        for (var i = first; i < first + count; i++)
        {
            if (!(locked ? ptes.PtepGet(table, i) : ptes.PtepGetLockless(table, i)).IsNone)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// <c>do_fault</c>: the first access to a page of a file mapping. Enter with the mmap_lock held for read, the PTE
    /// table present, no PTL; returns the same. Dispatches as the kernel does: a read maps the page-cache page
    /// read-only, even in a writable shared mapping (write-notify: the first store must fault so the page is
    /// dirtied); a write to a private mapping copies the page (<c>do_cow_fault</c>); a write to a shared mapping
    /// dirties the page under its lock (<c>do_shared_fault</c>). A page at or beyond the end of the file is
    /// <see cref="SegmentationFaultReason.BeyondEndOfFile"/> (SIGBUS), checked before the lookup, by the fill under
    /// the index lock, and again under the page lock (<see cref="LockFilePage"/>).
    /// </summary>
    private void DoFault(CpuContext cpu, Vma vma, long table, int index, ulong address, bool write)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var file = vma.File!;
        var fileIndex = (int)vma.LinearPageIndex(address);
        if (fileIndex >= file.SizePages)
        {
            throw BeyondEndOfFile(fileIndex, address, write);
        }

        var pfn = file.Cache.GetOrFill(fileIndex, cpu.Id);
        if (pfn == PageCache.BeyondEndOfFile)
        {
            throw BeyondEndOfFile(fileIndex, address, write);
        }

        if (pfn < 0)
        {
            throw new OutOfFramesException($"Out of frames for a page of {file} at 0x{address:x}.");
        }

        if (!write)
        {
            DoReadFault(cpu, file, fileIndex, table, index, address, pfn);
        }
        else if (!vma.IsShared)
        {
            DoCowFault(cpu, vma, fileIndex, table, index, address, pfn);
        }
        else
        {
            DoSharedFault(cpu, file, fileIndex, table, index, address, pfn);
        }
    }

    /// <summary>
    /// <c>filemap_fault</c>'s <c>lock_folio</c> and the checks it makes under the lock: lock the page-cache page; if it
    /// left the cache meanwhile (truncated: the kernel's <c>folio-&gt;mapping != mapping</c>), drop it and return false,
    /// and the access retries; if the file now ends at or before it, unlock and drop it and throw
    /// <see cref="SegmentationFaultReason.BeyondEndOfFile"/>. Truncation publishes the new size before it locks a page
    /// to remove it, so once the size is published no fault can map a page beyond it, and a fault that mapped one
    /// earlier did so under this lock, before truncation's "is it mapped?" test. Enter with a reference on
    /// <paramref name="pfn"/> and no lock but the mmap_lock; returns true with the page locked, false with the
    /// reference dropped.
    /// </summary>
    private bool LockFilePage(CpuContext cpu, Inode file, int fileIndex, long pfn, ulong address, bool write)
    {
        memmap.LockPage(pfn);
        if (!truncationRecheck)
        {
            return true;
        }

        if (file.Cache.Peek(fileIndex) != pfn)
        {
            ProtocolEvents.Mark("filemap_fault", "pfn 0x{0:x} (file page {2}) was truncated while we waited for its lock: retry", pfn, address, fileIndex);
            memmap.UnlockPage(pfn);
            release.PutPage(cpu.Id, pfn);
            counters.Add(cpu.Id, Stat.FaultRetries);
            return false;
        }

        if (fileIndex >= file.SizePages)
        {
            ProtocolEvents.Mark("filemap_fault", "pfn 0x{0:x} (file page {2}) is beyond the end of the file, found under its lock: SIGBUS", pfn, address, fileIndex);
            memmap.UnlockPage(pfn);
            release.PutPage(cpu.Id, pfn);
            throw BeyondEndOfFile(fileIndex, address, write);
        }

        return true;
    }

    private static SegmentationFault BeyondEndOfFile(int fileIndex, ulong address, bool write)
    {
        ProtocolEvents.Mark("filemap_fault", "file page {2} at 0x{1:x} is beyond the end of the file: SIGBUS", address: address, value: fileIndex);
        return new SegmentationFault(address, SegmentationFaultReason.BeyondEndOfFile, write);
    }

    /// <summary>
    /// <c>do_read_fault</c> + <c>finish_fault</c>, the page locked across the mapping as <c>filemap_fault</c> returns
    /// it. Enter with the mmap_lock held for read, no PTL, and a reference on the page-cache page, which becomes the
    /// new entry's; returns with no PTL, the page unlocked, and that reference passed on or dropped.
    /// </summary>
    private void DoReadFault(CpuContext cpu, Inode file, int fileIndex, long table, int index, ulong address, long pfn)
    {
        if (readFaultLocksPage && !LockFilePage(cpu, file, fileIndex, pfn, address, write: false))
        {
            return;
        }

        var ptl = tables.Ptl(table);
        if (!LockPteStillNone(cpu, ptl, table, index))
        {
            if (readFaultLocksPage)
            {
                memmap.UnlockPage(pfn);
            }

            release.PutPage(cpu.Id, pfn);
            return;
        }

        // folio_add_file_rmap_pte, then the read-only entry.
        memmap.AddMapTestFirst(pfn);
        ptes.SetPte(table, index, Pte.Make(pfn, write: false, dirty: false, young: true));
        ProtocolEvents.Mark("do_read_fault", "map page-cache pfn 0x{0:x} read-only at 0x{1:x}", pfn, address);
        ptl.Exit();
        if (readFaultLocksPage)
        {
            memmap.UnlockPage(pfn);
        }

        counters.Add(cpu.Id, Stat.FileReadFaults);
    }

    /// <summary>
    /// <c>do_cow_fault</c>: a write to a page of a private file mapping that is not mapped yet. Enter with the
    /// mmap_lock held for read, no PTL, and a reference on the page-cache page; returns with no PTL, the page unlocked
    /// and that reference dropped. The page is locked (<see cref="LockFilePage"/>), copied into a new AnonExclusive
    /// page, which is mapped writable, and unlocked; the file is untouched.
    /// </summary>
    private void DoCowFault(CpuContext cpu, Vma vma, int fileIndex, long table, int index, ulong address, long pfn)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        anonRmap.Prepare(vma, cpu.Id);
        var fresh = allocator.AllocatePage(cpu.Id);
        if (fresh < 0)
        {
            release.PutPage(cpu.Id, pfn);
            throw new OutOfFramesException($"Out of frames for a private copy of {vma.File} at 0x{address:x}.");
        }

        // The copy is made and mapped under the page lock (as __do_fault returns the page locked and do_cow_fault unlocks
        // it after finish_fault): truncation, which takes that lock, finds the copy mapped when it gets it, and its
        // second unmap_mapping_range removes it.
        try
        {
            if (!LockFilePage(cpu, vma.File!, fileIndex, pfn, address, write: true))
            {
                release.PutPage(cpu.Id, fresh);
                return;
            }
        }
        catch (SegmentationFault)
        {
            release.PutPage(cpu.Id, fresh);
            throw;
        }

        // A shared mapping of the same file may be storing into the page meanwhile: the copy takes each word as it is.
        SchedulingPoint.Interleave();
        memory.Frame(pfn).CopyTo(memory.Frame(fresh));

        memmap.SetFlags(fresh, PageFlags.Anon | PageFlags.AnonExclusive);
        var ptl = tables.Ptl(table);
        if (!LockPteStillNone(cpu, ptl, table, index))
        {
            memmap.UnlockPage(pfn);
            release.PutPage(cpu.Id, fresh);
            release.PutPage(cpu.Id, pfn);
            return;
        }

        anonRmap.AddNewAnonRmap(fresh, vma, address);
        ptes.SetPte(table, index, Pte.Make(fresh, write: vma.CanWrite, dirty: true, young: true));
        ProtocolEvents.Mark("do_cow_fault", "copy page-cache pfn 0x{2:x} into new pfn 0x{0:x}, mapped at 0x{1:x}", fresh, address, pfn);
        ptl.Exit();
        memmap.UnlockPage(pfn);
        release.PutPage(cpu.Id, pfn);
        counters.Add(cpu.Id, Stat.FilePrivateWriteFaults);
        counters.Add(cpu.Id, Stat.PagesAllocated);
    }

    /// <summary>
    /// <c>do_shared_fault</c>: the first write to a page of a shared file mapping. Enter with the mmap_lock held for
    /// read, no PTL, and a reference on the page-cache page, which becomes the new entry's; returns with no PTL. The
    /// page is locked and dirtied (<c>page_mkwrite</c>), mapped writable and dirty, dirtied again
    /// (<c>fault_dirty_shared_page</c>) and only then unlocked, so writeback, which cleans under the page lock, sees
    /// either no entry or a dirty page.
    /// </summary>
    private void DoSharedFault(CpuContext cpu, Inode file, int fileIndex, long table, int index, ulong address, long pfn)
    {
        if (!LockFilePage(cpu, file, fileIndex, pfn, address, write: true))
        {
            return;
        }

        file.Cache.MarkDirty(pfn);
        var ptl = tables.Ptl(table);
        if (!LockPteStillNone(cpu, ptl, table, index))
        {
            memmap.UnlockPage(pfn);
            release.PutPage(cpu.Id, pfn);
            return;
        }

        memmap.AddMapTestFirst(pfn);
        ptes.SetPte(table, index, Pte.Make(pfn, write: true, dirty: true, young: true));
        ProtocolEvents.Mark("do_shared_fault", "page-cache pfn 0x{0:x} dirtied and mapped writable at 0x{1:x}", pfn, address);
        ptl.Exit();
        file.Cache.MarkDirty(pfn);
        memmap.UnlockPage(pfn);
        counters.Add(cpu.Id, Stat.FileSharedWriteFaults);
    }

    /// <summary>
    /// <c>wp_page_shared</c>: a write to a read-only entry of a shared file mapping (mapped by a read fault, or
    /// cleaned by writeback). Enter with the mmap_lock held for read and no PTL, <paramref name="orig"/> the lockless
    /// snapshot; returns with no PTL. Under a reference: lock the page and dirty it (<c>page_mkwrite</c>), relock the
    /// PTL, <c>pte_same</c>, make the entry writable and dirty (no flush: a stale read-only translation faults), dirty
    /// the page again and unlock it.
    /// </summary>
    private void WpPageShared(CpuContext cpu, Vma vma, long table, int index, Pte orig)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var file = vma.File!;
        var ptl = tables.Ptl(table);
        ptl.Enter();
        if (ptes.PtepGet(table, index) != orig)
        {
            ptl.Exit();
            counters.Add(cpu.Id, Stat.FaultRetries);
            return;
        }

        var pfn = orig.Pfn;
        memmap.GetPage(pfn);
        ptl.Exit();

        memmap.LockPage(pfn);
        file.Cache.MarkDirty(pfn);
        ptl.Enter();
        var same = ptes.PtepGet(table, index) == orig;
        if (same)
        {
            ptes.SetPte(table, index, orig.MkWrite().MkDirty().MkYoung());
            ProtocolEvents.Mark("wp_page_shared", "page-cache pfn 0x{0:x} dirtied, pte made writable", pfn);
        }
        else
        {
            ProtocolEvents.Mark("wp_page_shared", "pte changed while pfn 0x{0:x} was being dirtied: retry", pfn);
        }

        ptl.Exit();
        if (same)
        {
            file.Cache.MarkDirty(pfn);
            counters.Add(cpu.Id, Stat.FileSharedWriteFaults);
        }
        else
        {
            counters.Add(cpu.Id, Stat.FaultRetries);
        }

        memmap.UnlockPage(pfn);
        release.PutPage(cpu.Id, pfn);
    }

    /// <summary>
    /// <c>do_wp_page</c>: a write to a present read-only entry in a writable VMA. Enter with the mmap_lock held for
    /// read and no PTL, <paramref name="orig"/> the lockless snapshot; returns with the mmap_lock held and no PTL.
    /// </summary>
    private void DoWpPage(CpuContext cpu, Vma vma, long table, int index, ulong address, Pte orig, bool unshare)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var ptl = tables.Ptl(table);
        ptl.Enter();
        if (ptes.PtepGet(table, index) != orig)
        {
            ptl.Exit();
            counters.Add(cpu.Id, Stat.FaultRetries);
            return;
        }

        counters.Add(cpu.Id, Stat.WriteProtectFaults);
        ProtocolEvents.Mark("do_wp_page", unshare ? "unshare fault at 0x{1:x}: pte read-only, pfn 0x{0:x}" : "write fault at 0x{1:x}: pte read-only, pfn 0x{0:x}", orig.Pfn, address);
        if (orig.IsSpecial)
        {
            // The zero page: nothing to reuse, nothing to reference.
            ptl.Exit();
            WpPageCopy(cpu, vma, table, index, address, orig, oldIsZeroPage: true, unshare);
            return;
        }

        var pfn = orig.Pfn;

        // A page in the swap cache holds the cache's reference too: drop the page from the cache first if only the
        // cache and this entry hold it (refcount <= 1 + swapcache, trylock, folio_free_swap). The flag is peeked (not a
        // scheduling point, so machines without swap explore what they always did) and re-checked under the lock.
        if ((memmap.PeekFlags(pfn) & PageFlags.SwapCache) != 0 && generation.FreesSwapCacheBeforeReuse
            && memmap.PageCount(pfn) <= 2 && memmap.TryLockPage(pfn))
        {
            if (swap.FreeSwap(pfn, release, cpu.Id))
            {
                counters.Add(cpu.Id, Stat.SwapCacheFreesAfterCow);
                ProtocolEvents.Mark("do_wp_page", "pfn 0x{0:x} dropped from the swap cache before the reuse test", pfn, address);
            }

            memmap.UnlockPage(pfn);
        }

        if (generation.CanReuse(memmap, pfn, vma.AnonVma, vma.Mm.Id, _swapCounts, cpu.Id))
        {
            // wp_page_reuse: upgrading read-only to writable needs no flush (a stale read-only entry faults and
            // finds the new one). An unshare only needed the page exclusive: the entry stays as it is.
            if (!unshare)
            {
                ptes.SetPte(table, index, vma.CanWrite ? orig.MkWrite().MkDirty().MkYoung() : orig.MkDirty().MkYoung());
            }

            ptl.Exit();
            counters.Add(cpu.Id, Stat.CowReuses);
            if (memmap.IsLarge(pfn))
            {
                counters.Add(cpu.Id, Stat.LargeFolioReuses);
            }

            return;
        }

        // Hold the old page across the unlocked copy.
        memmap.GetPage(pfn);
        ptl.Exit();
        WpPageCopy(cpu, vma, table, index, address, orig, oldIsZeroPage: false, unshare);
    }

    /// <summary>
    /// <c>wp_page_copy</c>. Enter with the mmap_lock held for read, no PTL, and (unless the old page is the zero page)
    /// a reference on the old page; returns with the mmap_lock held, no PTL, and that reference dropped. The kernel's
    /// order: copy without the PTL; relock; <c>pte_same</c>; clear the old entry and flush the TLB; add the new
    /// page's rmap; set the new entry; only then remove the old page's rmap; drop the old page after unlocking.
    /// </summary>
    private void WpPageCopy(CpuContext cpu, Vma vma, long table, int index, ulong address, Pte orig, bool oldIsZeroPage, bool unshare)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var mm = vma.Mm;
        var old = orig.Pfn;
        anonRmap.Prepare(vma, cpu.Id);
        var fresh = allocator.AllocatePage(cpu.Id);
        if (fresh < 0)
        {
            if (!oldIsZeroPage)
            {
                release.PutPage(cpu.Id, old);
            }

            throw new OutOfFramesException($"Out of frames for a copy-on-write at 0x{address:x}.");
        }

        if (!oldIsZeroPage)
        {
            // Every mapping of the old page is read-only and every TLB entry for it too (fork flushed them), so no
            // store races with this copy; the new frame is reachable by nobody yet.
            SchedulingPoint.Interleave();
            memory.Frame(old).CopyTo(memory.Frame(fresh));
        }

        memmap.SetFlags(fresh, PageFlags.Anon | PageFlags.AnonExclusive);
        var ptl = tables.Ptl(table);
        ptl.Enter();
        if (ptes.PtepGet(table, index) != orig)
        {
            ptl.Exit();
            release.PutPage(cpu.Id, fresh);
            if (!oldIsZeroPage)
            {
                release.PutPage(cpu.Id, old);
            }

            counters.Add(cpu.Id, Stat.FaultRetries);
            return;
        }

        // ptep_clear_flush: no CPU may keep using the old translation once the new page can be written.
        ptes.PtepGetAndClear(table, index);
        ProtocolEvents.Mark("wp_page_copy", oldIsZeroPage ? "clear pte at 0x{1:x} (the zero page) and flush" : "copied pfn 0x{0:x}; clear pte at 0x{1:x} and flush", old, address);
        shootdown.FlushTlbRange(mm.Context, address & ~(ulong)(PhysicalMemory.PageSize - 1), (address & ~(ulong)(PhysicalMemory.PageSize - 1)) + PhysicalMemory.PageSize);
        anonRmap.AddNewAnonRmap(fresh, vma, address);
        ptes.SetPte(table, index, unshare
            ? Pte.Make(fresh, write: false, dirty: false, young: true)
            : Pte.Make(fresh, write: vma.CanWrite, dirty: true, young: true));
        ProtocolEvents.Mark("wp_page_copy", unshare ? "map new pfn 0x{0:x} read-only at 0x{1:x} (unshared)" : "map new pfn 0x{0:x} at 0x{1:x}", fresh, address);
        if (!oldIsZeroPage)
        {
            memmap.RemoveAnonRmapPte(old, mm.Id);
        }

        ptl.Exit();

        if (!oldIsZeroPage)
        {
            // free_swap_cache (f4c4a3f48480, 5.14): the old page, if the copy left it idle in the swap cache, leaves the
            // cache now rather than when reclaim finds it. Peeked first, as in DoWpPage.
            // Held besides any mapping: the old entry's reference, the one held across the copy, the swap cache's.
            if ((memmap.PeekFlags(old) & PageFlags.SwapCache) != 0 && !memmap.MaybeMappedBesides(old, 3) && memmap.TryLockPage(old))
            {
                if (!memmap.MaybeMappedBesides(old, 3) && swap.FreeSwap(old, release, cpu.Id))
                {
                    counters.Add(cpu.Id, Stat.SwapCacheFreesAfterCow);
                }

                memmap.UnlockPage(old);
            }

            // The old entry's reference, then the one held across the copy.
            release.PutPage(cpu.Id, old);
            release.PutPage(cpu.Id, old);
        }

        counters.Add(cpu.Id, Stat.CowCopies);
        counters.Add(cpu.Id, Stat.PagesAllocated);
    }

    /// <summary>
    /// <c>do_swap_page</c>, in the machine's swap generation (<see cref="KernelGeneration.SwapReuse"/>). Enter with the mmap_lock held for read and no PTL, <paramref name="orig"/> the
    /// swap entry read without the PTL; returns the same. Find the page in the swap cache (a reference), or claim the
    /// entry (<c>swapcache_prepare</c>: another thread reading the same slot makes this one retry), read the slot into a
    /// new page and add it to the swap cache. Lock the page and check it still belongs to the slot; take the PTL and
    /// check the entry is unchanged (<c>pte_same</c>), else back out and let the access retry. Then <c>swap_free</c>;
    /// on a write fault with the page held only by us and the cache, drop it from the cache (<c>folio_free_swap</c>);
    /// map the page exclusive and, if the VMA allows, writable when the entry was exclusive or nobody else holds the
    /// page (Linux 5.18: on a write fault only, and without an exclusive entry to go by); otherwise read-only, and a
    /// write then takes the write-protect fault. Linux ≤ 5.17 asks <c>reuse_swap_page</c> instead, before the rmap and
    /// <c>swap_free</c>. The lookup's (or the allocation's) reference becomes the entry's.
    /// </summary>
    private void DoSwapPage(CpuContext cpu, Vma vma, long table, int index, ulong address, Pte orig, bool write)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.Mm.MmapLock, "the mmap_lock");
        }

        var device = swap.Device;
        var slot = orig.SwapOffset;
        if (orig.SwapType != 0 || slot >= device.Slots)
        {
            throw new InvalidOperationException($"Swap entry {orig} at 0x{address:x} names no slot of the swap device.");
        }

        anonRmap.Prepare(vma, cpu.Id);
        var entry = (int)slot;
        var pfn = swap.Lookup(entry, release, cpu.Id);
        var fresh = pfn < 0;
        var skipCache = fresh && swapIn.SynchronousDevice && device.Count(entry) == 1;
        var claimed = false;
        if (skipCache)
        {
            // SWP_SYNCHRONOUS_IO and one entry naming the slot: read it straight into a new page, which no swap cache
            // shows anyone (it is exclusive). swapcache_prepare claims the entry meanwhile ("mm/swap: fix race when
            // skipping swapcache", 13ddaf26be32, 6.8), so that the slot cannot be freed and handed out again before
            // this fault's pte_same; without the claim two faults may both read it.
            if (swapIn.ClaimWhenSkippingCache)
            {
                if (!device.SwapcachePrepare(entry))
                {
                    WaitForOtherSwapIn(cpu, address, entry);
                    return;
                }

                claimed = true;
            }

            pfn = allocator.AllocatePage(cpu.Id);
            if (pfn < 0)
            {
                if (claimed)
                {
                    device.ClearCache(entry);
                }

                throw new OutOfFramesException($"Out of frames to swap in 0x{address:x}.");
            }

            memmap.SetFlags(pfn, PageFlags.Anon | PageFlags.Locked);
            SchedulingPoint.Interleave();
            device.Page(entry).CopyTo(memory.Frame(pfn));
            counters.Add(cpu.Id, Stat.SwapIns);
            ProtocolEvents.Mark("do_swap_page", claimed ? "swap slot {2} claimed and read into new pfn 0x{0:x}, skipping the swap cache (synchronous device)" : "swap slot {2} read into new pfn 0x{0:x}, skipping the swap cache (synchronous device, entry not claimed)", pfn, address, entry);
        }
        else if (fresh)
        {
            if (!device.SwapcachePrepare(entry))
            {
                // Another thread is reading the slot in (or the entry was freed under us).
                WaitForOtherSwapIn(cpu, address, entry);
                return;
            }

            pfn = allocator.AllocatePage(cpu.Id);
            if (pfn < 0)
            {
                device.ClearCache(entry);
                throw new OutOfFramesException($"Out of frames to swap in 0x{address:x}.");
            }

            memmap.SetFlags(pfn, PageFlags.Anon | PageFlags.Locked);
            SchedulingPoint.Interleave();
            device.Page(entry).CopyTo(memory.Frame(pfn));
            if (!swap.TryAdd(entry, pfn))
            {
                throw new InvalidOperationException($"Swap slot {entry} was claimed for a read, but the swap cache holds a page for it.");
            }

            counters.Add(cpu.Id, Stat.SwapIns);
            ProtocolEvents.Mark("do_swap_page", "swap slot {2} read into new pfn 0x{0:x} (added to the swap cache)", pfn, address, entry);
        }
        else
        {
            memmap.LockPage(pfn);
            counters.Add(cpu.Id, Stat.SwapCacheHits);
            ProtocolEvents.Mark("do_swap_page", "swap slot {2} found in the swap cache: pfn 0x{0:x}", pfn, address, entry);
        }

        // The page may have left the swap cache (freed, reused) between the lookup and the lock.
        if (!skipCache && (!memmap.TestFlags(pfn, PageFlags.SwapCache) || swap.SlotOf(pfn) != entry))
        {
            memmap.UnlockPage(pfn);
            release.PutPage(cpu.Id, pfn);
            counters.Add(cpu.Id, Stat.FaultRetries);
            return;
        }

        var ptl = tables.Ptl(table);
        ptl.Enter();
        if (ptes.PtepGet(table, index) != orig)
        {
            ptl.Exit();

            // Backing out: if the entry was zapped meanwhile and was the slot's last, the page read for it is idle. A
            // page read past the cache is simply dropped, and the claim on the entry, if any, released.
            if (skipCache)
            {
                if (claimed)
                {
                    device.ClearCache(entry);
                }
            }
            else if (!memmap.MaybeMappedBesides(pfn, 2))
            {
                // Held besides any mapping: the lookup's reference and the swap cache's.
                swap.FreeSwap(pfn, release, cpu.Id);
            }

            memmap.UnlockPage(pfn);
            release.PutPage(cpu.Id, pfn);
            ProtocolEvents.Mark("do_swap_page", "pte at 0x{1:x} changed under us: back out", pfn, address);
            counters.Add(cpu.Id, Stat.FaultRetries);
            return;
        }

        bool exclusive, writable;
        if (generation.SwapReuse == SwapReuse.ReuseSwapPage)
        {
            // Linux <= 5.17: reuse_swap_page, while our entry still counts on the slot and before the rmap: mappings
            // plus swap entries at most one, references not counted (a GUP reference the page kept through swap-out
            // or took since is not seen). Yes takes the page out of the swap cache; the slot goes with swap_free below.
            exclusive = write && memmap.MapCount(pfn) + _swapCounts.SwapCount(pfn) <= 1;
            ProtocolEvents.Mark("do_swap_page", !write ? "read fault on swap slot {2}: map pfn 0x{0:x} read-only" : exclusive ? "reuse_swap_page: pfn 0x{0:x} mapped and swapped once in all (references not counted): reuse" : "reuse_swap_page: pfn 0x{0:x} mapped or swapped elsewhere: read-only, then copy", pfn, address, entry);
            if (exclusive)
            {
                _swapCounts.LeaveForReuse(pfn, cpu.Id);
            }

            writable = exclusive && vma.CanWrite;
        }
        else
        {
            // A page read past the swap cache is exclusive: nobody else can have found it.
            exclusive = (orig.IsSwapExclusive && generation.TracksAnonExclusive) || skipCache;
            device.Free(entry);

            // should_try_to_free_swap: a write fault on a page only we and the cache hold, whose slot nothing else names.
            if (write && memmap.PageCount(pfn) == 2 && device.Count(entry) == 0 && !memmap.TestFlags(pfn, PageFlags.Writeback))
            {
                swap.Delete(pfn);
                device.ClearCache(entry);
                release.PutPage(cpu.Id, pfn);
            }

            // Ours is the only reference left (the cache's is gone): nobody else can be holding the page. Linux 5.18
            // knows nothing more, and maps the page writable only for the write fault that asked.
            var count = memmap.PageCount(pfn);
            exclusive |= count == 1;
            writable = exclusive && vma.CanWrite && (write || generation.TracksAnonExclusive);
            if (generation.SwapReuse == SwapReuse.PageCount && write)
            {
                ProtocolEvents.Mark("do_swap_page", count == 1 ? "pfn 0x{0:x}: page_count 1 after swap_free: reuse" : "pfn 0x{0:x}: page_count {2} after swap_free: read-only, then copy", pfn, address, count);
            }

            if (exclusive && generation.TracksAnonExclusive)
            {
                memmap.SetFlags(pfn, PageFlags.AnonExclusive);
            }
        }

        if (memmap.AnonMappingOf(pfn) is null)
        {
            // A page just read: its anon_vma is the VMA's if it is exclusive, else the family's root, which every VMA
            // that may map it reaches (__folio_set_anon).
            memmap.SetAnonMapping(pfn, exclusive ? vma.AnonVma! : vma.AnonVma!.Root, vma.LinearPageIndex(address));
        }

        memmap.AddMapTestFirst(pfn);
        ptes.SetPte(table, index, Pte.Make(pfn, write: writable, dirty: writable && write, young: true));
        if (writable && write)
        {
            counters.Add(cpu.Id, Stat.SwapInReuses);
        }

        ProtocolEvents.Mark("do_swap_page", writable ? "map pfn 0x{0:x} at 0x{1:x} writable (exclusive)" : exclusive ? "map pfn 0x{0:x} at 0x{1:x} read-only (exclusive)" : "map pfn 0x{0:x} at 0x{1:x} read-only (maybe shared)", pfn, address);
        if (generation.SwapReuse == SwapReuse.ReuseSwapPage)
        {
            // swap_free after the rmap, as Linux <= 5.17 ordered it.
            device.Free(entry);
        }

        ptl.Exit();
        memmap.UnlockPage(pfn);
        if (claimed)
        {
            // swapcache_clear: only now may the slot, freed by swap_free above, be handed out again.
            device.ClearCache(entry);
        }
    }

    /// <summary>
    /// A swap-in that found the entry claimed by another (<c>swapcache_prepare</c> failed): wait until that swap-in has
    /// put its page in the swap cache or released its claim, then let the access retry (the kernel sleeps a tick and
    /// looks again). Waiting, not spinning, keeps a retrying fault from starving the one it waits for under an unfair
    /// schedule.
    /// </summary>
    private void WaitForOtherSwapIn(CpuContext cpu, ulong address, int entry)
    {
        ProtocolEvents.Mark("do_swap_page", "swap slot {2} at 0x{1:x} is being read by another fault: wait for it, then retry", address: address, value: entry);
        counters.Add(cpu.Id, Stat.FaultRetries);
        Wait.Until((swap, entry), static s => !s.swap.Device.HasCache(s.entry) || s.swap.Peek(s.entry) >= 0);
    }

    /// <summary>
    /// <c>check_vma_flags</c> for FOLL_FORCE: a forced write may break copy-on-write in a private mapping that can be
    /// read, never write a shared one.
    /// </summary>
    internal static bool MayForceWrite(Vma vma, bool force) => force && !vma.IsShared && vma.CanRead;

    /// <summary>
    /// Takes <paramref name="ptl"/> and re-checks that the entry is still empty (<c>pte_none</c> under the lock). True:
    /// returns with the PTL held. False: another fault filled the entry first; returns with the PTL released and the
    /// retry counted, and the caller undoes its preparation.
    /// </summary>
    private bool LockPteStillNone(CpuContext cpu, Spinlock ptl, long table, int index)
    {
        ptl.Enter();
        if (ptes.PtepGet(table, index).IsNone)
        {
            return true;
        }

        ptl.Exit();
        ProtocolEvents.Mark("finish_fault", "pte no longer none: another fault won, retry");
        counters.Add(cpu.Id, Stat.FaultRetries);
        return false;
    }
}
