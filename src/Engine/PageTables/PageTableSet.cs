using System.Diagnostics;
using Engine.Invariants;
using Engine.Memory;
using Engine.Stats;
using Engine.Sync;

namespace Engine.PageTables;

/// <summary>
/// The 4-level page tables of every mm (PGD, PUD, PMD, PTE table; 512 entries each, 48-bit addresses), kept in
/// frames from the same pool as data, with one spinlock per frame for the split PTE-table locks.
/// <para>
/// Upper-level entries are 64-bit words (present, writable, user, pfn of the next table) read atomically by every
/// walker. They are populated under the mm's page_table_lock while the mmap_lock is held, and cleared only when a
/// table is detached: under the mm's page_table_lock (<see cref="DetachEmptyTables"/>), after which the caller waits
/// for a grace period in which every CPU leaves any access or IRQ-disabled section it was in, then frees the table
/// (<c>Engine.Zap.PageTableFreeing</c>, the kernel's <c>free_pgtables</c> and <c>tlb_remove_table</c>).
/// </para>
/// </summary>
internal sealed class PageTableSet(PhysicalMemory memory, Memmap memmap, FrameAllocator allocator, PageTableLocks ptls, StatCounters counters)
{
    public const int Entries = PhysicalMemory.WordsPerFrame;
    public const ulong PteTableSpan = (ulong)Entries << PhysicalMemory.PageShift;

    /// <summary>The index of <paramref name="address"/> in its table at <paramref name="level"/> (4 = PGD … 1 = PTE table).</summary>
    public static int Index(ulong address, int level) => (int)((address >> (PhysicalMemory.PageShift + (9 * (level - 1)))) & (Entries - 1));

    /// <summary>The split PTL of a PTE table (<c>pte_lockptr</c>).</summary>
    public Spinlock Ptl(long table) => ptls.Ptl(table);

    /// <summary>A zeroed table frame, or −1. Enter with no spinlock held.</summary>
    public long AllocateTable(int cpu)
    {
        var pfn = allocator.AllocatePage(cpu);
        if (pfn >= 0)
        {
            memmap.SetFlags(pfn, PageFlags.PageTable);
            counters.Add(cpu, Stat.PageTablesAllocated);
        }

        return pfn;
    }

    /// <summary>Frees a table no walker can reach any more. Enter with no spinlock held.</summary>
    public void FreeTable(int cpu, long pfn)
    {
        memmap.ClearFlags(pfn, PageFlags.PageTable);
        var last = memmap.PutPageTestZero(pfn);
        Debug.Assert(last, "a page table with extra references");
        allocator.FreePage(cpu, pfn);
        counters.Add(cpu, Stat.PageTablesFreed);
    }

    /// <summary>
    /// Lockless walk from the PGD to the PTE table covering <paramref name="address"/>; −1 if a level is missing.
    /// Safe without locks because tables are freed only after a grace period.
    /// </summary>
    public long WalkToPteTable(long pgd, ulong address) => WalkToPteTable(pgd, address, out _);

    /// <summary>The same, also giving the PMD table (whose entry for <paramref name="address"/> GUP-fast re-reads).</summary>
    public long WalkToPteTable(long pgd, ulong address, out long pmdTable)
    {
        var table = pgd;
        pmdTable = -1;
        for (var level = 4; level > 1; level--)
        {
            if (level == 2)
            {
                pmdTable = table;
            }

            var entry = new Pte(Atomic.Read(ref memory.Word(table, Index(address, level))));
            if (!entry.IsPresent)
            {
                return -1;
            }

            table = entry.Pfn;
        }

        return table;
    }

    /// <summary>The PMD entry for <paramref name="address"/> in <paramref name="pmdTable"/>, read once (<c>pmdp_get_lockless</c>).</summary>
    public Pte ReadPmd(long pmdTable, ulong address) => new(Atomic.Read(ref memory.Word(pmdTable, Index(address, 2))));

    /// <summary>
    /// <c>__pte_alloc</c> and friends: the PTE table covering <paramref name="address"/> under <paramref name="pgd"/>,
    /// allocating missing levels and publishing them under <paramref name="pageTableLock"/> (the mm's
    /// <c>page_table_lock</c>); −1 when out of frames. Enter with the mm's mmap_lock held (read or write) and no
    /// spinlock; returns the same.
    /// </summary>
    public long PteAlloc(long pgd, Spinlock pageTableLock, ulong address, int cpu)
    {
        var table = pgd;
        for (var level = 4; level > 1; level--)
        {
            ref var slot = ref memory.Word(table, Index(address, level));
            var entry = new Pte(Atomic.Read(ref slot));
            if (!entry.IsPresent)
            {
                var fresh = AllocateTable(cpu);
                if (fresh < 0)
                {
                    return -1;
                }

                pageTableLock.Enter();
                entry = new Pte(Atomic.Read(ref slot));
                if (!entry.IsPresent)
                {
                    // The zeroed table is published by this release store: a walker that sees the entry sees zeros.
                    entry = TableEntry(fresh);
                    Atomic.Write(ref slot, entry.Value);
                    fresh = -1;
                }

                pageTableLock.Exit();
                if (fresh >= 0)
                {
                    // Another fault populated the level first.
                    FreeTable(cpu, fresh);
                }
            }

            table = entry.Pfn;
        }

        return table;
    }

    /// <summary>
    /// The detaching half of <c>free_pgd_range</c>: unhooks, bottom-up, the PTE tables, PMDs and PUDs under
    /// <paramref name="pgd"/> meeting [<paramref name="start"/>, <paramref name="end"/>) whose whole span lies in
    /// [<paramref name="floor"/>, <paramref name="ceiling"/>), the gap no VMA covers, and adds them to
    /// <paramref name="detached"/>. A walker may still be on them until a grace period ends; the caller frees them
    /// after it. Enter with the mmap_lock held (read is enough: a fault cannot populate a table in a gap, since it finds
    /// no VMA there) and the mm's <c>page_table_lock</c> (upper entries change only under it); returns the same.
    /// </summary>
    public void DetachEmptyTables(long pgd, Spinlock pageTableLock, ulong start, ulong end, ulong floor, ulong ceiling, List<long> detached)
    {
        if (Checks.Enabled)
        {
            Contract.Held(pageTableLock, "the mm's page_table_lock");
        }

        DetachEmpty(pgd, 4, 0, new Gap(start, end, floor, ceiling), detached);
    }

    /// <summary>Every table reachable from <paramref name="table"/> at <paramref name="level"/>, children first.</summary>
    public void Collect(long table, int level, List<long> into)
    {
        if (level > 1)
        {
            for (var i = 0; i < Entries; i++)
            {
                var entry = new Pte(Atomic.Read(ref memory.Word(table, i)));
                if (entry.IsPresent)
                {
                    Collect(entry.Pfn, level - 1, into);
                }
            }
        }

        into.Add(table);
    }

    private static Pte TableEntry(long pfn) => new(Pte.PresentBit | Pte.WriteBit | Pte.UserBit | ((ulong)pfn << PhysicalMemory.PageShift));

    /// <summary>
    /// Detaches, bottom-up, every child table whose span meets the unmapped range and lies wholly in the gap. Returns
    /// true when <paramref name="table"/> maps nothing afterwards. Enter with page_table_lock held.
    /// <para>
    /// Like the kernel's <c>free_pgd_range</c>, it never scans a PTE table: one whose span lies wholly in the gap maps
    /// nothing (no VMA covers any of it, so every entry was zapped when its VMA went, and no fault, madvise or
    /// hardware update touches an entry outside a VMA). Upper-level entries are written only under page_table_lock,
    /// which is held here, so they are read with plain loads; lockless walkers read them atomically and every store
    /// here is an atomic release.
    /// </para>
    /// </summary>
    private bool DetachEmpty(long table, int level, ulong tableBase, Gap gap, List<long> detached)
    {
        var span = 1UL << (PhysicalMemory.PageShift + (9 * (level - 1)));
        if (level == 1)
        {
            Debug.Assert(!FrameMapsAnything(table), "a PTE table wholly in a VMA-free gap still maps something");
            return tableBase >= gap.Floor && tableBase + (span * Entries) <= gap.Ceiling;
        }

        var empty = true;
        for (var i = 0; i < Entries; i++)
        {
            ref var slot = ref memory.Word(table, i);
            var entry = new Pte(slot);
            if (entry.IsNone)
            {
                continue;
            }

            var childBase = tableBase + ((ulong)i * span);
            var childEnd = childBase + span;
            if (childEnd <= gap.Start || childBase >= gap.End || childBase < gap.Floor || childEnd > gap.Ceiling
                || !DetachEmpty(entry.Pfn, level - 1, childBase, gap, detached))
            {
                empty = false;
                continue;
            }

            Atomic.Write(ref slot, 0UL);
            detached.Add(entry.Pfn);
        }

        return empty;
    }

    private bool FrameMapsAnything(long table)
    {
        foreach (var word in memory.Frame(table))
        {
            if (word != 0)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The unmapped range and the VMA-free gap around it.</summary>
    private readonly record struct Gap(ulong Start, ulong End, ulong Floor, ulong Ceiling);
}
