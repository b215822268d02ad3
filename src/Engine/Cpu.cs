using Engine.Cpus;
using Engine.Memory;
using Engine.Mm;
using Engine.Sync;

namespace Engine;

/// <summary>
/// A simulated CPU: loads and stores go through its TLB and, on a miss, through a hardware page walk that sets the
/// accessed and dirty bits (<c>Engine.Cpus.Mmu</c>, inside the access bracket a shootdown waits on), faulting when
/// the walk finds no usable entry; GUP and ptrace's pokes run here too. This is the top of the CPU: it calls the
/// fault handler and GUP, which sit above the TLB, the walker and the shootdown of <c>Engine.Cpus</c>. A
/// <see cref="Cpu"/> is driven by one thread at a time.
/// </summary>
public sealed class Cpu
{
    private readonly Machine _machine;

    internal Cpu(Machine machine, CpuContext context)
    {
        _machine = machine;
        Context = context;
    }

    /// <summary>The CPU's number.</summary>
    public int Id => Context.Id;

    /// <summary>The CPU's state below the entry points: TLB, access and IRQ-off sequences.</summary>
    internal CpuContext Context { get; }

    internal Tlb Tlb => Context.Tlb;

    /// <summary>Loads the 64-bit word at <paramref name="address"/> (8-byte aligned) of <paramref name="process"/>.</summary>
    public ulong Read(Process process, ulong address)
    {
        var mm = Enter(process, address, write: false);
        ulong value;
        while (!_machine.Mmu.TryRead(Context, mm.Context, address, out value))
        {
            _machine.Faults.HandleMmFault(Context, mm, address, write: false);
        }

        return value;
    }

    /// <summary>Stores <paramref name="value"/> at <paramref name="address"/> (8-byte aligned) of <paramref name="process"/>.</summary>
    public void Write(Process process, ulong address, ulong value)
    {
        var mm = Enter(process, address, write: true);
        while (!_machine.Mmu.TryWrite(Context, mm.Context, address, value))
        {
            _machine.Faults.HandleMmFault(Context, mm, address, write: true);
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
        return _machine.Gup.Take(Context, mm, address, frames.Length, flags, pin: true, frames);
    }

    /// <summary>
    /// <c>unpin_user_pages</c>, or with <paramref name="dirty"/> <c>unpin_user_pages_dirty_lock</c> (what a device
    /// wrote to a page-cache page is written back), for frames <see cref="PinUserPages(Process, ulong, Span{long}, GupFlags)"/>
    /// pinned. Throws <see cref="InvalidOperationException"/>, unpinning nothing, when a frame holds no pin (a second
    /// unpin of frames no one else has pinned; like the kernel, it cannot tell one holder's pin from another's).
    /// </summary>
    public void UnpinUserPages(ReadOnlySpan<long> frames, bool dirty)
    {
        _machine.Gup.Unpin(frames, dirty, Id);
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
            _machine.Gup.Take(Context, mm, page, 1, GupFlags.Force | GupFlags.Write, pin: false, pfns, mmapLocked: true);
            Atomic.Write(ref _machine.Memory.Word(pfns[0], (int)((address >> 3) & (PhysicalMemory.WordsPerFrame - 1))), value);
            ProtocolEvents.Mark("access_remote_vm", "store 0x{2:x} at 0x{1:x} through the reference to pfn 0x{0:x}", pfns[0], address, (long)value);
            _machine.Gup.MarkPagesDirty(pfns);
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
        var count = _machine.Gup.Take(Context, mm, address, pages, flags, pin, pfns);
        return (pfns, count);
    }

    /// <summary>Validates a GUP request (throwing <see cref="ArgumentException"/>) and returns the live mm, switched to on this CPU.</summary>
    private MmStruct CheckUserPages(Process process, ulong address, int pages, GupFlags flags)
    {
        CheckOwnProcess(process);
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

        // Checked before the frame array is allocated: no request can hold more distinct pages than the machine has
        // frames, so a larger one is refused rather than exhausting the managed heap.
        if (pages > _machine.Options.Frames)
        {
            throw new ArgumentException($"{pages:N0} pages is more than this machine's {_machine.Options.Frames:N0} frames.", nameof(pages));
        }

        var mm = process.LiveMm();
        Shootdown.SwitchMm(mm.Context, Context);
        return mm;
    }

    /// <summary><c>local_irq_disable</c> (see <see cref="CpuContext.LocalIrqDisable"/>).</summary>
    internal void LocalIrqDisable() => Context.LocalIrqDisable();

    /// <summary><c>local_irq_enable</c> (see <see cref="CpuContext.LocalIrqEnable"/>).</summary>
    internal void LocalIrqEnable() => Context.LocalIrqEnable();

    private MmStruct Enter(Process process, ulong address, bool write)
    {
        CheckOwnProcess(process);
        if ((address & 7) != 0)
        {
            throw new ArgumentException($"Address 0x{address:x} is not 8-byte aligned.", nameof(address));
        }

        // The walker uses bits 47–12 only: an address outside the user half would alias a user page. On x86-64 a
        // non-canonical or kernel-half address never reaches the page tables for a user access; it faults.
        if (address >= Process.UserEnd)
        {
            throw new SegmentationFault(address, SegmentationFaultReason.NotUserAddress, write);
        }

        var mm = process.LiveMm();
        Shootdown.SwitchMm(mm.Context, Context);
        return mm;
    }

    /// <summary>Throws unless <paramref name="process"/> is a process of this CPU's machine.</summary>
    private void CheckOwnProcess(Process process)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (process.Machine != _machine)
        {
            throw new ArgumentException($"Process {process.Pid} belongs to another machine than CPU {Id}.", nameof(process));
        }
    }
}
