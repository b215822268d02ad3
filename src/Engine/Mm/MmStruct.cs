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
    private int _tlbBatchPending;
    private int _tlbBatchFlushed;
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

    /// <summary>
    /// <c>mm->tlb_flush_batched</c>, set: reclaim cleared an entry of this mm and deferred its TLB flush to the end of
    /// its batch (<c>set_tlb_ubc_flush_pending</c>), so a CPU may still hold a translation the page tables no longer
    /// have. Enter with the entry's PTL held.
    /// </summary>
    public void SetTlbBatchPending() => Atomic.Increment(ref _tlbBatchPending);

    /// <summary>
    /// <c>flush_tlb_batched_pending</c>'s test: the batch count to flush up to, or −1 when every deferred flush was
    /// already done by such a flush.
    /// </summary>
    public int TlbBatchToFlush()
    {
        // Plain reads, not scheduling points: the caller holds the PTL under which reclaim set the count, which orders
        // the two; and an mm that reclaim never touched explores the schedules it always did.
        var pending = Volatile.Read(ref _tlbBatchPending);
        return pending == Volatile.Read(ref _tlbBatchFlushed) ? -1 : pending;
    }

    /// <summary>
    /// <c>flush_tlb_batched_pending</c>: if reclaim deferred a TLB flush for this mm that no one has done since, flush
    /// the whole mm now. Enter with a PTL of this mm held (the one reclaim may have cleared an entry under).
    /// </summary>
    public void FlushTlbBatchedPending(Shootdown shootdown, int cpu)
    {
        var pending = TlbBatchToFlush();
        if (pending < 0)
        {
            return;
        }

        ProtocolEvents.Mark("flush_tlb_batched_pending", "mm {2}: reclaim deferred a TLB flush: flush the whole mm", value: Id);
        shootdown.FlushTlbRange(Context, UserSpace.Start, UserSpace.End, cpu);
        TlbBatchFlushed(pending);
    }

    /// <summary>Records that the deferred flushes up to <paramref name="pending"/> were done (never moves backwards).</summary>
    public void TlbBatchFlushed(int pending)
    {
        while (true)
        {
            var flushed = Atomic.Read(ref _tlbBatchFlushed);
            if (flushed - pending >= 0 || Atomic.CompareExchange(ref _tlbBatchFlushed, pending, flushed) == flushed)
            {
                return;
            }
        }
    }

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
