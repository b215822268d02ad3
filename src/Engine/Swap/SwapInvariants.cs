using Engine.Invariants;
using Engine.Memory;

namespace Engine.Swap;

/// <summary>
/// The swap device's and the swap cache's invariants at quiescence, from the census of swap entries the caller took
/// of the live page tables (how many name each slot, how many of those carry the exclusive bit):
/// <list type="bullet">
/// <item>every slot counts exactly the swap entries that name it (so no slot is left counted after every process
/// exits), and an entry names a slot of the device;</item>
/// <item>a swap entry is exclusive only when it is its slot's only reference;</item>
/// <item>a slot is cached exactly when the swap cache holds a page for it, and that page says so (its swap-cache flag
/// and its slot), is live, and (in the generations that track exclusivity, Linux ≥ 5.19) is not AnonExclusive while
/// swap entries still name its slot.</item>
/// </list>
/// Nothing here is a scheduling point: the caller runs at quiescence with scheduling points suppressed. Nothing here
/// allocates slot metadata either: the slots of a chunk neither the device nor the cache ever allocated are all free and
/// empty, so only the swap entries that name one of them are checked (each is a count mismatch), not their 4,096 slots.
/// </summary>
internal sealed class SwapInvariants(SwapDevice device, SwapCache cache, Memmap memmap, PhysicalMemory memory, bool tracksAnonExclusive)
{
    /// <summary>
    /// Checks the device and the cache against <paramref name="entries"/> (swap entries per slot) and
    /// <paramref name="exclusive"/> (exclusive ones per slot), with <paramref name="mappings"/> the census of entries per pfn; adds every swap-cache page to <paramref name="held"/>, the
    /// set of pages a cache holds a reference to, for the memory checks.
    /// </summary>
    public void Check(IReadOnlyDictionary<long, int> entries, IReadOnlyDictionary<long, int> exclusive, bool anyLiveProcess, HashSet<long> held, IReadOnlyDictionary<long, int> mappings, List<InvariantViolation> violations)
    {
        // Exit frees every slot its entries held and every swap-cache page they left idle (free_swap_and_cache,
        // free_pages_and_swap_cache): with no process left, nothing of swap remains. Not under a scheme that keeps no
        // count: free_swap_cache then keeps a page whose word cannot say it is unmapped, with its slot, for reclaim;
        // the checks of each slot below still hold such a page to the cache's reference alone.
        if (!anyLiveProcess && device.UsedSlots > 0 && memmap.CountsMappings)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapCountMismatch, $"every process has exited but {device.UsedSlots} swap slot(s) are still in use")
                with { Expected = 0, Actual = device.UsedSlots });
        }

        foreach (var slot in entries.Keys.Where(s => s < 0 || s >= device.Slots))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapCacheCorrupt, $"{entries[slot]} swap entr(ies) name slot {slot}, which the device of {device.Slots} slots does not have"));
        }

        for (var chunk = 0; chunk < device.Chunks; chunk++)
        {
            if (!device.IsChunkAllocated(chunk) && !cache.IsChunkAllocated(chunk))
            {
                continue;
            }

            var first = chunk << SwapDevice.ChunkShift;
            var end = Math.Min(first + SwapDevice.ChunkSlots, device.Slots);
            for (var slot = first; slot < end; slot++)
            {
                CheckSlot(slot, entries, exclusive, held, mappings, violations);
            }
        }

        // Swap entries naming a slot of a chunk never allocated: the loop above passed over it.
        foreach (var slot in entries.Keys.Union(exclusive.Keys).Where(s => s >= 0 && s < device.Slots && !IsAllocated((int)s)).Order())
        {
            CheckSlot((int)slot, entries, exclusive, held, mappings, violations);
        }
    }

    private bool IsAllocated(int slot) => device.IsChunkAllocated(slot >> SwapDevice.ChunkShift) || cache.IsChunkAllocated(slot >> SwapDevice.ChunkShift);

    private void CheckSlot(int slot, IReadOnlyDictionary<long, int> entries, IReadOnlyDictionary<long, int> exclusive, HashSet<long> held, IReadOnlyDictionary<long, int> mappings, List<InvariantViolation> violations)
    {
        var named = entries.GetValueOrDefault(slot);
        var count = device.Count(slot);
        if (count != named)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapCountMismatch, $"swap slot {slot} counts {count} reference(s) but {named} swap entr(ies) name it")
                with { Expected = named, Actual = count });
        }

        if (exclusive.GetValueOrDefault(slot) > 0 && count != 1)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapExclusiveShared, $"a swap entry for slot {slot} is exclusive but the slot counts {count} reference(s)")
                with { Expected = 1, Actual = count });
        }

        CheckCachedSlot(slot, count, held, mappings, violations);
    }

    private void CheckCachedSlot(int slot, int count, HashSet<long> held, IReadOnlyDictionary<long, int> mappings, List<InvariantViolation> violations)
    {
        var pfn = cache.Peek(slot);
        var flagged = device.HasCache(slot);
        if (pfn < 0)
        {
            if (flagged)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.SwapCacheCorrupt, $"swap slot {slot} is marked cached but the swap cache holds no page for it"));
            }

            return;
        }

        held.Add(pfn);
        if (!flagged)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapCacheCorrupt, $"the swap cache holds pfn 0x{pfn:x} for slot {slot}, which is not marked cached") with { Pfn = pfn });
        }

        if (!memmap.Contains(pfn) || memmap.PageCount(pfn) <= 0)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapCacheCorrupt, $"the swap cache holds pfn 0x{pfn:x} for slot {slot}, which is not a live frame") with { Pfn = pfn });
            return;
        }

        if (!memmap.TestFlags(pfn, PageFlags.SwapCache) || cache.SlotOf(pfn) != slot)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapCacheCorrupt, $"pfn 0x{pfn:x}, in the swap cache for slot {slot}, has flags {memmap.GetFlags(pfn)} and names slot {cache.SlotOf(pfn)}") with { Pfn = pfn });
        }

        var expected = 1 + memmap.GupHeld(pfn).Refs;
        if (mappings.GetValueOrDefault(pfn) == 0 && memmap.PageCount(pfn) != expected)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.RefcountMismatch, $"pfn 0x{pfn:x}, in the swap cache for slot {slot} and unmapped, has refcount {memmap.PageCount(pfn)}; only the swap cache and {memmap.GupHeld(pfn).Refs} GUP reference(s) hold it")
                with { Pfn = pfn, Expected = expected, Actual = memmap.PageCount(pfn) });
        }

        if (count > 0 && tracksAnonExclusive && memmap.TestFlags(pfn, PageFlags.AnonExclusive))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.SwapExclusiveShared, $"pfn 0x{pfn:x}, in the swap cache for slot {slot}, is AnonExclusive while {count} swap entr(ies) still name the slot") with { Pfn = pfn });
        }

        // The slot holds what the last writer stored, in the form quiescence can check: a swap-cache page that nothing
        // maps and no GUP user holds, and that is clean, was read from its slot or written to it since its last store,
        // so the two are the same. A store that reached it unnoticed (a write after the dirty test, a stale TLB entry)
        // shows here before a swap-in could hand the stale slot to a process.
        if (mappings.GetValueOrDefault(pfn) == 0 && memmap.GupHeld(pfn) == (0, 0) && (memmap.GetFlags(pfn) & (PageFlags.Dirty | PageFlags.Writeback)) == 0 && device.HasStorage(slot))
        {
            var contents = memory.Frame(pfn);
            var stored = device.Page(slot);
            var word = contents.CommonPrefixLength(stored);
            if (word < contents.Length)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.CleanPageDiffers, $"pfn 0x{pfn:x}, in the swap cache for slot {slot}, is clean and unmapped but differs from the slot at word {word} (0x{contents[word]:x} in memory, 0x{stored[word]:x} in the slot): a store reached it without dirtying it")
                    with { Pfn = pfn, Expected = unchecked((long)stored[word]), Actual = unchecked((long)contents[word]) });
            }
        }
    }
}
