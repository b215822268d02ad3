using Engine.Invariants;

namespace Engine.Memory;

/// <summary>
/// The frames' invariants, checked at quiescence for <c>Machine.CheckInvariants</c> from the census the caller took of
/// the live page tables (how many entries map each pfn, which entries are writable) and of the page cache:
/// <list type="bullet">
/// <item>an entry that maps a page maps a live, non-table frame inside physical memory;</item>
/// <item>a mapped page's mapcount equals the number of entries mapping it, and its refcount that number plus the other
/// holders (the page cache, GUP handles): no other holder exists at quiescence;</item>
/// <item>no writable entry maps an anonymous page mapped more than once;</item>
/// <item>every other allocated data frame is held by the cache or GUP alone, or is a leak; every frame with refcount 0
/// is on exactly one free list, unmapped and clean, and no referenced frame is on a free list.</item>
/// </list>
/// Nothing here is a scheduling point: the caller runs at quiescence with scheduling points suppressed.
/// </summary>
internal sealed class MemoryInvariants(Memmap memmap, FrameAllocator allocator)
{
    /// <summary>
    /// The frame an entry of process <paramref name="pid"/> at <paramref name="address"/> maps must be inside physical
    /// memory, allocated and not a page table. False when <paramref name="pfn"/> is outside physical memory (the caller
    /// counts it as no mapping).
    /// </summary>
    public bool CheckMappedFrame(int pid, ulong address, long pfn, List<InvariantViolation> violations)
    {
        if (!memmap.Contains(pfn))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.EntryMapsBadFrame, $"pid {pid}: entry at 0x{address:x} maps pfn 0x{pfn:x} outside physical memory")
                with { Pid = pid, Address = address, Pfn = pfn });
            return false;
        }

        if (memmap.PageCount(pfn) == 0)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.EntryMapsBadFrame, $"pid {pid}: entry at 0x{address:x} maps free frame 0x{pfn:x}")
                with { Pid = pid, Address = address, Pfn = pfn });
        }

        if (memmap.TestFlags(pfn, PageFlags.PageTable))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.EntryMapsBadFrame, $"pid {pid}: entry at 0x{address:x} maps page-table frame 0x{pfn:x}")
                with { Pid = pid, Address = address, Pfn = pfn });
        }

        return true;
    }

    /// <summary>
    /// A page <paramref name="count"/> entries map: its mapcount is <paramref name="count"/>; its refcount is that plus
    /// the cache's reference (when in <paramref name="cached"/>) and the GUP handles'; and, when it is anonymous and
    /// mapped more than once, none of the entries in <paramref name="writers"/> (the writable entries mapping it, as
    /// pid and address) exists.
    /// </summary>
    public void CheckMappedPage(long pfn, int count, HashSet<long> cached, IReadOnlyList<(int Pid, ulong Address)>? writers, List<InvariantViolation> violations)
    {
        var mapcount = memmap.MapCount(pfn);
        var refcount = memmap.PageCount(pfn);
        if (mapcount != count)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.MapcountMismatch, $"pfn 0x{pfn:x}: mapcount {mapcount} but {count} entries map it")
                with { Pfn = pfn, Expected = count, Actual = mapcount });
        }

        var (gupRefs, _) = memmap.GupHeld(pfn);
        var expected = count + (cached.Contains(pfn) ? 1 : 0) + gupRefs;
        if (refcount < 0)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.RefcountOverflow, $"pfn 0x{pfn:x}: refcount {refcount} has wrapped past the counter's limit; {count} entries map it and {expected - count} other reference(s) are held (cache, GUP)")
                with { Pfn = pfn, Expected = expected, Actual = refcount });
        }
        else if (refcount != expected)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.RefcountMismatch, $"pfn 0x{pfn:x}: refcount {refcount} but {count} entries map it and {expected - count} other reference(s) are held (cache, GUP)")
                with { Pfn = pfn, Expected = expected, Actual = refcount });
        }

        if (count > 1 && memmap.TestFlags(pfn, PageFlags.Anon) && writers is not null)
        {
            foreach (var (pid, address) in writers)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.WritableShared, $"pid {pid}: writable entry at 0x{address:x} maps pfn 0x{pfn:x}, which is mapped {count} times")
                    with { Pid = pid, Address = address, Pfn = pfn, Expected = 1, Actual = count });
            }
        }
    }

    /// <summary>Every frame on the free lists, each once; returns the set.</summary>
    public HashSet<long> CheckFreeLists(List<InvariantViolation> violations)
    {
        var free = new HashSet<long>();
        foreach (var pfn in allocator.FreeList())
        {
            if (!free.Add(pfn))
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x} is on the free lists twice") with { Pfn = pfn });
            }
        }

        return free;
    }

    /// <summary>
    /// A frame that is not reserved, against the free lists (<paramref name="free"/>) and the census of its holders
    /// (<paramref name="mappings"/>, <paramref name="cached"/>, the GUP handles): a free frame is on a list, unmapped
    /// and clean; a referenced one is on no list and, if it is a data frame, is held by something, and by GUP handles
    /// alone only with their references. Returns true for an allocated page-table frame, whose owner the page tables
    /// must vouch for (<c>PageTableInvariants.CheckTableFrame</c>).
    /// </summary>
    public bool CheckFrame(long pfn, HashSet<long> free, Dictionary<long, int> mappings, HashSet<long> cached, List<InvariantViolation> violations)
    {
        var refcount = memmap.PageCount(pfn);
        var flags = memmap.GetFlags(pfn);
        if (refcount == 0)
        {
            if (!free.Contains(pfn))
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x} has refcount 0 but is on no free list (lost)") with { Pfn = pfn });
            }

            if (memmap.MapCount(pfn) != 0 || flags != PageFlags.None)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"free pfn 0x{pfn:x} has mapcount {memmap.MapCount(pfn)} and flags {flags}") with { Pfn = pfn });
            }
        }
        else if (free.Contains(pfn))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x} is on a free list with refcount {refcount}")
                with { Pfn = pfn, Expected = 0, Actual = refcount });
        }
        else if ((flags & PageFlags.PageTable) != 0)
        {
            return true;
        }
        else if (!mappings.ContainsKey(pfn) && !cached.Contains(pfn) && memmap.GupHeld(pfn).Refs == 0)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.LeakedFrame, $"pfn 0x{pfn:x} has refcount {refcount} but nothing maps or holds it (leak)")
                with { Pfn = pfn, Expected = 0, Actual = refcount });
        }
        else if (!mappings.ContainsKey(pfn) && !cached.Contains(pfn) && refcount != memmap.GupHeld(pfn).Refs)
        {
            violations.Add(InvariantViolation.Of(refcount < 0 ? ViolationKind.RefcountOverflow : ViolationKind.RefcountMismatch, $"pfn 0x{pfn:x} is held only by GUP handles ({memmap.GupHeld(pfn).Refs} references) but has refcount {refcount}")
                with { Pfn = pfn, Expected = memmap.GupHeld(pfn).Refs, Actual = refcount });
        }

        return false;
    }

    /// <summary>Whether <paramref name="pfn"/> is reserved (the zero page): no frame invariant applies to it.</summary>
    public bool IsReserved(long pfn) => memmap.TestFlags(pfn, PageFlags.Reserved);
}
