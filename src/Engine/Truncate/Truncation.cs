using Engine.Files;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.Reclaim;
using Engine.Stats;
using Engine.Sync;
using Engine.Zap;

namespace Engine.Truncate;

/// <summary>
/// File truncation (<c>mm/truncate.c</c>): <c>truncate_setsize</c> → <c>truncate_pagecache</c>. The invariant it
/// keeps: when it returns, no page at or beyond the new end of the file is cached, mapped by any entry (the page-cache
/// page, or in a private mapping an anonymous copy of it, or that copy's swap entry) or translated by any TLB, and
/// the backing store holds zeros there; from the moment the new size is published, an access beyond it is
/// <see cref="SegmentationFaultReason.BeyondEndOfFile"/> (SIGBUS).
/// <para>
/// Shrinking, in the kernel's order: (1) publish the size (<c>i_size_write</c>; under the page cache's index lock, so
/// that no miss can read a page in beyond it afterwards); (2) <c>unmap_mapping_range(holebegin, 0, even_cows=1)</c>:
/// zap every entry of every VMA of the file's rmap from the first page wholly beyond the end, anonymous copies of
/// private mappings included; (3) <c>truncate_inode_pages</c>: for each page still cached there, lock it, wait for a
/// writeback of it in flight, and if <see cref="Memmap.MaybeMapped"/> says it may be mapped (a fault mapped it
/// between (2) and the lock) unmap it through the rmap (reclaim's <c>try_to_unmap</c> for file pages, the TLB flushed
/// before the page goes), then remove it from the cache whether dirty or clean and drop the cache's reference; the
/// part of the last page beyond the end is zeroed, in the cached page and in the store; (4) the second
/// <c>unmap_mapping_range</c>, for private copies a fault made from a page while (3) waited for its lock; (5) the
/// store beyond the end dropped. A file fault checks the size before the lookup and again under the page lock
/// (<c>filemap_fault</c>), so it either mapped the page under the lock before (3) took it, and (3) finds it mapped,
/// or fails. Growing zeroes the part of the old last page beyond the old end and publishes the size.
/// </para>
/// </summary>
internal sealed class Truncation(Memmap memmap, PageRelease release, Zapper zapper, Reclaimer reclaimer, StatCounters counters)
{
    /// <summary>
    /// <c>do_truncate</c> on <paramref name="file"/> to <paramref name="length"/> bytes (validated by the caller: 0 to
    /// the file's maximum size). Takes the file's <c>i_rwsem</c> for write; returns with nothing held. Returns how many
    /// cached pages were removed. Enter with no lock held; <paramref name="cpu"/> is the caller (−1: not a CPU).
    /// </summary>
    public int Truncate(Inode file, long length, int cpu)
    {
        file.Lock.EnterWrite();
        try
        {
            var old = file.Size;
            ProtocolEvents.Mark("truncate_setsize", "size {2} -> {3} bytes", value: old, value2: length);
            if (length >= old)
            {
                // Growing (or no change): what lies beyond the old end in its last page must read as zeros once it is
                // inside the file (the filesystem zeroes its block tail; the kernel's pagecache_isize_extended).
                file.Cache.ZeroPartialPage(old, cpu);
                file.Cache.PublishSize(length);
                return 0;
            }

            file.Cache.PublishSize(length);
            return TruncatePagecache(file, length, cpu);
        }
        finally
        {
            file.Lock.ExitWrite();
        }
    }

    /// <summary>
    /// <c>truncate_pagecache</c> after the size was made <paramref name="length"/>: unmap, remove, unmap again, drop the
    /// store's blocks beyond the end. Enter with the file's <c>i_rwsem</c> held for write.
    /// </summary>
    private int TruncatePagecache(Inode file, long length, int cpu)
    {
        var holeBegin = BackingStore.PagesFor(length);
        UnmapMappingRange(file, holeBegin, cpu);
        var removed = TruncateInodePages(file, holeBegin, cpu);
        file.Cache.ZeroPartialPage(length, cpu);

        // A private mapping may have copied a page while (3) waited for its lock (do_cow_fault copies and maps under it):
        // that copy is beyond the end too.
        UnmapMappingRange(file, holeBegin, cpu);
        file.Store.DropPages(holeBegin);
        return removed;
    }

    /// <summary>
    /// <c>unmap_mapping_range(mapping, holebegin, 0, even_cows=1)</c>: every entry of every VMA of the file's rmap that
    /// maps file page <paramref name="first"/> or beyond, zapped (<see cref="Zapper.ZapMappingRange"/>), under
    /// <c>i_mmap_rwsem</c> read. Fork links a child's VMA after its parent's before copying entries, so a VMA is zapped
    /// before any VMA that can copy entries from it. Enter with no page lock or spinlock held.
    /// </summary>
    private void UnmapMappingRange(Inode file, int first, int cpu)
    {
        var rmap = file.Rmap;
        rmap.Lock.EnterRead();
        try
        {
            var vmas = rmap.Vmas;
            for (var i = 0; i < vmas.Count; i++)
            {
                var vma = vmas[i];
                var pages = (long)((vma.End - vma.Start) >> PhysicalMemory.PageShift);
                if (first >= vma.PgOff + pages)
                {
                    continue;
                }

                var from = first <= vma.PgOff ? vma.Start : vma.Start + ((ulong)(first - vma.PgOff) << PhysicalMemory.PageShift);
                ProtocolEvents.Mark("unmap_mapping_range", "mm {2}: zap [0x{1:x}, 0x{0:x}) beyond the end of the file", (long)vma.End, from, vma.Mm.Id);
                zapper.ZapMappingRange(vma, from, vma.End, cpu);
            }
        }
        finally
        {
            rmap.Lock.ExitRead();
        }
    }

    /// <summary>
    /// <c>truncate_inode_pages_range</c> for pages <paramref name="first"/> and beyond: each cached page locked, waited
    /// for if under writeback, unmapped if it may be mapped, removed from the cache and released. Returns how many were
    /// removed. Enter with the file's <c>i_rwsem</c> held for write and the new size published (so no slot from
    /// <paramref name="first"/> on can be filled again), no other lock.
    /// </summary>
    private int TruncateInodePages(Inode file, int first, int cpu)
    {
        var cache = file.Cache;
        var removed = 0;
        for (var index = first; index < cache.Pages; index++)
        {
            if (cache.Peek(index) < 0)
            {
                continue;
            }

            var pfn = cache.FindGetPage(index);
            if (pfn < 0)
            {
                continue;
            }

            memmap.LockPage(pfn);
            if (cache.Peek(index) != pfn)
            {
                // Evicted or reclaimed while we waited for the lock.
                memmap.UnlockPage(pfn);
                release.PutPage(cpu, pfn);
                continue;
            }

            // folio_wait_writeback: a copy to the store in flight must land before the page goes (the store's blocks are
            // dropped after it).
            Wait.Until((memmap, pfn), static s => !s.memmap.TestFlags(s.pfn, PageFlags.Writeback));
            TruncateCleanupFolio(file, pfn, cpu);
            cache.DeleteTruncated(pfn, index, cpu);
            memmap.UnlockPage(pfn);
            release.PutPage(cpu, pfn);
            counters.Add(cpu, Stat.PagesTruncated);
            removed++;
        }

        return removed;
    }

    /// <summary>
    /// <c>truncate_cleanup_folio</c>: if the page may be mapped, unmap it from every mapping through the file's rmap.
    /// <see cref="Memmap.MaybeMapped"/> is the one "is it mapped?" test of truncation: a false positive costs a walk
    /// that finds nothing, a false negative would leave a page mapped that is about to be freed. Enter with the page
    /// locked and referenced; returns the same, the page unmapped and no TLB translating to it.
    /// </summary>
    private void TruncateCleanupFolio(Inode file, long pfn, int cpu)
    {
        if (Checks.Enabled)
        {
            Contract.That((memmap.PeekFlags(pfn) & PageFlags.Locked) != 0, "the page lock");
        }

        if (!memmap.MaybeMapped(pfn))
        {
            return;
        }

        counters.Add(cpu, Stat.TruncateRmapWalks);

        while (!reclaimer.UnmapTruncatedPage(file, pfn, cpu))
        {
            SchedulingPoint.Yield();
        }
    }
}
