using Engine.Cpus;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Mm;

/// <summary>
/// An address space (the kernel's <c>mm_struct</c>): the VMAs, the locks, and the CPUs' view of it
/// (<see cref="Context"/>: ASID, top-level table, cpumask).
/// <list type="bullet">
/// <item><see cref="MmapLock"/> (<c>mmap_lock</c>): VMAs. Faults and madvise take it for read, mmap, munmap,
/// mprotect, fork and exit for write.</item>
/// <item><see cref="PageTableLock"/> (<c>page_table_lock</c>): populating upper-level entries.</item>
/// <item>The split PTLs, one per PTE table, live with the tables (<c>PageTableSet.Ptl</c>).</item>
/// </list>
/// </summary>
internal sealed class MmStruct(int id, long pgd)
{
    private int _tlbFlushPending;
    private int _hasPinned;

    /// <summary>What the CPUs know of this mm: its ASID, its top-level table and its cpumask.</summary>
    public MmContext Context { get; } = new(id, pgd);

    /// <summary>The mm's id (its ASID, never reused; also the process id).</summary>
    public int Id => Context.Id;

    /// <summary>The pfn of the top-level table.</summary>
    public long Pgd => Context.Pgd;

    public ReaderWriterSemaphore MmapLock { get; } = new();

    public Spinlock PageTableLock { get; } = new();

    /// <summary>Orders fork against GUP-fast (<c>write_protect_seq</c>).</summary>
    public SequenceCounter WriteProtectSeq { get; } = new();

    /// <summary>The VMAs, sorted by start, non-overlapping. Read under <see cref="MmapLock"/>, changed under it for write.</summary>
    public List<Vma> Vmas { get; } = [];

    /// <summary>Zaps in progress (<c>tlb_flush_pending</c>); above one, a zap must flush even what it did not clear itself.</summary>
    public int TlbFlushPending => Atomic.Read(ref _tlbFlushPending);

    /// <summary><c>MMF_HAS_PINNED</c>: some page of this mm has been pinned (set by the first pin, never cleared).</summary>
    public bool HasPinned => Atomic.Read(ref _hasPinned) != 0;

    /// <summary>Sets <see cref="HasPinned"/> (once; later pins only read it).</summary>
    public void SetHasPinned()
    {
        if (Atomic.Read(ref _hasPinned) == 0)
        {
            Atomic.Write(ref _hasPinned, 1);
        }
    }

    /// <summary><c>inc_tlb_flush_pending</c>.</summary>
    public void IncTlbFlushPending() => Atomic.Increment(ref _tlbFlushPending);

    /// <summary><c>dec_tlb_flush_pending</c>.</summary>
    public void DecTlbFlushPending() => Atomic.Decrement(ref _tlbFlushPending);

    /// <summary><c>find_vma</c> for one address. Enter with <see cref="MmapLock"/> held.</summary>
    public Vma? FindVma(ulong address)
    {
        if (Checks.Enabled)
        {
            Contract.Held(MmapLock, "the mmap_lock");
        }

        return FindVmaAtQuiescence(address);
    }

    /// <summary><c>find_vma</c> without the lock, for the invariant checker, which runs when no thread changes the VMAs.</summary>
    public Vma? FindVmaAtQuiescence(ulong address)
    {
        int low = 0, high = Vmas.Count - 1;
        while (low <= high)
        {
            var mid = (low + high) >>> 1;
            var vma = Vmas[mid];
            if (address < vma.Start)
            {
                high = mid - 1;
            }
            else if (address >= vma.End)
            {
                low = mid + 1;
            }
            else
            {
                return vma;
            }
        }

        return null;
    }
}
