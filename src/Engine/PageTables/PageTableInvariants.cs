using Engine.Invariants;
using Engine.Memory;
using Engine.Sync;

namespace Engine.PageTables;

/// <summary>
/// The page tables' invariants, checked at quiescence for <c>Machine.CheckInvariants</c>: every table reachable from a
/// live mm is a page-table frame with one reference; every entry is empty, present, protnone or a swap entry; a special
/// entry maps the zero page read-only; and every page-table frame in use is reachable from a live mm. The caller runs
/// at quiescence with scheduling points suppressed; nothing here is a scheduling point.
/// </summary>
internal sealed class PageTableInvariants(PhysicalMemory memory, Memmap memmap, long zeroPfn)
{
    /// <summary>
    /// Walks the tables under <paramref name="pgd"/> (the tables of process <paramref name="pid"/>), adding each table
    /// to <paramref name="tables"/> and calling <paramref name="leaf"/> with the address and value of every entry that
    /// maps a page; reports tables that are not page-table frames with one reference, and garbage entries.
    /// </summary>
    public void Walk(int pid, long pgd, Action<ulong, Pte> leaf, HashSet<long> tables, List<InvariantViolation> violations)
        => Walk(pid, pgd, 4, 0, leaf, static (_, _) => { }, tables, violations);

    /// <summary>The same walk, also handing every swap entry to <paramref name="swapLeaf"/> with its address.</summary>
    public void Walk(int pid, long pgd, Action<ulong, Pte> leaf, Action<ulong, Pte> swapLeaf, HashSet<long> tables, List<InvariantViolation> violations)
        => Walk(pid, pgd, 4, 0, leaf, swapLeaf, tables, violations);

    /// <summary>A special entry must be the read-only zero page.</summary>
    public void CheckSpecialEntry(int pid, ulong address, Pte pte, List<InvariantViolation> violations)
    {
        if (pte.Pfn != zeroPfn || pte.IsWrite)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.BadSpecialEntry, $"pid {pid}: special entry at 0x{address:x} ({pte}) is not the read-only zero page")
                with { Pid = pid, Address = address, Pfn = pte.Pfn });
        }
    }

    /// <summary>
    /// An allocated page-table frame (<paramref name="pfn"/>, on no free list) must be one of the tables a walk of the
    /// live mms reached (<paramref name="reachable"/>).
    /// </summary>
    public static void CheckTableFrame(long pfn, HashSet<long> reachable, List<InvariantViolation> violations)
    {
        if (!reachable.Contains(pfn))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.LeakedPageTable, $"page-table frame 0x{pfn:x} belongs to no live mm (leaked table)") with { Pfn = pfn });
        }
    }

    private void Walk(int pid, long table, int level, ulong tableBase, Action<ulong, Pte> leaf, Action<ulong, Pte> swapLeaf, HashSet<long> tables, List<InvariantViolation> violations)
    {
        tables.Add(table);
        if (memmap.PageCount(table) != 1 || !memmap.TestFlags(table, PageFlags.PageTable))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.BadPageTable, $"page table 0x{table:x} (level {level}) has refcount {memmap.PageCount(table)} and flags {memmap.GetFlags(table)}")
                with { Pid = pid, Pfn = table, Address = tableBase, Expected = 1, Actual = memmap.PageCount(table) });
        }

        var span = 1UL << (PhysicalMemory.PageShift + (9 * (level - 1)));
        for (var i = 0; i < PageTableSet.Entries; i++)
        {
            var entry = new Pte(Atomic.Read(ref memory.Word(table, i)));
            var address = tableBase + ((ulong)i * span);
            if (level == 1)
            {
                if (entry.MapsPage)
                {
                    leaf(address, entry);
                }
                else if (entry.IsSwap)
                {
                    swapLeaf(address, entry);
                }
                else if (!entry.IsNone)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.GarbageEntry, $"entry at 0x{address:x} holds garbage 0x{entry.Value:x16}")
                        with { Pid = pid, Address = address, Pfn = table });
                }
            }
            else if (entry.IsPresent)
            {
                Walk(pid, entry.Pfn, level - 1, address, leaf, swapLeaf, tables, violations);
            }
            else if (!entry.IsNone)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.GarbageEntry, $"upper-level entry (level {level}) for 0x{address:x} holds garbage 0x{entry.Value:x16}")
                    with { Pid = pid, Address = address, Pfn = table });
            }
        }
    }
}
