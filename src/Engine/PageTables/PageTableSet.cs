using System.Diagnostics;
using Engine.AddressSpace;
using Engine.Invariants;
using Engine.Memory;
using Engine.Sync;

namespace Engine.PageTables;

/// <summary>
/// The 4-level page tables of every mm (PGD, PUD, PMD, PTE table; 512 entries each, 48-bit addresses), kept in
/// frames from the same pool as data, with one spinlock per frame for the split PTE-table locks.
/// <para>
/// Upper-level entries are 64-bit words (present, writable, user, pfn of the next table) read atomically by every
/// walker. They are populated under the mm's page_table_lock while the mmap_lock is held, and cleared only when a
/// table is freed: under the mmap_lock held for write, then a grace period in which every CPU leaves any access or
/// IRQ-disabled section it was in (<see cref="Machine.WaitForLocklessWalkers"/>), then the free.
/// </para>
/// </summary>
internal sealed class PageTableSet
{
    public const int Entries = PhysicalMemory.WordsPerFrame;
    public const ulong PteTableSpan = (ulong)Entries << PhysicalMemory.PageShift;

    [ThreadStatic]
    private static List<long>? t_detached;

    private readonly Machine _machine;
    private readonly Spinlock[] _ptl;

    public PageTableSet(Machine machine)
    {
        _machine = machine;
        _ptl = new Spinlock[machine.Memmap.Frames];
        for (var i = 0; i < _ptl.Length; i++)
        {
            _ptl[i] = new Spinlock();
        }
    }

    /// <summary>The index of <paramref name="address"/> in its table at <paramref name="level"/> (4 = PGD … 1 = PTE table).</summary>
    public static int Index(ulong address, int level) => (int)((address >> (PhysicalMemory.PageShift + (9 * (level - 1)))) & (Entries - 1));

    /// <summary>The split PTL of a PTE table (<c>pte_lockptr</c>).</summary>
    public Spinlock Ptl(long table) => _ptl[table - _machine.Memmap.BasePfn];

    /// <summary>A zeroed table frame, or −1. Enter with no spinlock held.</summary>
    public long AllocateTable(int cpu)
    {
        var pfn = _machine.Allocator.AllocatePage(cpu);
        if (pfn >= 0)
        {
            _machine.Memmap.SetFlags(pfn, PageFlags.PageTable);
            _machine.Counters.Add(cpu, Stat.PageTablesAllocated);
        }

        return pfn;
    }

    /// <summary>Frees a table no walker can reach any more. Enter with no spinlock held.</summary>
    public void FreeTable(int cpu, long pfn)
    {
        _machine.Memmap.ClearFlags(pfn, PageFlags.PageTable);
        var last = _machine.Memmap.PutPageTestZero(pfn);
        Debug.Assert(last, "a page table with extra references");
        _machine.Allocator.FreePage(cpu, pfn);
        _machine.Counters.Add(cpu, Stat.PageTablesFreed);
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

            var entry = new Pte(Atomic.Read(ref _machine.Memory.Word(table, Index(address, level))));
            if (!entry.IsPresent)
            {
                return -1;
            }

            table = entry.Pfn;
        }

        return table;
    }

    /// <summary>The PMD entry for <paramref name="address"/> in <paramref name="pmdTable"/>, read once (<c>pmdp_get_lockless</c>).</summary>
    public Pte ReadPmd(long pmdTable, ulong address) => new(Atomic.Read(ref _machine.Memory.Word(pmdTable, Index(address, 2))));

    /// <summary>
    /// <c>__pte_alloc</c> and friends: the PTE table covering <paramref name="address"/>, allocating missing levels;
    /// −1 when out of frames. Enter with the mm's mmap_lock held (read or write) and no spinlock; returns the same.
    /// </summary>
    public long PteAlloc(MmStruct mm, ulong address, int cpu)
    {
        var table = mm.Pgd;
        for (var level = 4; level > 1; level--)
        {
            ref var slot = ref _machine.Memory.Word(table, Index(address, level));
            var entry = new Pte(Atomic.Read(ref slot));
            if (!entry.IsPresent)
            {
                var fresh = AllocateTable(cpu);
                if (fresh < 0)
                {
                    return -1;
                }

                mm.PageTableLock.Enter();
                entry = new Pte(Atomic.Read(ref slot));
                if (!entry.IsPresent)
                {
                    // The zeroed table is published by this release store: a walker that sees the entry sees zeros.
                    entry = TableEntry(fresh);
                    Atomic.Write(ref slot, entry.Value);
                    fresh = -1;
                }

                mm.PageTableLock.Exit();
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
    /// <c>free_pgd_range</c>: frees the PTE tables, PMDs and PUDs meeting [<paramref name="start"/>, <paramref name="end"/>)
    /// whose whole span lies in [<paramref name="floor"/>, <paramref name="ceiling"/>), the gap no VMA covers, and
    /// which map nothing. Enter with the mmap_lock held (read is enough: a fault cannot populate a table in a gap,
    /// since it finds no VMA there, and upper entries change only under page_table_lock, taken here) and no
    /// spinlock; returns the same.
    /// </summary>
    public void FreeEmptyTables(MmStruct mm, ulong start, ulong end, ulong floor, ulong ceiling, int cpu)
    {
        // A per-thread scratch list: two munmaps of one mm may both be here (each under the read side).
        var detached = t_detached ??= [];
        detached.Clear();
        mm.PageTableLock.Enter();
        DetachEmpty(mm.Pgd, 4, 0, new Gap(start, end, floor, ceiling), detached);
        mm.PageTableLock.Exit();
        if (detached.Count == 0)
        {
            return;
        }

        // No walker can find the detached tables any more; one still on them is inside an access or an IRQ-disabled
        // section, which it leaves before the grace period ends.
        if (_machine.Options.GracePeriodBeforeTableFree)
        {
            _machine.WaitForLocklessWalkers();
        }
        foreach (var table in detached)
        {
            FreeTable(cpu, table);
        }
    }

    /// <summary>Frees every table of an exited mm, PGD included. Enter with the mm unreachable.</summary>
    public void FreeAll(MmStruct mm, int cpu)
    {
        // The per-thread scratch list again: exit allocates nothing per table.
        var tables = t_detached ??= [];
        tables.Clear();
        Collect(mm.Pgd, 4, tables);
        if (_machine.Options.GracePeriodBeforeTableFree)
        {
            _machine.WaitForLocklessWalkers();
        }
        foreach (var table in tables)
        {
            FreeTable(cpu, table);
        }

        tables.Clear();
    }

    /// <summary>Every table reachable from <paramref name="table"/> at <paramref name="level"/>, children first.</summary>
    public void Collect(long table, int level, List<long> into)
    {
        if (level > 1)
        {
            for (var i = 0; i < Entries; i++)
            {
                var entry = new Pte(Atomic.Read(ref _machine.Memory.Word(table, i)));
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
            ref var slot = ref _machine.Memory.Word(table, i);
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
        foreach (var word in _machine.Memory.Frame(table))
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
