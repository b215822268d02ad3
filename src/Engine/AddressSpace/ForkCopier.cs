using Engine.Cpus;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Policy;
using Engine.Rmap;
using Engine.Stats;
using Engine.Swap;
using Engine.Sync;

namespace Engine.AddressSpace;

/// <summary>
/// Fork's copy of an address space (<c>dup_mmap</c>, <c>copy_page_range</c>, <c>copy_pte_range</c>,
/// <c>copy_present_pte</c>): the child gets the parent's VMAs and entries; private writable anonymous pages are
/// write-protected in both, shared by reference, and lose AnonExclusive, so the first write on either side faults and
/// copies (or, once the other side has gone, reuses).
/// </summary>
internal sealed class ForkCopier(
    PhysicalMemory memory,
    Memmap memmap,
    FrameAllocator allocator,
    PageTableSet tables,
    PteAccess ptes,
    Shootdown shootdown,
    AnonRmap anonRmap,
    KernelGeneration generation,
    StatCounters counters,
    PageRelease release,
    SwapDevice swap,
    ForkKnobs knobs)
{
    /// <summary>
    /// Copies every VMA and entry of <paramref name="parent"/> into <paramref name="child"/>. Enter with the parent's
    /// mmap_lock held for write and the child unreachable by anyone else; returns the same, with the parent's
    /// <c>write_protect_seq</c> back to even and its TLBs flushed. Throws <see cref="OutOfFramesException"/> when a
    /// child table cannot be allocated; what was copied is then in the child, which the caller tears down.
    /// </summary>
    public void DupMmap(MmStruct parent, MmStruct child)
    {
        if (Checks.Enabled)
        {
            Contract.HeldForWrite(parent.MmapLock, "the parent's mmap_lock");
        }

        // Odd while entries are being write-protected: GUP-fast, which pins without the mmap_lock, backs off.
        parent.WriteProtectSeq.WriteBegin();
        ProtocolEvents.Mark("dup_mmap", "write_protect_seq begins (odd): a GUP-fast pin that checks it backs off");
        var protectedAny = false;
        try
        {
            foreach (var vma in parent.Vmas)
            {
                var copy = vma.Clone(vma.Start, vma.End, child);
                child.Vmas.Add(copy);
                vma.File?.Rmap.Link(copy);
                var linkFirst = knobs.LinksAnonVmaBeforeCopy;
                if (linkFirst)
                {
                    AnonRmap.Fork(copy, vma);
                }

                // vma_needs_copy: a shared file mapping's entries are not copied; the child faults them in from the
                // page cache. Private mappings are copied (their anon pages must be shared copy-on-write).
                if (vma.File is null || !vma.IsShared)
                {
                    protectedAny |= CopyPageRange(parent, child, vma, copy);
                }

                if (!linkFirst)
                {
                    AnonRmap.Fork(copy, vma);
                }
            }
        }
        finally
        {
            parent.WriteProtectSeq.WriteEnd();
            ProtocolEvents.Mark("dup_mmap", "write_protect_seq ends (even)");

            // flush_tlb_mm before fork returns: no CPU of the parent may keep writing through a translation that
            // was writable before the page became shared, whether fork write-protected the entry or reclaim had
            // cleared it into a swap entry (now shared with the child) and deferred its flush. The kernel flushes
            // unconditionally; here only when one of the two happened, which is the same for every other schedule.
            if (knobs.FlushesParentTlb && (protectedAny || parent.TlbBatchToFlush() >= 0))
            {
                ProtocolEvents.Mark("dup_mmap", "flush_tlb_mm: the parent's write-protected entries");
                shootdown.FlushTlbRange(parent.Context, UserSpace.Start, UserSpace.End);
            }
        }
    }

    /// <summary><c>copy_page_range</c> for one VMA; true when it write-protected some parent entry.</summary>
    private bool CopyPageRange(MmStruct parent, MmStruct child, Vma vma, Vma childVma)
    {
        var protectedAny = false;
        for (var address = vma.Start; address < vma.End;)
        {
            var tableEnd = Math.Min(vma.End, (address & ~(PageTableSet.PteTableSpan - 1)) + PageTableSet.PteTableSpan);
            var source = tables.WalkToPteTable(parent.Pgd, address);
            if (source >= 0)
            {
                var destination = tables.PteAlloc(child.Pgd, child.PageTableLock, address, -1);
                if (destination < 0)
                {
                    throw new OutOfFramesException("Out of frames for the child's page tables during fork.");
                }

                protectedAny |= CopyPteRange(parent, childVma, source, destination, address, tableEnd);
            }

            address = tableEnd;
        }

        return protectedAny;
    }

    /// <summary>
    /// <c>copy_pte_range</c>. Takes the destination PTL, then the source PTL (the kernel's order; the destination table
    /// is new and nobody else can hold its lock); returns with neither held. A page that needs an early copy for the
    /// child needs a new frame, which is never allocated under the PTLs (an allocation may reclaim, which takes them):
    /// the copy stops there, drops both locks, allocates (<c>folio_prealloc</c>) and starts again at that page, as the
    /// kernel's <c>-EAGAIN</c> path does. Throws <see cref="OutOfFramesException"/> with no lock held.
    /// </summary>
    private bool CopyPteRange(MmStruct parent, Vma childVma, long source, long destination, ulong start, ulong end)
    {
        var protectedAny = false;
        var prealloc = -1L;
        try
        {
            for (var address = start; address < end;)
            {
                address = CopyPteRangeLocked(parent, childVma, source, destination, address, end, ref prealloc, ref protectedAny);
                if (address < end)
                {
                    prealloc = allocator.AllocatePage(-1);
                    if (prealloc < 0)
                    {
                        throw new OutOfFramesException($"Out of frames for the child's copy of a pinned page at 0x{address:x} during fork.");
                    }

                    counters.Add(-1, Stat.PagesAllocated);
                }
            }
        }
        finally
        {
            if (prealloc >= 0)
            {
                release.PutPage(-1, prealloc);
            }
        }

        return protectedAny;
    }

    /// <summary>
    /// The copy of [<paramref name="start"/>, <paramref name="end"/>) under both PTLs; returns where it stopped: at
    /// <paramref name="end"/>, or at a page that needs an early copy when <paramref name="prealloc"/> holds no frame.
    /// </summary>
    private ulong CopyPteRangeLocked(MmStruct parent, Vma childVma, long source, long destination, ulong start, ulong end, ref long prealloc, ref bool protectedAny)
    {
        var destinationPtl = tables.Ptl(destination);
        var sourcePtl = tables.Ptl(source);
        destinationPtl.Enter();
        sourcePtl.Enter();
        var address = start;
        for (; address < end; address += PhysicalMemory.PageSize)
        {
            var index = PageTableSet.Index(address, 1);
            var pte = ptes.PtepGet(source, index);
            if (pte.IsSwap)
            {
                CopyNonPresentPte(source, destination, index, address, pte);
                continue;
            }

            if (!pte.MapsPage)
            {
                continue;
            }

            if (!pte.IsSpecial && NeedsCopyForPin(parent, pte.Pfn))
            {
                // folio_try_dup_anon_rmap fails for an exclusive page that may be pinned: sharing it would let the
                // next write fault copy it away from the pin. The child gets its own copy now (copy_present_page);
                // the parent keeps its page and its entry, writable or not.
                if (prealloc < 0)
                {
                    break;
                }

                CopyPinnedPage(childVma, destination, index, address, pte, prealloc);
                prealloc = -1;
                continue;
            }

            if (!pte.IsSpecial)
            {
                ProtocolEvents.Mark("copy_present_pte", "pfn 0x{0:x} at 0x{1:x} needs no early copy (not maybe-pinned, or no pin in this mm): share it", pte.Pfn, address);

                // copy_present_pte: the reference before the mapcount (section 1's pairing rule), then the page is
                // no longer exclusive to the parent (folio_try_dup_anon_rmap).
                memmap.GetPage(pte.Pfn);
                memmap.AddAnonRmapPte(pte.Pfn, childVma.Mm.Id);
                memmap.ClearFlags(pte.Pfn, PageFlags.AnonExclusive);
                if (pte.IsWrite)
                {
                    // The hardware may be setting dirty right now: clear the write bit atomically and copy what is there.
                    pte = ptes.PtepSetWrprotect(source, index).WrProtect();
                    protectedAny = true;
                    ProtocolEvents.Mark("copy_present_pte", "pfn 0x{0:x} shared with the child; the parent's pte at 0x{1:x} write-protected", pte.Pfn, address);
                }
                else
                {
                    ProtocolEvents.Mark("copy_present_pte", "pfn 0x{0:x} shared with the child; the parent's pte at 0x{1:x} was read-only already", pte.Pfn, address);
                }
            }

            ptes.SetPte(destination, index, pte.MkOld());
        }

        sourcePtl.Exit();
        destinationPtl.Exit();
        return address;
    }

    /// <summary>
    /// <c>copy_nonpresent_pte</c> for a swap entry: one more reference to its slot (<c>swap_duplicate</c>), and the
    /// exclusive bit cleared in the parent's entry and the child's, since the swapped-out page is now shared. Enter with
    /// both PTLs held.
    /// </summary>
    private void CopyNonPresentPte(long source, long destination, int index, ulong address, Pte pte)
    {
        var slot = pte.SwapOffset;
        if (pte.SwapType != 0 || slot >= swap.Slots || !swap.Duplicate((int)slot))
        {
            throw new InvalidOperationException($"fork found swap entry {pte} at 0x{address:x} naming no slot in use.");
        }

        var shared = Pte.MakeSwap(pte.SwapType, slot, exclusive: false);
        if (pte.IsSwapExclusive)
        {
            ptes.SetPte(source, index, shared);
        }

        ptes.SetPte(destination, index, shared);
        ProtocolEvents.Mark("copy_nonpresent_pte", "swap pte at 0x{1:x}: swap_duplicate slot {2}; exclusive bit cleared in parent and child", address: address, value: slot);
    }

    /// <summary>Whether fork must give the child its own copy of a page now, as the machine's generation decides it.</summary>
    private bool NeedsCopyForPin(MmStruct parent, long pfn) => generation.ForkMustCopy(parent.HasPinned, memmap, pfn);

    /// <summary>
    /// <c>copy_present_page</c>: a new exclusive page for the child with the pinned page's contents, mapped dirty
    /// (and writable if the VMA is). Enter with both PTLs held; returns the same. The parent's stores cannot race the
    /// copy: the source PTL is held and a store needs a writable entry the parent had before (it keeps writing into
    /// its own page, which the child never sees). <paramref name="fresh"/> is the frame the caller allocated before it
    /// took the locks.
    /// </summary>
    private void CopyPinnedPage(Vma childVma, long destination, int index, ulong address, Pte pte, long fresh)
    {
        if (Checks.Enabled)
        {
            Contract.Held(tables.Ptl(destination), "the child's PTL");
        }

        SchedulingPoint.Interleave();
        memory.Frame(pte.Pfn).CopyTo(memory.Frame(fresh));
        ProtocolEvents.Mark("copy_present_page", "pfn 0x{2:x} at 0x{1:x} may be pinned: the child gets its own copy, pfn 0x{0:x}", fresh, address, pte.Pfn);
        memmap.SetFlags(fresh, PageFlags.Anon | PageFlags.AnonExclusive);
        anonRmap.AddNewAnonRmap(fresh, childVma, address);
        ptes.SetPte(destination, index, Pte.Make(fresh, write: childVma.CanWrite, dirty: true, young: true));
        counters.Add(-1, Stat.ForkPinnedCopies);
    }
}
