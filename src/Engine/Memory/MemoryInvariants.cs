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
        var refcount = memmap.PageCount(pfn);
        if (memmap.CountsMappings)
        {
            var mapcount = memmap.MapCount(pfn);
            if (mapcount != count)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.MapcountMismatch, $"pfn 0x{pfn:x}: mapcount {mapcount} but {count} entries map it")
                    with { Pfn = pfn, Expected = count, Actual = mapcount });
            }
        }
        else if (memmap.MapcountDisagreement(pfn, count) is { } wrong)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.MapcountMismatch, $"pfn 0x{pfn:x}: {wrong}") with { Pfn = pfn, Expected = count, Actual = memmap.MapcountWord(pfn) });
        }

        if (count > 1 && memmap.TestFlags(pfn, PageFlags.Anon) && !memmap.MaybeMappedShared(pfn))
        {
            // Without a count, "is it shared?" is the tri-state's "maybe more" or, with no mapcount at all, "not
            // AnonExclusive": an exclusive page mapped twice would be answered wrong.
            violations.Add(InvariantViolation.Of(ViolationKind.SharedFalseNegative, $"pfn 0x{pfn:x}: {count} entries map it but 'is it shared?' says no ({memmap.Scheme})")
                with { Pfn = pfn, Expected = count, Actual = 1 });
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

    /// <summary>
    /// A large folio against its census: its head and tail bits; each tail's own count 0; its count the entries that map
    /// any of its pages plus the GUP handles' references (a pin is one reference on a large folio) and its pin count
    /// theirs; its total mapcount the entries; per page, the entries (under <see cref="MapcountScheme.PerPage"/>) or
    /// nothing (<see cref="MapcountScheme.MmId"/> keeps no per-page count); no writable entry on a page mapped more
    /// than once; held by something. Under <see cref="MapcountScheme.MmId"/>: every slot's mm maps the folio at least
    /// as often as its slot counts, the lock bit is free, and a folio two mms map answers "maybe shared" (no false
    /// negative). <paramref name="mms"/> counts each mm's entries mapping the folio.
    /// </summary>
    public void CheckFolio(long head, Dictionary<long, int> mappings, IReadOnlyDictionary<int, int> mms, Dictionary<long, List<(int Pid, ulong Address)>> writers, List<InvariantViolation> violations)
    {
        var pages = memmap.FolioPages;
        var scheme = memmap.Scheme;
        int total = 0, pins = 0;
        long references = 0;
        for (var i = 0; i < pages; i++)
        {
            var pfn = head + i;
            var flags = memmap.GetFlags(pfn);
            if ((flags & (i == 0 ? PageFlags.Head : PageFlags.Tail)) == 0 || (flags & (i == 0 ? PageFlags.Tail : PageFlags.Head)) != 0)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FolioCorrupt, $"pfn 0x{pfn:x}, page {i} of the folio at 0x{head:x}, has flags {flags}") with { Pfn = pfn });
            }

            if (i > 0 && memmap.OwnRefCount(pfn) != 0)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FolioCorrupt, $"tail pfn 0x{pfn:x} of the folio at 0x{head:x} has a count of its own, {memmap.OwnRefCount(pfn)}")
                    with { Pfn = pfn, Expected = 0, Actual = memmap.OwnRefCount(pfn) });
            }

            var count = mappings.GetValueOrDefault(pfn);
            total += count;
            var own = memmap.OwnMapCount(pfn);
            var expectedOwn = scheme == MapcountScheme.PerPage ? count : 0;
            if (i == 0 && !memmap.CountsMappings)
            {
                // The head's word is the folio's: checked below.
            }
            else if (own != expectedOwn)
            {
                var message = scheme == MapcountScheme.PerPage
                    ? InvariantViolation.Of(ViolationKind.MapcountMismatch, $"pfn 0x{pfn:x} (page {i} of the folio at 0x{head:x}): mapcount {own} but {count} entries map it")
                    : InvariantViolation.Of(ViolationKind.MapcountMismatch, $"pfn 0x{pfn:x} (page {i} of the folio at 0x{head:x}) has a mapcount of its own ({own}), which the MM-id scheme does not keep");
                violations.Add(message with { Pfn = pfn, Expected = expectedOwn, Actual = own });
            }

            var (refs, pagePins) = memmap.GupHeld(pfn);
            references += refs - ((long)pagePins * Memmap.GupPinCountingBias) + pagePins;
            pins += pagePins;
            if (count > 1 && writers.TryGetValue(pfn, out var entries))
            {
                foreach (var (pid, address) in entries)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.WritableShared, $"pid {pid}: writable entry at 0x{address:x} maps pfn 0x{pfn:x} (page {i} of a large folio), which is mapped {count} times")
                        with { Pid = pid, Address = address, Pfn = pfn, Expected = 1, Actual = count });
                }
            }
        }

        var mappers = mms.Count(kv => kv.Value > 0);
        if (!memmap.CountsMappings)
        {
            CheckFolioWord(head, total, mappers, violations);
        }
        else if (memmap.FolioMapCount(head) is var mapcount && mapcount != total)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.MapcountMismatch, $"folio 0x{head:x}: _large_mapcount {mapcount} but {total} entries map its pages")
                with { Pfn = head, Expected = total, Actual = mapcount });
        }

        var refcount = memmap.PageCount(head);
        var expected = total + references;
        if (total == 0 && references == 0)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.LeakedFrame, $"folio 0x{head:x} has refcount {refcount} but nothing maps or holds it (leak)")
                with { Pfn = head, Expected = 0, Actual = refcount });
        }
        else if (refcount != expected)
        {
            violations.Add(InvariantViolation.Of(refcount < 0 ? ViolationKind.RefcountOverflow : ViolationKind.RefcountMismatch, $"folio 0x{head:x}: refcount {refcount} but {total} entries map it and {references} other reference(s) are held (GUP)")
                with { Pfn = head, Expected = expected, Actual = refcount });
        }

        if (memmap.FolioPinCount(head) != pins)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.FolioCorrupt, $"folio 0x{head:x}: _pincount {memmap.FolioPinCount(head)} but GUP handles hold {pins} pin(s)")
                with { Pfn = head, Expected = pins, Actual = memmap.FolioPinCount(head) });
        }

        if (scheme == MapcountScheme.MmId)
        {
            CheckMmIds(head, mms, violations);
        }
    }

    /// <summary>
    /// The folio word of the proposals against the census: the tri-state "not mapped" with no entry, "once" with one
    /// mm at most, and "maybe more" whenever two mms map it (no false negative for "is it shared?"); the "ever
    /// mapped" bit set when anything maps it.
    /// </summary>
    private void CheckFolioWord(long head, int total, int mappers, List<InvariantViolation> violations)
    {
        var word = memmap.MapcountWord(head);
        var wrong = memmap.Scheme switch
        {
            _ when word is < -1 or > 1 || (word > 0 && memmap.Scheme == MapcountScheme.None) => $"word {word} is no state of the {memmap.Scheme} scheme",
            _ when word == -1 && total != 0 => $"'not mapped' but {total} entries map its pages",
            MapcountScheme.TriState when word == 0 && mappers > 1 => $"tri-state 'mapped by one mm' but {mappers} mms map it",
            _ => null,
        };
        if (wrong is not null)
        {
            violations.Add(InvariantViolation.Of(mappers > 1 && word == 0 ? ViolationKind.SharedFalseNegative : ViolationKind.MapcountMismatch, $"folio 0x{head:x}: {wrong}")
                with { Pfn = head, Expected = total, Actual = word });
        }
    }

    private void CheckMmIds(long head, IReadOnlyDictionary<int, int> mms, List<InvariantViolation> violations)
    {
        if (memmap.LargeMapcountLocked(head))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.FolioCorrupt, $"folio 0x{head:x}: its mapcount lock bit is held at quiescence") with { Pfn = head });
        }

        var (first, second) = memmap.MmIdSlots(head);
        foreach (var (id, count) in new[] { first, second })
        {
            if (id == 0 ? count != 0 : count < 1 || count > mms.GetValueOrDefault(id))
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FolioCorrupt, $"folio 0x{head:x}: MM-id slot (mm {id}, {count} mapping(s)) but that mm maps it {mms.GetValueOrDefault(id)} time(s)")
                    with { Pfn = head, Expected = mms.GetValueOrDefault(id), Actual = count });
            }
        }

        if (first.Id != 0 && first.Id == second.Id)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.FolioCorrupt, $"folio 0x{head:x}: both MM-id slots name mm {first.Id}") with { Pfn = head });
        }

        var mappers = mms.Count(kv => kv.Value > 0);
        if (mappers > 1 && !memmap.MaybeMappedShared(head))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SharedFalseNegative, $"folio 0x{head:x}: {mappers} mms map it (mm {string.Join(", mm ", mms.Where(kv => kv.Value > 0).Select(kv => kv.Key))}) but folio_maybe_mapped_shared says no")
                with { Pfn = head, Expected = mappers, Actual = 1 });
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
        if (memmap.IsLarge(pfn))
        {
            // A page of a large folio: CheckFolio checks the folio as a whole; it must be on no free list.
            if (free.Contains(pfn))
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x}, a page of a large folio, is on a free list") with { Pfn = pfn });
            }

            return false;
        }

        var refcount = memmap.PageCount(pfn);
        var flags = memmap.GetFlags(pfn);
        if (refcount == 0)
        {
            if (!free.Contains(pfn))
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x} has refcount 0 but is on no free list (lost)") with { Pfn = pfn });
            }

            if (memmap.OwnMapCount(pfn) != 0 || flags != PageFlags.None)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"free pfn 0x{pfn:x} has mapcount {memmap.OwnMapCount(pfn)} and flags {flags}") with { Pfn = pfn });
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
