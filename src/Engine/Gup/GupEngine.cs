using System.Runtime.CompilerServices;
using Engine.Cpus;
using Engine.Faults;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Policy;
using Engine.Stats;
using Engine.Sync;

namespace Engine.Gup;

/// <summary>
/// get_user_pages and pin_user_pages (mm/gup.c): the lockless fast path, then the slow path under the mmap_lock for
/// what the fast path left, faulting pages in (and unsharing them for read-only pins) as needed.
/// </summary>
internal sealed class GupEngine(
    Memmap memmap,
    PageRelease release,
    PageTableSet tables,
    PteAccess ptes,
    FaultHandler faults,
    FileTable files,
    KernelGeneration generation,
    StatCounters counters,
    GupKnobs knobs,
    long zeroPfn)
{
    /// <summary>
    /// Takes <paramref name="pages"/> pages from <paramref name="address"/> of <paramref name="mm"/> into
    /// <paramref name="pfns"/>: a pin (<see cref="Memmap.GupPinCountingBias"/> references) or a plain reference each,
    /// none for the shared zero page. Returns how many were taken: all of them, or with
    /// <see cref="GupFlags.FastOnly"/> what the fast path could take. Throws <see cref="SegmentationFault"/> when a
    /// page is unmapped or not accessible that way, and <see cref="OutOfFramesException"/>; nothing is held then.
    /// With <paramref name="mmapLocked"/> the caller holds the mm's mmap_lock for read (<c>get_user_pages_remote</c>,
    /// as ptrace's <c>access_remote_vm</c> calls it, keeping fork out until it has used the pages): only the slow
    /// path runs, and it neither takes nor drops the lock.
    /// </summary>
    public int Take(CpuContext cpu, MmStruct mm, ulong address, int pages, GupFlags flags, bool pin, Span<long> pfns, bool mmapLocked = false)
    {
        if (pin)
        {
            mm.SetHasPinned();
        }

        var taken = 0;
        if ((flags & GupFlags.NoFast) == 0 && !mmapLocked)
        {
            taken = Fast(cpu, mm, address, pages, flags, pin, pfns);
            if (taken == pages || (flags & GupFlags.FastOnly) != 0)
            {
                return taken;
            }
        }

        try
        {
            Slow(cpu, mm, address, pages, flags, pin, pfns, taken, mmapLocked);
        }
        catch
        {
            Release(pfns[..taken], pin, cpu.Id);
            throw;
        }

        return pages;
    }

    /// <summary>
    /// <c>unpin_user_pages</c> through a caller's frame array, dirtying page-cache pages first when
    /// <paramref name="dirty"/>. Throws <see cref="InvalidOperationException"/>, unpinning nothing, unless every frame
    /// of <paramref name="pfns"/> is a frame of this machine that holds a pin for each time the array names it (the
    /// zero page included, whose pins are counted though they take no reference): a second unpin of frames no one else
    /// pinned changes nothing. The pins are taken back from the bookkeeping one by one with a compare-and-swap and put
    /// back if one is missing, so two racing unpins of one pin cannot both succeed.
    /// </summary>
    public void Unpin(ReadOnlySpan<long> pfns, bool dirty, int cpu)
    {
        for (var i = 0; i < pfns.Length; i++)
        {
            var pfn = pfns[i];
            if (!memmap.Contains(pfn) || !memmap.TryUnaccountPin(pfn, PinRefs(pfn)))
            {
                for (var j = 0; j < i; j++)
                {
                    memmap.AccountGup(pfns[j], PinRefs(pfns[j]), 1);
                }

                throw new InvalidOperationException($"Frame 0x{pfn:x} holds no pin: it was never pinned, or it was unpinned already. Nothing was unpinned.");
            }
        }

        if (dirty)
        {
            MarkPagesDirty(pfns);
        }

        foreach (var pfn in pfns)
        {
            if (pfn != zeroPfn)
            {
                ProtocolEvents.Mark("unpin_user_page", "pfn 0x{0:x} (-{2})", pfn, value: Memmap.GupPinCountingBias);
                Drop(pfn, Memmap.GupPinCountingBias, cpu);
            }
        }
    }

    /// <summary>The references one pin holds on <paramref name="pfn"/>: none on the zero page.</summary>
    /// <summary>
    /// GUP-fast's grab (<c>try_grab_folio_fast</c>): on an order-0 machine <see cref="Memmap.TryGrabPage"/>, inlined
    /// into the per-page loop as before large folios; with large folios the speculative grab, out of line
    /// (<see cref="TryGrabFolioFast"/>). Keeping the folio path out of GUP-fast's loop keeps an order-0 pin as fast
    /// as it was (docs/performance.md, "Large folios").
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryGrabFast(int cpu, long pfn, int refs)
        => memmap.FolioOrder == 0 ? memmap.TryGrabPage(pfn, refs, knobs.RefcountOverflowGuard) : TryGrabFolioFast(cpu, pfn, refs);

    /// <summary>
    /// <see cref="Memmap.TryGrabPageSpeculative"/>; when giving back the references of a grab that found the page
    /// gone from its folio dropped the last one, frees that frame. False when nothing was grabbed.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool TryGrabFolioFast(int cpu, long pfn, int refs)
    {
        if (memmap.TryGrabPageSpeculative(pfn, refs, knobs.RefcountOverflowGuard, out var stale))
        {
            return true;
        }

        if (stale >= 0)
        {
            release.FreeReleasedPage(cpu, stale);
        }

        return false;
    }

    private int PinRefs(long pfn) => pfn == zeroPfn ? 0 : Memmap.GupPinCountingBias;

    /// <summary>Drops what <see cref="Take"/> took (<c>unpin_user_pages</c> / <c>put_page</c>).</summary>
    public void Release(ReadOnlySpan<long> pfns, bool pin, int cpu)
    {
        foreach (var pfn in pfns)
        {
            Put(pfn, pin, cpu);
        }
    }

    /// <summary>
    /// <c>gup_fast</c>. Pins first open a read of the mm's <c>write_protect_seq</c> and give up while fork is
    /// write-protecting. With interrupts off (no shootdown completes, no page table is freed), each entry is read
    /// locklessly, checked, grabbed, and after a full barrier re-read with its table: any change drops the page and
    /// stops. A read-only pin of an anonymous page that is not AnonExclusive stops too (the slow path unshares it).
    /// Finally, a pin that saw the sequence move (a fork ran) drops everything.
    /// </summary>
    private int Fast(CpuContext cpu, MmStruct mm, ulong address, int pages, GupFlags flags, bool pin, Span<long> pfns)
    {
        var start = 0;
        if (pin && knobs.GupFastForkSeq && !mm.WriteProtectSeq.TryReadBegin(out start))
        {
            ProtocolEvents.Mark("gup_fast", "write_protect_seq odd: fork is write-protecting, fall back to the slow path", address: address);
            return 0;
        }

        var write = (flags & GupFlags.Write) != 0;
        var refs = pin ? Memmap.GupPinCountingBias : 1;
        var taken = 0;
        cpu.LocalIrqDisable();
        for (; taken < pages; taken++)
        {
            var at = address + ((ulong)taken << PhysicalMemory.PageShift);
            var table = tables.WalkToPteTable(mm.Pgd, at, out var pmdTable);
            if (table < 0)
            {
                break;
            }

            var pmd = tables.ReadPmd(pmdTable, at);
            var index = PageTableSet.Index(at, 1);
            var pte = ptes.PtepGetLockless(table, index);
            if (!pte.IsPresent || pte.IsSpecial || (write && !pte.IsWrite) || !memmap.Contains(pte.Pfn))
            {
                ProtocolEvents.Mark("gup_fast", "read pte at 0x{1:x}: not usable here (none, special or read-only), stop", address: at);
                break;
            }

            // The read and the grab are two events: what happens between them is the race the re-check closes.
            var pfn = pte.Pfn;
            ProtocolEvents.Mark("gup_fast", "read pte at 0x{1:x} -> pfn 0x{0:x}", pfn, at);
            if (!TryGrabFast(cpu.Id, pfn, refs))
            {
                ProtocolEvents.Mark("gup_fast", "try_grab_folio pfn 0x{0:x} refused (free or at its limit), stop", pfn, at);
                break;
            }

            ProtocolEvents.Mark("gup_fast", pin ? "try_grab_folio pfn 0x{0:x}: pin (+{2})" : "try_grab_folio pfn 0x{0:x}: get (+{2})", pfn, at, refs);

            // The grab's compare-and-swap is a full barrier (a value-returning atomic, as folio_try_get's is): it pairs
            // with the unmapper's clear and its own atomic put, so either the re-read below sees the change or the
            // unmapper's put sees our reference.
            if (knobs.GupFastRecheck
                && (tables.ReadPmd(pmdTable, at) != pmd || ptes.PtepGetLockless(table, index) != pte))
            {
                // The page may have been unmapped meanwhile (and freed, and reused): ours can be the last reference.
                ProtocolEvents.Mark("gup_fast", "re-read pte at 0x{1:x}: changed since the grab, drop pfn 0x{0:x}", pfn, at);
                counters.Add(cpu.Id, Stat.GupFastRecheckDrops);
                Drop(pfn, refs, cpu.Id);
                break;
            }

            if (pin && !write && MustUnshare(pfn, vma: null, flags))
            {
                ProtocolEvents.Mark("gup_fast", "pfn 0x{0:x} must be unshared (gup_must_unshare): drop it, the slow path unshares", pfn, at);
                Drop(pfn, refs, cpu.Id);
                break;
            }

            memmap.AccountGup(pfn, refs, pin ? 1 : 0);
            pfns[taken] = pfn;
        }

        cpu.LocalIrqEnable();
        if (pin && knobs.GupFastForkSeq && mm.WriteProtectSeq.ReadRetry(start))
        {
            ProtocolEvents.Mark("gup_fast", "write_protect_seq moved (a fork ran): unpin {2} page(s), fall back", address: address, value: taken);
            Release(pfns[..taken], pin, cpu.Id);
            return 0;
        }

        counters.Add(cpu.Id, Stat.GupFastPages, taken);
        return taken;
    }

    /// <summary>
    /// <c>__get_user_pages</c> for pages [<paramref name="from"/>, <paramref name="pages"/>): under the mmap_lock for
    /// read, follow each entry under its PTL and take the page; where the entry is missing, read-only for a write,
    /// or (for a read-only pin) maps an anonymous page that is not exclusive, drop the lock, fault (a write fault, or
    /// an unshare fault), and look again.
    /// </summary>
    private void Slow(CpuContext cpu, MmStruct mm, ulong address, int pages, GupFlags flags, bool pin, Span<long> pfns, int from, bool locked)
    {
        var write = (flags & GupFlags.Write) != 0;
        var force = (flags & GupFlags.Force) != 0;
        var taken = from;
        var followWrite = write;
        try
        {
            while (taken < pages)
            {
                var at = address + ((ulong)taken << PhysicalMemory.PageShift);
                var need = Follow(mm, at, followWrite, force, pin, flags, locked, out var pfn);
                if (need == FollowResult.Taken)
                {
                    counters.Add(cpu.Id, Stat.GupSlowPages);
                    pfns[taken++] = pfn;
                    followWrite = write;
                    continue;
                }

                // faultin_page: under the caller's mmap_lock, or HandleMmFault takes it.
                if (locked)
                {
                    faults.HandleMmFaultLocked(cpu, mm, at, followWrite, unshare: need == FollowResult.Unshare, force);
                }
                else
                {
                    faults.HandleMmFault(cpu, mm, at, followWrite, unshare: need == FollowResult.Unshare, force);
                }

                // Before Dirty COW's fix: a forced write fault on a read-only mapping was taken to have broken COW, and
                // the page was looked up again as a mere read, whatever the entry had become meanwhile.
                if (followWrite && force && !knobs.ForceWriteCowCheck && IsReadOnlyPrivate(mm, at, locked))
                {
                    ProtocolEvents.Mark("faultin_page", "forced write fault done at 0x{1:x}: look the page up again as a read (FOLL_WRITE dropped)", address: at);
                    followWrite = false;
                }
            }
        }
        catch
        {
            Release(pfns[from..taken], pin, cpu.Id);
            throw;
        }
    }

    private enum FollowResult
    {
        Taken,
        Fault,
        Unshare,
    }

    /// <summary><c>follow_page_pte</c> under the mmap_lock and the PTL: takes the page or says which fault to take.</summary>
    private FollowResult Follow(MmStruct mm, ulong at, bool write, bool force, bool pin, GupFlags flags, bool locked, out long pfn)
    {
        var refs = pin ? Memmap.GupPinCountingBias : 1;
        pfn = -1;
        if (!locked)
        {
            mm.MmapLock.EnterRead();
        }

        try
        {
            var vma = mm.FindVma(at) ?? throw new SegmentationFault(at, SegmentationFaultReason.Unmapped, write);
            if (write ? !vma.CanWrite && !FaultHandler.MayForceWrite(vma, force) : !vma.CanRead)
            {
                throw new SegmentationFault(at, SegmentationFaultReason.Protection, write);
            }

            var table = tables.WalkToPteTable(mm.Pgd, at);
            if (table < 0)
            {
                return FollowResult.Fault;
            }

            var index = PageTableSet.Index(at, 1);
            var ptl = tables.Ptl(table);
            ptl.Enter();
            try
            {
                var pte = ptes.PtepGet(table, index);
                if (!pte.IsPresent || (write && !pte.IsWrite && !CanFollowForcedWrite(vma, pte, force)))
                {
                    ProtocolEvents.Mark("follow_page_pte", pte.IsPresent ? "pte at 0x{1:x} read-only for a write: fault it in" : "pte at 0x{1:x} not present: fault it in", address: at);
                    return FollowResult.Fault;
                }

                if (pin && !write && MustUnshare(pte.Pfn, vma, flags))
                {
                    ProtocolEvents.Mark("follow_page_pte", "pfn 0x{0:x} at 0x{1:x} must be unshared: unshare fault", pte.Pfn, at);
                    return FollowResult.Unshare;
                }

                if (pte.IsSpecial)
                {
                    ProtocolEvents.Mark("follow_page_pte", "the zero page at 0x{1:x}: taken without a reference", pte.Pfn, at);
                    // The shared zero page: handed out without a reference, as the kernel does. Its pins are counted
                    // all the same (bookkeeping only), so that an unpin of a zero page no one pinned is refused.
                    pfn = pte.Pfn;
                    memmap.AccountGup(pfn, 0, pin ? 1 : 0);
                    return FollowResult.Taken;
                }

                // Under the PTL the entry holds a reference, so the page cannot be free; the guard still refuses a
                // count driven past 2^31 by references (Jann Horn's 2019 vmsplice attack).
                if (!knobs.RefcountOverflowGuard)
                {
                    // Before 2019: a plain get_page, which nothing stops from wrapping.
                    var count = memmap.GetPageRefsUnchecked(pte.Pfn, refs);
                    ProtocolEvents.Mark("follow_page_pte", "pte at 0x{1:x} -> pfn 0x{0:x}; get_page (+{2}, unchecked): refcount now {3}", pte.Pfn, at, refs, count);
                }
                else if (!memmap.TryGrabPage(pte.Pfn, refs, overflowGuard: true))
                {
                    ProtocolEvents.Mark("follow_page_pte", "pte at 0x{1:x} -> pfn 0x{0:x}; try_grab_folio refused: the count would overflow", pte.Pfn, at);
                    throw new InvalidOperationException($"The reference count of the page at 0x{at:x} would overflow; the reference is refused.");
                }
                else
                {
                    ProtocolEvents.Mark("follow_page_pte", pin ? "pte at 0x{1:x} -> pfn 0x{0:x}; try_grab_folio: pin (+{2})" : "pte at 0x{1:x} -> pfn 0x{0:x}; try_grab_folio: get (+{2})", pte.Pfn, at, refs);
                }

                pfn = pte.Pfn;
                memmap.AccountGup(pfn, refs, pin ? 1 : 0);
                return FollowResult.Taken;
            }
            finally
            {
                ptl.Exit();
            }
        }
        finally
        {
            if (!locked)
            {
                mm.MmapLock.ExitRead();
            }
        }
    }

    /// <summary>
    /// <c>can_follow_write_pte</c> for a read-only entry: only a forced write, in a private mapping that is not
    /// writable, to the anonymous page exclusive to this mm that its own COW fault made. Never a page-cache page.
    /// </summary>
    private bool CanFollowForcedWrite(Vma vma, Pte pte, bool force)
        => force && knobs.ForceWriteCowCheck && !vma.CanWrite && !vma.IsShared && !pte.IsSpecial
           && memmap.TestFlags(pte.Pfn, PageFlags.Anon | PageFlags.AnonExclusive);

    /// <summary>Whether <paramref name="at"/> lies in a private mapping without write permission (for the pre-2016 lookup).</summary>
    private static bool IsReadOnlyPrivate(MmStruct mm, ulong at, bool locked)
    {
        if (!locked)
        {
            mm.MmapLock.EnterRead();
        }

        try
        {
            return mm.FindVma(at) is { } vma && !vma.CanWrite && !vma.IsShared;
        }
        finally
        {
            if (!locked)
            {
                mm.MmapLock.ExitRead();
            }
        }
    }

    /// <summary>
    /// <c>gup_must_unshare</c> for a read-only pin, as the machine's generation decides it. <paramref name="vma"/> is
    /// null on the fast path, which cannot look at the mapping.
    /// </summary>
    private bool MustUnshare(long pfn, Vma? vma, GupFlags flags)
        => generation.GupMustUnshare(memmap, pfn, pfn == zeroPfn, (flags & GupFlags.LongTerm) != 0, vma?.IsShared);

    /// <summary>
    /// <c>set_page_dirty_lock</c> on the pages of a write pin or write reference being released: what a device wrote
    /// must reach the file at the next writeback, or, for an anonymous page in the swap cache, its swap slot at the next
    /// swap-out (an anonymous page elsewhere has nowhere to be written back). Enter with no lock held.
    /// </summary>
    public void MarkPagesDirty(ReadOnlySpan<long> pfns)
    {
        foreach (var pfn in pfns)
        {
            if (pfn == zeroPfn)
            {
                continue;
            }

            // Peeked: pages that never met swap take no extra scheduling point. The flag is set before the caller's
            // put, which reclaim's __remove_mapping orders against by freezing the count before it tests dirty.
            if ((memmap.PeekFlags(pfn) & PageFlags.SwapCache) != 0)
            {
                memmap.SetFlags(pfn, PageFlags.Dirty);
                ProtocolEvents.Mark("set_page_dirty_lock", "swap-cache pfn 0x{0:x} dirtied by its GUP user", pfn);
                continue;
            }

            if (memmap.TestFlags(pfn, PageFlags.Anon))
            {
                continue;
            }

            memmap.LockPage(pfn);
            files.OfPage(pfn).Cache.MarkDirty(pfn);
            memmap.UnlockPage(pfn);
        }
    }

    private void Put(long pfn, bool pin, int cpu)
    {
        if (pfn == zeroPfn)
        {
            memmap.AccountGup(pfn, 0, pin ? -1 : 0);
            return;
        }

        var refs = pin ? Memmap.GupPinCountingBias : 1;
        ProtocolEvents.Mark(pin ? "unpin_user_page" : "put_page", "pfn 0x{0:x} (-{2})", pfn, value: refs);
        memmap.AccountGup(pfn, -refs, pin ? -1 : 0);
        Drop(pfn, refs, cpu);
    }

    private void Drop(long pfn, int refs, int cpu) => release.PutPageRefs(cpu, pfn, refs);
}
