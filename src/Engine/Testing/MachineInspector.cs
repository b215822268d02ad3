using Engine.Memory;
using Engine.PageTables;
using Engine.Sync;

namespace Engine.Testing;

/// <summary>
/// A test surface: reads of a machine's page tables that a test or a bug-zoo scenario needs and the public façade
/// (<see cref="Machine"/>, <see cref="Process"/>, <see cref="Cpu"/>) does not offer, because no program has them:
/// which entry maps an address, which frame it maps, and a lockless read of it as GUP-fast makes. Obtained with
/// <see cref="MachineInspection.Inspect"/>. Deliberately small: it reads and never writes, and it adds nothing to the
/// engine's protocols.
/// <para>
/// Every read goes through <c>Engine.Sync</c> exactly as the engine's own code does (the walk's three upper-level
/// reads, then the entry), so each is a scheduling point under a systematic scheduler, and a scenario that uses the
/// inspector explores the same schedules as one that made the same reads inside the engine. Argument checks are plain
/// reads and are not scheduling points. Inside <c>SchedulingHook.EnterQuiescent</c> none of it is.
/// </para>
/// <para>
/// Contract: a <see cref="Process"/> passed in must belong to this machine and not have exited (its top-level table is
/// freed at exit); an address must be page aligned and in user space (<see cref="Process.UserStart"/> to
/// <see cref="Process.UserEnd"/>). <see cref="EntryAt"/>, <see cref="LocateEntry"/>, <see cref="ReadEntry"/> and
/// <see cref="PfnAt"/> are <c>ptep_get</c>-style reads, exact at quiescence; called while other threads change the
/// tables they return one value the entry held (a whole 64-bit read), but the walk to it is not protected by a lock
/// or a grace period, so do that only while nothing can free the tables (no munmap or exit of the range in flight).
/// <see cref="ReadEntryLockless"/> is the one read meant to race: it brackets itself as GUP-fast does.
/// </para>
/// </summary>
public sealed class MachineInspector
{
    private readonly Machine _machine;

    internal MachineInspector(Machine machine) => _machine = machine;

    /// <summary>The machine inspected.</summary>
    public Machine Machine => _machine;

    /// <summary>
    /// A test surface: the entry that maps page <paramref name="address"/> of <paramref name="process"/>, read as
    /// software holding the PTL reads it (the kernel's page walk, then <c>ptep_get</c>);
    /// <see cref="PageTableEntry.None"/> when no PTE table covers the address yet. Exact at quiescence; see the
    /// class's contract for other times.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="process"/> is null.</exception>
    /// <exception cref="ArgumentException">The process belongs to another machine, or the address is not page aligned or not in user space.</exception>
    /// <exception cref="ObjectDisposedException">The process has exited.</exception>
    public PageTableEntry EntryAt(Process process, ulong address)
    {
        var pgd = CheckedPgd(process, address);
        var table = _machine.Tables.WalkToPteTable(pgd, address);
        return table < 0 ? PageTableEntry.None : new PageTableEntry(_machine.Ptes.PtepGet(table, PageTableSet.Index(address, 1)));
    }

    /// <summary>
    /// A test surface: walks to the PTE table covering page <paramref name="address"/> of <paramref name="process"/>
    /// (the kernel's <c>pte_offset_map</c>) and returns where the entry lives, so that <see cref="ReadEntry"/> can read
    /// it now and again later without walking again. Reads the three upper levels, not the entry.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="process"/> is null.</exception>
    /// <exception cref="ArgumentException">The process belongs to another machine, or the address is not page aligned or not in user space.</exception>
    /// <exception cref="ObjectDisposedException">The process has exited.</exception>
    /// <exception cref="InvalidOperationException">No PTE table covers the address (nothing was ever mapped near it, or munmap freed the table).</exception>
    public PteSlot LocateEntry(Process process, ulong address)
    {
        var pgd = CheckedPgd(process, address);
        var table = _machine.Tables.WalkToPteTable(pgd, address);
        return table < 0
            ? throw new InvalidOperationException($"No PTE table covers 0x{address:x} in process {process.Pid}.")
            : new PteSlot(_machine, table, PageTableSet.Index(address, 1));
    }

    /// <summary>
    /// A test surface: <c>ptep_get</c> of the entry at <paramref name="slot"/>, one 64-bit read. The slot must still
    /// be a PTE table of this machine (see <see cref="PteSlot"/>).
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="slot"/> is <c>default</c> or was located on another machine.</exception>
    public PageTableEntry ReadEntry(PteSlot slot)
    {
        if (slot.Machine is null)
        {
            throw new ArgumentException("The PTE slot is default: locate one with LocateEntry.", nameof(slot));
        }

        if (slot.Machine != _machine)
        {
            throw new ArgumentException($"{slot} was located on another machine.", nameof(slot));
        }

        return new PageTableEntry(_machine.Ptes.PtepGet(slot.Table, slot.Index));
    }

    /// <summary>
    /// A test surface: the frame page <paramref name="address"/> of <paramref name="process"/> maps (an entry that
    /// maps a page: present, or PROT_NONE), or −1 when it maps none or maps the shared zero page (a special entry,
    /// <c>vm_normal_page</c> returning NULL). The same walk and read as <see cref="EntryAt"/>, with its contract.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="process"/> is null.</exception>
    /// <exception cref="ArgumentException">The process belongs to another machine, or the address is not page aligned or not in user space.</exception>
    /// <exception cref="ObjectDisposedException">The process has exited.</exception>
    public long PfnAt(Process process, ulong address)
    {
        var pgd = CheckedPgd(process, address);
        var table = _machine.Tables.WalkToPteTable(pgd, address);
        if (table < 0)
        {
            return -1;
        }

        var pte = _machine.Ptes.PtepGet(table, PageTableSet.Index(address, 1));
        return pte.MapsPage && !pte.IsSpecial ? pte.Pfn : -1;
    }

    /// <summary>
    /// A test surface: the folio the entry for page <paramref name="address"/> of <paramref name="process"/> maps, as its
    /// counts stand (<see cref="FolioView"/>), or null when the entry maps no page (none, swapped out, the zero page).
    /// An order-0 page is a folio of one page. Reads as <see cref="PfnAt"/> does, with its contract; each count is read
    /// once, so the view is exact only at quiescence.
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="process"/> is null.</exception>
    /// <exception cref="ArgumentException">The process belongs to another machine, or the address is not page aligned or not in user space.</exception>
    /// <exception cref="ObjectDisposedException">The process has exited.</exception>
    public FolioView? FolioAt(Process process, ulong address)
    {
        var pfn = PfnAt(process, address);
        if (pfn < 0)
        {
            return null;
        }

        var memmap = _machine.Memmap;
        var head = memmap.Head(pfn);
        var large = memmap.IsLarge(pfn);
        return new FolioView(
            head,
            (int)(pfn - head),
            large ? memmap.FolioPages : 1,
            memmap.CountsMappings ? memmap.FolioMapCount(pfn) : -1,
            memmap.PageCount(pfn),
            large ? memmap.FolioPinCount(pfn) : 0,
            memmap.MaybeMappedShared(pfn),
            (memmap.GetFlags(pfn) & PageFlags.AnonExclusive) != 0);
    }

    /// <summary>
    /// A test surface: the read GUP-fast makes of the entry for page <paramref name="address"/> of
    /// <paramref name="process"/>, on <paramref name="cpu"/>: interrupts off (<c>local_irq_disable</c>, which holds
    /// off the grace period before page tables are freed and, with IPI shootdowns, every flush), a lockless walk of
    /// the upper levels, <c>ptep_get_lockless</c> of the entry (on <see cref="PteLayout.SplitPae"/> low, high, low
    /// again, retrying while the low half changed, unless <see cref="MachineOptions.LocklessPteRetry"/> is off), and
    /// interrupts on. <see cref="PageTableEntry.None"/> when the walk found no PTE table. Unlike GUP it takes no
    /// reference and checks nothing: it returns what the read saw, torn or not, so a test can judge it.
    /// <para>
    /// Meant to race with the machine's other threads. Call it from the one thread driving <paramref name="cpu"/> (a
    /// controlled thread under the systematic tester), never from inside another IRQ-disabled section. Its <c>Engine.Sync</c> operations are exactly GUP-fast's walk: one increment of
    /// the CPU's IRQ-off sequence, three upper-level reads, the entry's reads, one store closing the sequence.
    /// </para>
    /// </summary>
    /// <exception cref="ArgumentNullException"><paramref name="cpu"/> or <paramref name="process"/> is null.</exception>
    /// <exception cref="ArgumentException">The CPU or the process belongs to another machine, or the address is not page aligned or not in user space.</exception>
    /// <exception cref="ObjectDisposedException">The process has exited.</exception>
    /// <exception cref="InvalidOperationException">The CPU is already in an IRQ-disabled section.</exception>
    public PageTableEntry ReadEntryLockless(Cpu cpu, Process process, ulong address)
    {
        ArgumentNullException.ThrowIfNull(cpu);
        var cpus = _machine.Cpus;
        if (cpu.Id >= cpus.Count || !ReferenceEquals(cpus[cpu.Id], cpu))
        {
            throw new ArgumentException($"CPU {cpu.Id} belongs to another machine.", nameof(cpu));
        }

        var pgd = CheckedPgd(process, address);
        if (cpu.Context.IrqsDisabled)
        {
            throw new InvalidOperationException($"CPU {cpu.Id} is already in an IRQ-disabled section: they do not nest.");
        }

        cpu.LocalIrqDisable();
        try
        {
            var table = _machine.Tables.WalkToPteTable(pgd, address);
            var entry = table < 0 ? PageTableEntry.None : new PageTableEntry(_machine.Ptes.PtepGetLockless(table, PageTableSet.Index(address, 1)));
            ProtocolEvents.Mark(
                "ptep_get_lockless",
                entry.IsNone ? "read pte at 0x{1:x}: none" : "read pte at 0x{1:x}: pfn 0x{0:x} (high half 0x{2:x8}, low half 0x{3:x8})",
                entry.IsNone ? -1 : entry.Pfn,
                address,
                entry.High,
                entry.Low);
            return entry;
        }
        finally
        {
            cpu.LocalIrqEnable();
        }
    }

    /// <summary>Checks a process and an address (plain reads: no scheduling point) and returns the process's top-level table.</summary>
    private long CheckedPgd(Process process, ulong address)
    {
        ArgumentNullException.ThrowIfNull(process);
        if (process.Machine != _machine)
        {
            throw new ArgumentException($"Process {process.Pid} belongs to another machine.", nameof(process));
        }

        if ((address & (PhysicalMemory.PageSize - 1)) != 0)
        {
            throw new ArgumentException($"Address 0x{address:x} is not page aligned.", nameof(address));
        }

        if (address < Process.UserStart || address >= Process.UserEnd)
        {
            throw new ArgumentException($"Address 0x{address:x} is not in user space [0x{Process.UserStart:x}, 0x{Process.UserEnd:x}).", nameof(address));
        }

        bool exited;
        using (SchedulingHook.EnterQuiescent())
        {
            exited = process.HasExited;
        }

        ObjectDisposedException.ThrowIf(exited, process);
        return process.Mm.Pgd;
    }
}
