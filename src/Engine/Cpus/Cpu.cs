using System.Diagnostics;
using Engine.AddressSpace;
using Engine.Cpus;
using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;
using Engine.Sync;

namespace Engine;

/// <summary>
/// A simulated CPU: loads and stores go through its TLB and, on a miss, through a hardware page walk that sets the
/// accessed and dirty bits, faulting when the walk finds no usable entry. A <see cref="Cpu"/> is driven by one thread
/// at a time.
/// <para>
/// The access protocol. An access (TLB lookup, hardware walk, TLB fill, the load or store itself) is bracketed by
/// two increments of <see cref="AccessSequence"/>, odd inside: the shootdown initiator reads it to learn whether the
/// CPU may be using or filling a translation it is removing. Both increments are full barriers, so either a shootdown's
/// invalidation is visible to the lookup, or the initiator sees the access in progress and waits for it. A fault is
/// handled outside the bracket, so a CPU in a fault handler (or blocked, idle, finished) never holds a shootdown up.
/// </para>
/// </summary>
public sealed class Cpu
{
    private readonly Machine _machine;
    private readonly PaddedCounter _accessSequence = new();
    private readonly PaddedCounter _irqOffSequence = new();

    internal Cpu(Machine machine, int id)
    {
        _machine = machine;
        Id = id;
    }

    /// <summary>The CPU's number.</summary>
    public int Id { get; }

    internal Tlb Tlb { get; } = new();

    /// <summary>Odd while an access (a TLB lookup, walk, fill and the load or store) runs on this CPU.</summary>
    internal int AccessSequence => Atomic.Read(ref _accessSequence.Value);

    /// <summary>Odd while an IRQ-disabled section (<see cref="LocalIrqDisable"/>) runs on this CPU.</summary>
    internal int IrqOffSequence => Atomic.Read(ref _irqOffSequence.Value);

    /// <summary>Loads the 64-bit word at <paramref name="address"/> (8-byte aligned) of <paramref name="process"/>.</summary>
    public ulong Read(Process process, ulong address)
    {
        var mm = Enter(process, address);
        var vpn = address >> PhysicalMemory.PageShift;
        var word = WordIndex(address);
        while (true)
        {
            BeginAccess();
            if (!Tlb.Lookup(mm.Id, vpn, out var pfn, out _, out _))
            {
                _machine.Counters.Add(Id, Stat.TlbMisses);
                if (!WalkAndFill(mm, address, write: false, out pfn))
                {
                    EndAccess();
                    _machine.Faults.HandleMmFault(this, mm, address, write: false);
                    continue;
                }
            }

            var value = Atomic.Read(ref _machine.Memory.Word(pfn, word));
            _machine.CheckLiveFrame(Id, pfn, address);
            EndAccess();
            _machine.Counters.Add(Id, Stat.Reads);
            return value;
        }
    }

    /// <summary>Stores <paramref name="value"/> at <paramref name="address"/> (8-byte aligned) of <paramref name="process"/>.</summary>
    public void Write(Process process, ulong address, ulong value)
    {
        var mm = Enter(process, address);
        var vpn = address >> PhysicalMemory.PageShift;
        var word = WordIndex(address);
        while (true)
        {
            BeginAccess();

            // A writable and dirty entry stores without touching the page table; anything else walks, and the walk
            // sets the PTE's dirty bit (x86 does the same), so a clean PTE always means "not written since cleaned".
            if (!Tlb.Lookup(mm.Id, vpn, out var pfn, out var writable, out var dirty) || !writable || !dirty)
            {
                _machine.Counters.Add(Id, Stat.TlbMisses);
                if (!WalkAndFill(mm, address, write: true, out pfn))
                {
                    EndAccess();
                    _machine.Faults.HandleMmFault(this, mm, address, write: true);
                    continue;
                }
            }

            Atomic.Write(ref _machine.Memory.Word(pfn, word), value);
            _machine.CheckLiveFrame(Id, pfn, address);
            EndAccess();
            _machine.Counters.Add(Id, Stat.Writes);
            return;
        }
    }

    /// <summary>
    /// <c>pin_user_pages_fast</c> (FOLL_PIN): pins <paramref name="pages"/> pages of <paramref name="process"/> from
    /// <paramref name="address"/> (page aligned), faulting them in as needed (a write fault with
    /// <see cref="GupFlags.Write"/>; an unshare fault for a read-only pin of an anonymous page that may be shared).
    /// Tries the lockless fast path first unless <see cref="GupFlags.NoFast"/>; with <see cref="GupFlags.FastOnly"/>
    /// returns what the fast path could pin, maybe nothing. Throws <see cref="SegmentationFault"/> when a page is
    /// unmapped or does not allow the access, holding nothing then.
    /// </summary>
    public PinnedPages PinUserPages(Process process, ulong address, int pages, GupFlags flags)
    {
        var (pfns, count) = TakeUserPages(process, address, pages, flags, pin: true);
        return new PinnedPages(_machine, pfns, count, flags);
    }

    /// <summary>
    /// <see cref="PinUserPages(Process, ulong, int, GupFlags)"/> into the caller's array, allocating nothing (the
    /// kernel's <c>pin_user_pages_fast(start, nr_pages, gup_flags, pages)</c>): pins
    /// <paramref name="frames"/>.Length pages from <paramref name="address"/> and stores their frame numbers in
    /// <paramref name="frames"/>; returns how many were pinned (fewer only with <see cref="GupFlags.FastOnly"/>).
    /// The same faults, unshares and exceptions as the handle form. Unpin with <see cref="UnpinUserPages"/>.
    /// </summary>
    public int PinUserPages(Process process, ulong address, Span<long> frames, GupFlags flags)
    {
        var mm = CheckUserPages(process, address, frames.Length, flags);
        return _machine.Gup.Take(this, mm, address, frames.Length, flags, pin: true, frames);
    }

    /// <summary>
    /// <c>unpin_user_pages</c>, or with <paramref name="dirty"/> <c>unpin_user_pages_dirty_lock</c> (what a device
    /// wrote to a page-cache page is written back), for frames <see cref="PinUserPages(Process, ulong, Span{long}, GupFlags)"/>
    /// pinned. Throws <see cref="InvalidOperationException"/>, unpinning nothing, when a frame holds no pin (a second
    /// unpin of frames no one else has pinned; like the kernel, it cannot tell one holder's pin from another's).
    /// </summary>
    public void UnpinUserPages(ReadOnlySpan<long> frames, bool dirty)
    {
        _machine.Gup.CheckPinned(frames);
        if (dirty)
        {
            _machine.MarkPagesDirtyAfterGup(frames);
        }

        _machine.Gup.Release(frames, pin: true, Id);
    }

    /// <summary>
    /// <c>get_user_pages_fast</c> (FOLL_GET, as vmsplice uses it): a plain reference on each page, taken as
    /// <see cref="PinUserPages(Process, ulong, int, GupFlags)"/> takes a pin (but never unsharing: a reference does not promise coherency).
    /// </summary>
    public PageReferences GetUserPages(Process process, ulong address, int pages, GupFlags flags)
    {
        var (pfns, count) = TakeUserPages(process, address, pages, flags, pin: false);
        return new PageReferences(_machine, pfns, count, flags);
    }

    /// <summary>
    /// <c>ptrace(PTRACE_POKEDATA)</c>: stores <paramref name="value"/> at <paramref name="address"/> (8-byte aligned)
    /// of <paramref name="process"/> the way the kernel's <c>access_remote_vm</c> does: a reference taken with
    /// <see cref="GupFlags.Force"/> | <see cref="GupFlags.Write"/> (so a read-only private mapping, such as a program's
    /// text, gets a private copy), a store through the reference, the page marked dirty, the reference dropped.
    /// </summary>
    public void PokeData(Process process, ulong address, ulong value)
    {
        if ((address & 7) != 0)
        {
            throw new ArgumentException($"Address 0x{address:x} is not 8-byte aligned.", nameof(address));
        }

        // Under the mmap_lock from the lookup to the store, as __access_remote_vm: fork (which holds it for write)
        // sees the poke wholly before or wholly after it, never a page it has shared with the child meanwhile.
        var page = address & ~(ulong)(PhysicalMemory.PageSize - 1);
        var mm = CheckUserPages(process, page, 1, GupFlags.Force | GupFlags.Write);
        var pfns = new long[1];
        mm.MmapLock.EnterRead();
        try
        {
            _machine.Gup.Take(this, mm, page, 1, GupFlags.Force | GupFlags.Write, pin: false, pfns, mmapLocked: true);
            Atomic.Write(ref _machine.Memory.Word(pfns[0], (int)((address >> 3) & (PhysicalMemory.WordsPerFrame - 1))), value);
            _machine.MarkPagesDirtyAfterGup(pfns);
            _machine.Gup.Release(pfns, pin: false, Id);
        }
        finally
        {
            mm.MmapLock.ExitRead();
        }
    }

    private (long[] Pfns, int Count) TakeUserPages(Process process, ulong address, int pages, GupFlags flags, bool pin)
    {
        var mm = CheckUserPages(process, address, pages, flags);
        var pfns = new long[pages];
        var count = _machine.Gup.Take(this, mm, address, pages, flags, pin, pfns);
        return (pfns, count);
    }

    /// <summary>Validates a GUP request (throwing <see cref="ArgumentException"/>) and returns the live mm, switched to on this CPU.</summary>
    private MmStruct CheckUserPages(Process process, ulong address, int pages, GupFlags flags)
    {
        ArgumentNullException.ThrowIfNull(process);
        if ((flags & ~(GupFlags.Write | GupFlags.LongTerm | GupFlags.FastOnly | GupFlags.NoFast | GupFlags.Force)) != 0
            || (flags & (GupFlags.FastOnly | GupFlags.NoFast)) == (GupFlags.FastOnly | GupFlags.NoFast))
        {
            throw new ArgumentException($"GUP flags {flags}: unknown bits, or FastOnly with NoFast.", nameof(flags));
        }

        if ((address & (PhysicalMemory.PageSize - 1)) != 0)
        {
            throw new ArgumentException($"Address 0x{address:x} is not page aligned.", nameof(address));
        }

        if (pages <= 0 || address < Process.UserStart || address >= Process.UserEnd
            || (ulong)pages > (Process.UserEnd - address) >> PhysicalMemory.PageShift)
        {
            throw new ArgumentException($"[0x{address:x}, +{pages} page(s)) is empty or leaves the user address space.", nameof(pages));
        }

        var mm = process.LiveMm();
        _machine.SwitchMm(mm, this);
        return mm;
    }

    /// <summary>
    /// <c>local_irq_disable</c> for a lockless walker (GUP-fast): until <see cref="LocalIrqEnable"/> this CPU holds
    /// off the grace period before page tables are freed and, when shootdowns are IPIs (not
    /// <see cref="MachineOptions.BroadcastTlbInvalidate"/>), shootdown acknowledgements. Must not be nested in an
    /// access, and nothing may wait inside it for anything a shootdown initiator holds.
    /// </summary>
    internal void LocalIrqDisable()
    {
        var now = Atomic.Increment(ref _irqOffSequence.Value);
        Debug.Assert((now & 1) == 1, "nested IRQ-disabled section");
    }

    /// <summary>
    /// <c>local_irq_enable</c>: ends the section opened by <see cref="LocalIrqDisable"/>. Only this CPU's thread writes
    /// its sequence, so a release store closes it (the walker's reads cannot move after it); the opening needs the full
    /// barrier (announce, then read the tables), the closing does not.
    /// </summary>
    internal void LocalIrqEnable() => Atomic.Write(ref _irqOffSequence.Value, _irqOffSequence.Value + 1);

    /// <summary>Opens an access (or an IRQ-disabled section): the sequence turns odd, with a full barrier.</summary>
    internal void BeginAccess()
    {
        var now = Atomic.Increment(ref _accessSequence.Value);
        Debug.Assert((now & 1) == 1, "nested access");
    }

    /// <summary>
    /// Closes it: the sequence turns even, by a release store (as <see cref="LocalIrqEnable"/>: only this CPU's thread
    /// writes it, and the access's loads and stores cannot move after a release).
    /// </summary>
    internal void EndAccess() => Atomic.Write(ref _accessSequence.Value, _accessSequence.Value + 1);

    private static int WordIndex(ulong address) => (int)((address >> 3) & (PhysicalMemory.WordsPerFrame - 1));

    private MmStruct Enter(Process process, ulong address)
    {
        ArgumentNullException.ThrowIfNull(process);
        if ((address & 7) != 0)
        {
            throw new ArgumentException($"Address 0x{address:x} is not 8-byte aligned.", nameof(address));
        }

        var mm = process.LiveMm();
        _machine.SwitchMm(mm, this);
        return mm;
    }

    /// <summary>
    /// The hardware walker, inside an access: reads each level atomically, checks presence and permission, sets
    /// accessed (and for a store, dirty) with a 64-bit compare-and-swap, and fills the TLB. False when the access
    /// must fault.
    /// </summary>
    private bool WalkAndFill(MmStruct mm, ulong address, bool write, out long pfn)
    {
        pfn = -1;
        var tables = _machine.Tables;
        var table = tables.WalkToPteTable(mm.Pgd, address);
        if (table < 0)
        {
            return false;
        }

        var index = PageTableSet.Index(address, 1);
        while (true)
        {
            var pte = _machine.Ptes.HardwareRead(table, index);
            if (!pte.IsPresent || (write && !pte.IsWrite))
            {
                return false;
            }

            var updated = write ? pte.MkYoung().MkDirty() : pte.MkYoung();
            if (updated == pte || _machine.Ptes.HardwareCompareExchange(table, index, pte, updated))
            {
                pfn = updated.Pfn;
                Tlb.Fill(mm.Id, address >> PhysicalMemory.PageShift, pfn, updated.IsWrite, updated.IsDirty);
                return true;
            }
        }
    }
}
