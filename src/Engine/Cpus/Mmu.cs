using System.Runtime.CompilerServices;
using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;
using Engine.Stats;
using Engine.Sync;

namespace Engine.Cpus;

/// <summary>
/// The memory-management unit: one load or store inside the access bracket of <see cref="CpuContext"/> — a TLB
/// lookup, on a miss a hardware walk that sets the accessed and dirty bits and fills the TLB, then the load or store.
/// It never faults: when the walk finds no usable entry it closes the bracket and says so, and the caller (the
/// public <c>Cpu</c>, above the fault handler) handles the fault and retries.
/// </summary>
internal sealed class Mmu(PhysicalMemory memory, Memmap memmap, PageTableSet tables, PteAccess ptes, StatCounters counters, ViolationLog violations)
{
    /// <summary>
    /// Loads the word at <paramref name="address"/> (8-byte aligned) of the mm <paramref name="mm"/> into
    /// <paramref name="value"/>; false when the access must fault first. Enter outside any access and IRQ-disabled
    /// section, with <paramref name="cpu"/> switched to the mm.
    /// </summary>
    public bool TryRead(CpuContext cpu, MmContext mm, ulong address, out ulong value)
    {
        var vpn = address >> PhysicalMemory.PageShift;
        cpu.BeginAccess();
        var hit = cpu.Tlb.Lookup(mm.Id, vpn, out var pfn, out _, out _);
        if (!hit)
        {
            counters.Add(cpu.Id, Stat.TlbMisses);
            if (!WalkAndFill(cpu, mm, address, write: false, out pfn))
            {
                cpu.EndAccess();
                ProtocolEvents.Mark("mmu", "load 0x{1:x}: no usable pte, page fault", address: address);
                value = 0;
                return false;
            }
        }

        value = Atomic.Read(ref memory.Word(pfn, WordIndex(address)));
        ProtocolEvents.Mark("mmu", hit ? "load 0x{1:x} -> 0x{2:x} from pfn 0x{0:x} (TLB hit)" : "load 0x{1:x} -> 0x{2:x} from pfn 0x{0:x} (page walk, TLB filled)", pfn, address, (long)value);
        if (Checks.Enabled)
        {
            CheckLiveFrame(cpu.Id, pfn, address);
        }

        cpu.EndAccess();
        counters.Add(cpu.Id, Stat.Reads);
        return true;
    }

    /// <summary>Stores <paramref name="value"/> at <paramref name="address"/>; false when the access must fault first. Same contract as <see cref="TryRead"/>.</summary>
    public bool TryWrite(CpuContext cpu, MmContext mm, ulong address, ulong value)
    {
        var vpn = address >> PhysicalMemory.PageShift;
        cpu.BeginAccess();

        // A writable and dirty entry stores without touching the page table; anything else walks, and the walk sets
        // the PTE's dirty bit (x86 does the same), so a clean PTE always means "not written since cleaned".
        var hit = cpu.Tlb.Lookup(mm.Id, vpn, out var pfn, out var writable, out var dirty) && writable && dirty;
        if (!hit)
        {
            counters.Add(cpu.Id, Stat.TlbMisses);
            if (!WalkAndFill(cpu, mm, address, write: true, out pfn))
            {
                cpu.EndAccess();
                ProtocolEvents.Mark("mmu", "store 0x{1:x}: no writable pte, page fault", address: address);
                return false;
            }
        }

        Atomic.Write(ref memory.Word(pfn, WordIndex(address)), value);
        ProtocolEvents.Mark("mmu", hit ? "store 0x{1:x} = 0x{2:x} into pfn 0x{0:x} (TLB hit)" : "store 0x{1:x} = 0x{2:x} into pfn 0x{0:x} (page walk, TLB filled, pte dirty)", pfn, address, (long)value);
        if (Checks.Enabled)
        {
            CheckLiveFrame(cpu.Id, pfn, address);
        }

        cpu.EndAccess();
        counters.Add(cpu.Id, Stat.Writes);
        return true;
    }

    private static int WordIndex(ulong address) => (int)((address >> 3) & (PhysicalMemory.WordsPerFrame - 1));

    /// <summary>
    /// The hardware walker, inside an access: reads each level atomically, checks presence and permission, sets
    /// accessed (and for a store, dirty) with a 64-bit compare-and-swap, and fills the TLB. False when the access
    /// must fault.
    /// </summary>
    private bool WalkAndFill(CpuContext cpu, MmContext mm, ulong address, bool write, out long pfn)
    {
        pfn = -1;
        var table = tables.WalkToPteTable(mm.Pgd, address);
        if (table < 0)
        {
            return false;
        }

        var index = PageTableSet.Index(address, 1);
        while (true)
        {
            var pte = ptes.HardwareRead(table, index);
            if (!pte.IsPresent || (write && !pte.IsWrite))
            {
                return false;
            }

            var updated = write ? pte.MkYoung().MkDirty() : pte.MkYoung();
            if (updated == pte || ptes.HardwareCompareExchange(table, index, pte, updated))
            {
                pfn = updated.Pfn;
                cpu.Tlb.Fill(mm.Id, address >> PhysicalMemory.PageShift, pfn, updated.IsWrite, updated.IsDirty);
                return true;
            }
        }
    }

    /// <summary>
    /// Inside an access, with checks on: the frame reached through a translation must be live, and not a page table.
    /// A use-after-free is counted and recorded; the access itself has happened (as on hardware).
    /// </summary>
    private void CheckLiveFrame(int cpu, long pfn, ulong address)
    {
        if (memmap.PageCount(pfn) > 0 && !memmap.TestFlags(pfn, PageFlags.PageTable))
        {
            return;
        }

        ReportUseAfterFree(cpu, pfn, address);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReportUseAfterFree(int cpu, long pfn, ulong address)
    {
        var count = memmap.PageCount(pfn);
        if (count < 0 && !memmap.TestFlags(pfn, PageFlags.PageTable))
        {
            // Not a free frame: a live page whose count wrapped past its limit. Say so, not "use-after-free".
            violations.Record(InvariantViolation.Of(ViolationKind.RefcountOverflow,
                $"refcount overflow: CPU {cpu} accessed 0x{address:x}, pfn 0x{pfn:x}, whose _refcount has wrapped to {count}: references were taken past the counter's limit")
                with { Pfn = pfn, Address = address, Cpu = cpu, Actual = count });
            return;
        }

        counters.Add(cpu, Stat.UseAfterFree);
        violations.Record(InvariantViolation.Of(ViolationKind.UseAfterFree,
            $"use-after-free: CPU {cpu} accessed 0x{address:x} through a stale translation to pfn 0x{pfn:x}, {(memmap.PageCount(pfn) == 0 ? "a free frame" : "now a page table")}")
            with { Pfn = pfn, Address = address, Cpu = cpu });
    }
}
