using Engine.Cpus;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Rmap;
using Engine.Stats;
using Engine.Sync;

namespace Engine.Writeback;

/// <summary>
/// Writeback of dirty page-cache pages (<c>write_cache_pages</c>, <c>clear_page_dirty_for_io</c>,
/// <c>folio_mkclean</c>, <c>folio_start_writeback</c>/<c>folio_end_writeback</c>) and eviction of clean ones.
/// </summary>
internal sealed class FileWriteback(
    PhysicalMemory memory,
    Memmap memmap,
    PageRelease release,
    PageTableSet tables,
    PteAccess ptes,
    Shootdown shootdown,
    RmapWalk rmap,
    StatCounters counters,
    bool syncWritebackWaits)
{
    /// <summary>
    /// <c>filemap_write_and_wait</c>: writes every page of <paramref name="file"/> that is dirty when reached to the
    /// backing store. For each: lock the page (held until the writeback flag is set); wait for a writeback already
    /// in flight; <see cref="ClearPageDirtyForIo"/>; set writeback; unlock; copy the page out; end writeback. Then
    /// waits for every writeback still in flight (started by a concurrent caller), so that everything stored before
    /// the call is in the backing store when it returns. Enter with no lock held; returns with none. Runs on
    /// the calling thread, which is not a CPU.
    /// </summary>
    public int Writeback(Inode file) => Writeback(file, 0, file.Cache.Pages);

    /// <summary>The same for pages [<paramref name="first"/>, <paramref name="end"/>) of the file (<c>filemap_write_and_wait_range</c>).</summary>
    public int Writeback(Inode file, int first, int end)
    {
        var written = 0;
        var cache = file.Cache;
        for (var index = first; index < end; index++)
        {
            if (!cache.IsTaggedDirty(index))
            {
                continue;
            }

            var pfn = cache.FindGetPage(index);
            if (pfn < 0)
            {
                continue;
            }

            memmap.LockPage(pfn);

            // WB_SYNC_ALL: a copy of an older state may still be in flight (another writeback took the page first);
            // wait for it, or it could land after ours.
            WaitOnWriteback(pfn);
            if (ClearPageDirtyForIo(file, pfn))
            {
                ProtocolEvents.Mark("write_cache_pages", "pfn 0x{0:x} (file page {2}) was dirty: set writeback, copy it to the store", pfn, value: index);
                memmap.SetFlags(pfn, PageFlags.Writeback);
                cache.ClearDirtyTagIfClean(index);
                memmap.UnlockPage(pfn);

                // The I/O: the page's contents as they are now. A store after this point must have re-dirtied the
                // page (through a fault or a page walk), or it is lost.
                // One visible step: CPUs store into the page meanwhile with single 64-bit stores, so each word is copied
                // as it was either before or after any one of them.
                SchedulingPoint.Interleave();
                memory.Frame(pfn).CopyTo(file.Store.Page(index));

                memmap.ClearFlags(pfn, PageFlags.Writeback);
                ProtocolEvents.Mark("folio_end_writeback", "pfn 0x{0:x} (file page {2}) is on the store", pfn, value: index);
                counters.Add(-1, Stat.PagesWrittenBack);
                written++;
            }
            else
            {
                ProtocolEvents.Mark("write_cache_pages", "pfn 0x{0:x} (file page {2}) is clean: nothing to write", pfn, value: index);
                cache.ClearDirtyTagIfClean(index);
                memmap.UnlockPage(pfn);
            }

            release.PutPage(-1, pfn);
        }

        // filemap_fdatawait: a page another writeback cleaned before this one reached it may still be being copied;
        // what was stored before this call is only safe once that copy has landed.
        for (var index = first; index < end; index++)
        {
            var pfn = cache.Peek(index);
            if (pfn < 0 || !memmap.TestFlags(pfn, PageFlags.Writeback))
            {
                continue;
            }

            pfn = cache.FindGetPage(index);
            if (pfn >= 0)
            {
                WaitOnWriteback(pfn);
                release.PutPage(-1, pfn);
            }
        }

        return written;
    }

    /// <summary>
    /// <c>pageout</c> of a page-cache page that reclaim has unmapped: if it is dirty, clean it for I/O, set writeback,
    /// copy it to the backing store and end writeback, all with the page lock held (the kernel unlocks it for the
    /// I/O; holding it keeps a concurrent <see cref="Writeback(Inode)"/> waiting at the lock instead, which is
    /// equivalent). True when it was written. Enter with the page locked and referenced, no spinlock held.
    /// </summary>
    public bool PageOutLocked(Inode file, long pfn, int index, int cpu)
    {
        WaitOnWriteback(pfn);
        if (!ClearPageDirtyForIo(file, pfn))
        {
            return false;
        }

        memmap.SetFlags(pfn, PageFlags.Writeback);
        file.Cache.ClearDirtyTagIfClean(index);
        ProtocolEvents.Mark("pageout", "pfn 0x{0:x} (file page {2}) dirty: write it to the store", pfn, value: index);
        SchedulingPoint.Interleave();
        memory.Frame(pfn).CopyTo(file.Store.Page(index));
        memmap.ClearFlags(pfn, PageFlags.Writeback);
        counters.Add(cpu, Stat.PagesWrittenBack);
        return true;
    }

    /// <summary><c>folio_wait_writeback</c> (a test knob can turn it off). Enter with a reference on the page.</summary>
    private void WaitOnWriteback(long pfn)
    {
        if (syncWritebackWaits)
        {
            Wait.Until((memmap, pfn), static s => !s.memmap.TestFlags(s.pfn, PageFlags.Writeback));
        }
    }

    /// <summary>
    /// <c>clear_page_dirty_for_io</c>: write-protect and clean every PTE mapping the page (<see cref="FolioMkclean"/>),
    /// moving a dirty PTE's state to the page, then test-and-clear the page's dirty flag. True when the page was
    /// dirty. Enter with the page locked and referenced; returns the same.
    /// </summary>
    private bool ClearPageDirtyForIo(Inode file, long pfn)
    {
        if (Checks.Enabled)
        {
            Contract.That((memmap.PeekFlags(pfn) & PageFlags.Locked) != 0, "the page lock");
        }

        if (FolioMkclean(file, pfn) > 0)
        {
            file.Cache.MarkDirty(pfn);
        }

        return memmap.TestAndClearFlag(pfn, PageFlags.Dirty);
    }

    /// <summary>
    /// <c>folio_mkclean</c>: returns at once when the page is not mapped (<c>folio_mapped</c> is mapcount &gt; 0) —
    /// exactly the shortcut the 2022 race slips through. Otherwise walks the file's rmap under <c>i_mmap_rwsem</c>
    /// read and, for each VMA covering the page, takes the PTL even when the entry reads as empty
    /// (<c>PVMW_SYNC</c>: a zap holding it may not have flushed yet), and turns a writable or dirty entry mapping the
    /// page into a clean read-only one with a TLB flush in between (<c>ptep_clear_flush</c>, then <c>set_pte_at</c>).
    /// Returns how many entries were writable or dirty. Enter with the page locked; returns the same.
    /// </summary>
    private int FolioMkclean(Inode file, long pfn)
    {
        if (Checks.Enabled)
        {
            Contract.That((memmap.PeekFlags(pfn) & PageFlags.Locked) != 0, "the page lock");
        }

        // The shortcut: a page the scheme says is not mapped is not walked. Without a mapcount there is no shortcut.
        if (memmap.Scheme != MapcountScheme.None && !memmap.MaybeMapped(pfn))
        {
            ProtocolEvents.Mark("folio_mkclean", "pfn 0x{0:x} not mapped: skip the rmap walk", pfn);
            return 0;
        }

        var visitor = new MkcleanVisitor(this, pfn);
        rmap.Walk(pfn, ref visitor);
        if (visitor.Mapped == 0)
        {
            // The walk looked at every mapping under its PTL with the page locked: none is left.
            memmap.WalkFoundUnmapped(pfn);
        }

        return visitor.Cleaned;
    }

    // What PageVmaMkcleanOne found: an entry mapping the page, and whether it cleaned it.
    private const int Mapped = 1;
    private const int Cleaned = 2;

    /// <summary>
    /// <c>page_vma_mkclean_one</c> for one VMA: <see cref="Mapped"/> when the entry maps the page, with
    /// <see cref="Cleaned"/> when it was writable or dirty and is now clean and read-only. Enter with
    /// <c>i_mmap_rwsem</c> held for read (so the VMA's tables cannot be freed) and the page locked; returns the same,
    /// no PTL.
    /// </summary>
    private int PageVmaMkcleanOne(Vma vma, ulong address, long pfn)
    {
        if (Checks.Enabled)
        {
            Contract.Held(vma.File!.Rmap.Lock, "i_mmap_rwsem");
            Contract.That((memmap.PeekFlags(pfn) & PageFlags.Locked) != 0, "the page lock");
        }

        var mm = vma.Mm;
        var table = tables.WalkToPteTable(mm.Pgd, address);
        if (table < 0)
        {
            return 0;
        }

        var index = PageTableSet.Index(address, 1);
        var ptl = tables.Ptl(table);
        ptl.Enter();
        try
        {
            var pte = ptes.PtepGet(table, index);
            if (!pte.IsPresent || pte.Pfn != pfn)
            {
                ProtocolEvents.Mark("page_vma_mkclean_one", "pte at 0x{1:x} under the PTL: not a mapping of pfn 0x{0:x}", pfn, address);
                return 0;
            }

            if (!pte.IsWrite && !pte.IsDirty)
            {
                ProtocolEvents.Mark("page_vma_mkclean_one", "pte at 0x{1:x} under the PTL: a clean read-only mapping of pfn 0x{0:x}", pfn, address);
                return Mapped;
            }

            var old = ptes.PtepGetAndClear(table, index);
            shootdown.FlushTlbRange(mm.Context, address, address + PhysicalMemory.PageSize);
            ptes.SetPte(table, index, old.WrProtect().MkClean());
            ProtocolEvents.Mark("page_vma_mkclean_one", old.IsDirty ? "pte at 0x{1:x}: dirty, write-protect and clean it (the page stays dirty)" : "pte at 0x{1:x}: write-protect it", pfn, address);
            return Mapped | Cleaned;
        }
        finally
        {
            ptl.Exit();
        }
    }

    /// <summary>Whether <c>folio_mkclean</c>'s walk also looks at private mappings: only to answer the tri-state's "is it still mapped?".</summary>
    private bool CountsPrivateMappings => memmap.Scheme == MapcountScheme.TriState;

    /// <summary>Whether the entry of <paramref name="vma"/> at <paramref name="address"/> maps <paramref name="pfn"/>, read under its PTL.</summary>
    private bool MapsPage(Vma vma, ulong address, long pfn)
    {
        var table = tables.WalkToPteTable(vma.Mm.Pgd, address);
        if (table < 0)
        {
            return false;
        }

        var ptl = tables.Ptl(table);
        ptl.Enter();
        var pte = ptes.PtepGet(table, PageTableSet.Index(address, 1));
        ptl.Exit();
        return pte.IsPresent && pte.Pfn == pfn;
    }

    /// <summary>The rmap walk's step of <c>folio_mkclean</c>: only shared mappings can have written the page (<c>invalid_mkclean_vma</c>).</summary>
    private struct MkcleanVisitor(FileWriteback owner, long pfn) : IRmapVisitor
    {
        /// <summary>Entries made clean and read-only.</summary>
        public int Cleaned { get; private set; }

        /// <summary>Entries of shared mappings found mapping the page, cleaned or not.</summary>
        public int Mapped { get; private set; }

        public bool Visit(Vma vma, ulong address)
        {
            if (vma.IsShared)
            {
                var found = owner.PageVmaMkcleanOne(vma, address, pfn);
                Cleaned += found & FileWriteback.Cleaned;
                Mapped += (found & FileWriteback.Mapped) != 0 ? 1 : 0;
            }
            else if (owner.CountsPrivateMappings)
            {
                // A private mapping can only read the page (a write copies it), so it needs no cleaning; under the
                // tri-state it still counts for "is the page mapped?", which the walk answers on the way.
                Mapped += owner.MapsPage(vma, address, pfn) ? 1 : 0;
            }

            return true;
        }
    }

    /// <summary>
    /// Drops the clean, unmapped page-cache pages of <paramref name="files"/>; returns how many.
    /// Enter with no lock held.
    /// </summary>
    public int EvictCleanPages(IEnumerable<Inode> files)
    {
        var evicted = 0;
        foreach (var file in files)
        {
            for (var index = 0; index < file.Cache.Pages; index++)
            {
                if (file.Cache.TryEvict(index, -1))
                {
                    evicted++;
                }
            }
        }

        return evicted;
    }
}
