using System.Diagnostics;
using Engine.Memory;
using Engine.Stats;
using Engine.Sync;

namespace Engine.Files;

/// <summary>
/// A file's page cache (the kernel's <c>i_pages</c> xarray): one slot per page of the file holding the pfn of the
/// cached page or −1, and a dirty tag per slot (<c>PAGECACHE_TAG_DIRTY</c>). Lookups are lockless with a speculative
/// reference (<c>folio_try_get</c>, then a re-check that the slot still holds the page); insertion, removal and tag
/// changes happen under the index lock (<c>xa_lock</c>). A cached page holds one reference for the cache, has its
/// <c>mapping</c> set to the file's number and its <c>index</c> to its page offset.
/// </summary>
internal sealed class PageCache
{
    private readonly int _mappingId;
    private readonly BackingStore _store;
    private readonly Memmap _memmap;
    private readonly PhysicalMemory _memory;
    private readonly FrameAllocator _allocator;
    private readonly PageRelease _release;
    private readonly StatCounters _counters;
    private readonly long[] _slots;
    private readonly int[] _dirtyTags;

    /// <summary>
    /// The cache of a file whose pages carry <paramref name="mappingId"/> in their <c>mapping</c> field and whose
    /// contents live in <paramref name="store"/>.
    /// </summary>
    public PageCache(int mappingId, BackingStore store, Memmap memmap, PhysicalMemory memory, FrameAllocator allocator, PageRelease release, StatCounters counters)
    {
        _mappingId = mappingId;
        _store = store;
        _memmap = memmap;
        _memory = memory;
        _allocator = allocator;
        _release = release;
        _counters = counters;
        var pages = store.Pages;
        _slots = new long[pages];
        _slots.AsSpan().Fill(-1);
        _dirtyTags = new int[pages];
    }

    /// <summary>The number its pages carry in their <c>mapping</c> field.</summary>
    public int MappingId => _mappingId;

    /// <summary>The backing store the cache is filled from and written back to.</summary>
    public BackingStore Store => _store;

    /// <summary>The index lock (<c>xa_lock</c>).</summary>
    public Spinlock IndexLock { get; } = new();

    /// <summary>Number of slots (pages of the file).</summary>
    public int Pages => _slots.Length;

    /// <summary>The pfn in slot <paramref name="index"/>, or −1; a racy snapshot.</summary>
    public long Peek(int index) => Atomic.Read(ref _slots[index]);

    /// <summary>Whether slot <paramref name="index"/> is tagged dirty; a racy snapshot.</summary>
    public bool IsTaggedDirty(int index) => Atomic.Read(ref _dirtyTags[index]) != 0;

    /// <summary>
    /// <c>filemap_get_entry</c> + <c>folio_try_get</c>: the cached page at <paramref name="index"/> with a reference for
    /// the caller, or −1 when none is cached. Lockless: a reference is taken only on a page whose count is not zero
    /// (a page being evicted has been frozen to zero), and dropped again if the slot changed meanwhile.
    /// </summary>
    public long FindGetPage(int index)
    {
        while (true)
        {
            var pfn = Atomic.Read(ref _slots[index]);
            if (pfn < 0)
            {
                return -1;
            }

            if (!_release.TryGetPage(-1, pfn))
            {
                // Being evicted (frozen) or already freed: the slot is about to change.
                SchedulingPoint.Yield();
                continue;
            }

            if (Atomic.Read(ref _slots[index]) == pfn)
            {
                return pfn;
            }

            // The page left the cache (and may have been reused) between the read and the reference.
            _release.PutPage(-1, pfn);
        }
    }

    /// <summary>
    /// <c>filemap_fault</c>'s lookup: the page at <paramref name="index"/> with a reference for the caller, reading it
    /// from the backing store into a new frame on a miss (the frame's own reference becomes the cache's). Returns −1
    /// when no frame is left. Enter with no spinlock held; returns with none.
    /// </summary>
    public long GetOrFill(int index, int cpu)
    {
        while (true)
        {
            var pfn = FindGetPage(index);
            if (pfn >= 0)
            {
                return pfn;
            }

            var fresh = _allocator.AllocatePage(cpu);
            if (fresh < 0)
            {
                return -1;
            }

            // The read I/O, and its publication under the index lock, both while the slot is empty. Read before the
            // lock, the data could be stale by the time it is published: meanwhile another fault may fill the slot, a
            // CPU store into that page, writeback copy it to the store, and eviction drop it again, and this frame
            // would then bring back the store's older contents — and its next writeback would overwrite the newer
            // words (found by `engine stress --mix lost-dirty`: other CPUs' stores lost). The kernel inserts the
            // locked page first and reads it afterwards. Here, with the slot empty under the index lock, no page of
            // this index is cached, so no writeback can be copying into the store's page: the copy is current.
            SchedulingPoint.Interleave();
            ref var page = ref _memmap.Page(fresh);
            Atomic.Write(ref page.Mapping, (long)_mappingId);
            Atomic.Write(ref page.Index, (long)index);
            _memmap.SetFlags(fresh, PageFlags.Uptodate);
            _memmap.GetPage(fresh);
            IndexLock.Enter();
            var raced = Atomic.Read(ref _slots[index]) >= 0;
            if (!raced)
            {
                _store.Page(index).CopyTo(_memory.Frame(fresh));
                Atomic.Write(ref _slots[index], fresh);
            }

            IndexLock.Exit();
            if (!raced)
            {
                ProtocolEvents.Mark("filemap_add_folio", "file page {2} read into pfn 0x{0:x}, added to the page cache", fresh, value: index);
                _counters.Add(cpu, Stat.PageCacheFills);
                _counters.Add(cpu, Stat.PagesAllocated);
                return fresh;
            }

            // Another fault filled the slot first: drop ours (both references) and use theirs.
            _memmap.PutPageTestZero(fresh);
            _release.PutPage(cpu, fresh);
        }
    }

    /// <summary>
    /// <c>folio_mark_dirty</c> for a page of this file: sets the page's dirty flag and, when it was clean, tags its
    /// slot dirty under the index lock. Enter holding a reference (or the page lock, or the PTL of a PTE mapping it).
    /// </summary>
    public void MarkDirty(long pfn)
    {
        if (_memmap.TestAndSetFlag(pfn, PageFlags.Dirty))
        {
            return;
        }

        ProtocolEvents.Mark("folio_mark_dirty", "pfn 0x{0:x} was clean: now dirty", pfn);

        var index = (int)Atomic.Read(ref _memmap.Page(pfn).Index);
        IndexLock.Enter();
        if (Atomic.Read(ref _slots[index]) == pfn)
        {
            Atomic.Write(ref _dirtyTags[index], 1);
        }

        IndexLock.Exit();
    }

    /// <summary>
    /// Clears the dirty tag of <paramref name="index"/> unless its page is dirty again (checked under the index lock,
    /// so a concurrent <see cref="MarkDirty"/> either sees the tag cleared and sets it, or is seen here).
    /// </summary>
    public void ClearDirtyTagIfClean(int index)
    {
        IndexLock.Enter();
        var pfn = Atomic.Read(ref _slots[index]);
        if (pfn < 0 || !_memmap.TestFlags(pfn, PageFlags.Dirty))
        {
            Atomic.Write(ref _dirtyTags[index], 0);
        }

        IndexLock.Exit();
    }

    /// <summary>
    /// Drops the page at <paramref name="index"/> if it is clean, not under writeback, unmapped and held by nobody
    /// but the cache (<c>mapping_evict_folio</c>). True when it was dropped. Enter with no lock held.
    /// </summary>
    public bool TryEvict(int index, int cpu)
    {
        var pfn = FindGetPage(index);
        if (pfn < 0)
        {
            return false;
        }

        if (!_memmap.TryLockPage(pfn))
        {
            _release.PutPage(cpu, pfn);
            return false;
        }

        if (_memmap.MaybeMapped(pfn) || !RemoveLocked(pfn, index, freezeBeforeDirtyTest: true))
        {
            _memmap.UnlockPage(pfn);
            _release.PutPage(cpu, pfn);
            return false;
        }

        _memmap.UnlockPage(pfn);
        FreeRemoved(pfn, cpu);
        return true;
    }

    /// <summary>
    /// <c>__remove_mapping</c> for a page of this file: under the index lock, freeze the refcount at exactly the
    /// cache's reference and the caller's, <b>then</b> test dirty and writeback, and take the page out of its slot.
    /// Frozen first, a GUP user can no longer dirty the page and drop its reference unseen between the test and the
    /// freeze (with <paramref name="freezeBeforeDirtyTest"/> false, the old order that allows it: zoo entry 11's knob).
    /// True when the page left the cache: its count is 0 and the caller, who still holds the page lock, unlocks it and
    /// frees it (<see cref="FreeRemoved"/>). False changes nothing. Enter with the page locked and referenced, no
    /// spinlock held.
    /// </summary>
    public bool RemoveLocked(long pfn, int index, bool freezeBeforeDirtyTest)
    {
        if (!freezeBeforeDirtyTest && (_memmap.GetFlags(pfn) & (PageFlags.Dirty | PageFlags.Writeback)) != 0)
        {
            ProtocolEvents.Mark("__remove_mapping", "file page {2}, pfn 0x{0:x}: dirty (tested before the freeze): keep it", pfn, value: index);
            return false;
        }

        var removed = false;
        IndexLock.Enter();
        if (Atomic.Read(ref _slots[index]) == pfn && _memmap.FreezeRefs(pfn, 2))
        {
            if (freezeBeforeDirtyTest && (_memmap.GetFlags(pfn) & (PageFlags.Dirty | PageFlags.Writeback)) != 0)
            {
                Atomic.Write(ref _memmap.Page(pfn).RefCount, 2);
            }
            else
            {
                Atomic.Write(ref _slots[index], -1L);
                Atomic.Write(ref _dirtyTags[index], 0);
                removed = true;
            }
        }

        IndexLock.Exit();
        ProtocolEvents.Mark(
            "__remove_mapping",
            removed ? "file page {2}, pfn 0x{0:x}: refcount frozen, clean: removed from the page cache" : "file page {2}, pfn 0x{0:x}: held by someone else or dirty: keep it",
            pfn,
            value: index);
        return removed;
    }

    /// <summary>Frees a page <see cref="RemoveLocked"/> took out of the cache, once the caller has unlocked it.</summary>
    public void FreeRemoved(long pfn, int cpu)
    {
        Debug.Assert(!_memmap.CountsMappings || _memmap.MapCount(pfn) == 0, "evicting a mapped page");
        _release.FreeReleasedPage(cpu, pfn);
        _counters.Add(cpu, Stat.PagesEvicted);
    }
}
