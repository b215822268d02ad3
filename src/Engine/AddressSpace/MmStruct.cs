using Engine.Sync;

namespace Engine.AddressSpace;

/// <summary>
/// An address space (the kernel's <c>mm_struct</c>): the top-level page table, the VMAs, and the locks.
/// <list type="bullet">
/// <item><see cref="MmapLock"/> (<c>mmap_lock</c>): VMAs. Faults and madvise take it for read, mmap, munmap,
/// mprotect, fork and exit for write.</item>
/// <item><see cref="PageTableLock"/> (<c>page_table_lock</c>): populating upper-level entries.</item>
/// <item>The split PTLs, one per PTE table, live with the tables (<c>PageTableSet.Ptl</c>).</item>
/// </list>
/// </summary>
internal sealed class MmStruct(int id, long pgd)
{
    private ulong _cpuMask;
    private int _tlbFlushPending;
    private int _hasPinned;

    /// <summary>The mm's id; TLB entries are tagged with it (an ASID that is never reused).</summary>
    public int Id { get; } = id;

    /// <summary>The pfn of the top-level table.</summary>
    public long Pgd { get; } = pgd;

    public ReaderWriterSemaphore MmapLock { get; } = new();

    public Spinlock PageTableLock { get; } = new();

    /// <summary>Orders fork against GUP-fast (<c>write_protect_seq</c>).</summary>
    public SequenceCounter WriteProtectSeq { get; } = new();

    /// <summary>The VMAs, sorted by start, non-overlapping. Read under <see cref="MmapLock"/>, changed under it for write.</summary>
    public List<Vma> Vmas { get; } = [];

    /// <summary>CPUs that may cache this mm's translations (the kernel's <c>mm_cpumask</c>); bits are only ever added.</summary>
    public ulong CpuMask => Atomic.Read(ref _cpuMask);

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

    public void AddCpu(int cpu)
    {
        var bit = 1UL << cpu;
        if ((Atomic.Read(ref _cpuMask) & bit) == 0)
        {
            Atomic.Or(ref _cpuMask, bit);
        }
    }

    /// <summary><c>inc_tlb_flush_pending</c>.</summary>
    public void IncTlbFlushPending() => Atomic.Increment(ref _tlbFlushPending);

    /// <summary><c>dec_tlb_flush_pending</c>.</summary>
    public void DecTlbFlushPending() => Atomic.Decrement(ref _tlbFlushPending);

    /// <summary><c>find_vma</c> for one address. Enter with <see cref="MmapLock"/> held.</summary>
    public Vma? FindVma(ulong address)
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
