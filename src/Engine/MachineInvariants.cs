using Engine.Cpus;
using Engine.Files;
using Engine.Gup;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Policy;
using Engine.Rmap;
using Engine.Swap;
using Engine.Sync;

namespace Engine;

/// <summary>
/// The machine's invariants at quiescence (section 1 of the protocol reference and issue 3). Each subsystem checks its
/// own, from what its layer can see: <see cref="PageTableInvariants"/> (table frames, garbage and special entries),
/// <see cref="MemoryInvariants"/> (mapcount and refcount against their holders, leaks, free lists, writable shared
/// pages), <see cref="TlbInvariants"/>, <see cref="MmInvariants"/> (VMAs, anon_vma chains, file mappings and their
/// <c>i_mmap</c>), <see cref="PageCacheInvariants"/> (slots, tags, descriptors, clean page equals backing store),
/// <see cref="RmapInvariants"/> (anonymous pages where their rmap places them, rmap walks finding every entry),
/// <see cref="PinInvariants"/> and <see cref="GenerationInvariants"/> (what holds only in some kernel generations).
/// <para>
/// This class orchestrates them: it takes the census (walks every live mm's tables, counting the entries that map each
/// pfn and noting the writable ones, the page-cache pfns, the table frames, the translations a TLB may hold) and hands
/// each checker its part, in the order the violations have always been reported.
/// </para>
/// </summary>
internal sealed class MachineInvariants(
    Memmap memmap,
    FileTable files,
    PageTableInvariants pageTables,
    MemoryInvariants memory,
    GenerationInvariants generation,
    TlbInvariants tlbs,
    PageCacheInvariants pageCache,
    MmInvariants mms,
    RmapInvariants rmap,
    PinInvariants pins,
    SwapInvariants swap)
{
    /// <summary>The checkers of <paramref name="machine"/>'s subsystems, each given what its layer can see.</summary>
    public static MachineInvariants For(Machine machine, CpuContext[] cpus) => new(
        machine.Memmap,
        machine.Files,
        new PageTableInvariants(machine.Memory, machine.Memmap, machine.ZeroPfn),
        new MemoryInvariants(machine.Memmap, machine.Allocator),
        new GenerationInvariants(machine.Generation, machine.Memmap),
        new TlbInvariants(cpus, machine.Memmap),
        new PageCacheInvariants(machine.Memmap, machine.Memory),
        new MmInvariants(machine.Memmap, machine.Files),
        new RmapInvariants(machine.Memmap, machine.Rmap, machine.Tables, machine.Ptes),
        new PinInvariants(machine.Memmap),
        new SwapInvariants(machine.SwapDevice, machine.SwapCache, machine.Memmap, machine.Memory, machine.Generation.TracksAnonExclusive));

    /// <summary>Every violation found; the checker's reads are not scheduling points (it runs at quiescence).</summary>
    public List<InvariantViolation> Check(IReadOnlyList<Process> processes)
    {
        using (SchedulingHook.EnterQuiescent())
        {
            return CheckQuiescent(processes);
        }
    }

    private List<InvariantViolation> CheckQuiescent(IReadOnlyList<Process> processes)
    {
        var violations = new List<InvariantViolation>();
        var live = processes.Where(p => !p.HasExited).Select(p => p.Mm).ToList();
        var mappings = new Dictionary<long, int>();
        var writers = new Dictionary<long, List<(int Pid, ulong Address)>>();
        var tables = new HashSet<long>();
        var translations = new Dictionary<(int Mm, ulong Vpn), Pte>();
        var folioMms = new Dictionary<long, Dictionary<int, int>>();

        var swapEntries = new Dictionary<long, int>();
        var exclusiveSwapEntries = new Dictionary<long, int>();

        mms.CheckFileRmaps(live, violations);
        foreach (var mm in live)
        {
            MmInvariants.CheckVmas(mm, violations);
            pageTables.Walk(mm.Id, mm.Pgd, (address, pte) =>
            {
                translations[(mm.Id, address >> PhysicalMemory.PageShift)] = pte;
                var vma = MmInvariants.CheckEntryInVma(mm, address, pte, violations);
                if (pte.IsSpecial)
                {
                    pageTables.CheckSpecialEntry(mm.Id, address, pte, violations);
                    return;
                }

                if (!memory.CheckMappedFrame(mm.Id, address, pte.Pfn, violations))
                {
                    return;
                }

                mappings[pte.Pfn] = mappings.GetValueOrDefault(pte.Pfn) + 1;
                if (memmap.IsLarge(pte.Pfn))
                {
                    var head = memmap.Head(pte.Pfn);
                    if (!folioMms.TryGetValue(head, out var perMm))
                    {
                        folioMms[head] = perMm = [];
                    }

                    perMm[mm.Id] = perMm.GetValueOrDefault(mm.Id) + 1;
                }

                if (pte.IsWrite)
                {
                    if (!writers.TryGetValue(pte.Pfn, out var entries))
                    {
                        writers[pte.Pfn] = entries = [];
                    }

                    entries.Add((mm.Id, address));
                }

                generation.CheckWritableEntry(mm.Id, address, pte.Pfn, pte.IsWrite, violations);
                if (vma is not null && memmap.TestFlags(pte.Pfn, PageFlags.Anon))
                {
                    rmap.CheckAnonEntry(vma, address, pte.Pfn, violations);
                }

                mms.CheckFileEntry(mm, vma, address, pte, violations);
            }, (address, pte) =>
            {
                // A swap entry: counted for its slot (type 0, the machine's one device; another type names no slot).
                var slot = pte.SwapType == 0 ? pte.SwapOffset : -1 - pte.SwapType;
                swapEntries[slot] = swapEntries.GetValueOrDefault(slot) + 1;
                if (pte.IsSwapExclusive)
                {
                    exclusiveSwapEntries[slot] = exclusiveSwapEntries.GetValueOrDefault(slot) + 1;
                }
            }, tables, violations);
        }

        MmInvariants.CheckAnonVmaChains(live, violations);

        // The caches against the census (not the pages' mapcounts, which seed 002's proposals do not keep).
        var cached = new HashSet<long>();
        foreach (var file in files.All)
        {
            pageCache.Check(file.Cache, file.ToString(), cached, mappings, violations);
        }

        swap.Check(swapEntries, exclusiveSwapEntries, live.Count > 0, cached, mappings, violations);
        foreach (var (pfn, count) in mappings)
        {
            rmap.CheckWalk(pfn, count, violations);
            if (!memmap.IsLarge(pfn))
            {
                memory.CheckMappedPage(pfn, count, cached, writers.GetValueOrDefault(pfn), violations);
            }
        }

        // Large folios as wholes: every head, mapped or not (one held only by GUP, or leaked, is checked too).
        if (memmap.FolioOrder != 0)
        {
            for (var pfn = memmap.BasePfn; pfn < memmap.BasePfn + memmap.Frames; pfn++)
            {
                if ((memmap.GetFlags(pfn) & PageFlags.Head) != 0)
                {
                    memory.CheckFolio(pfn, mappings, folioMms.GetValueOrDefault(pfn) ?? new Dictionary<int, int>(), writers, violations);
                }
                else if ((memmap.GetFlags(pfn) & PageFlags.Tail) != 0 && (memmap.GetFlags(memmap.Head(pfn)) & PageFlags.Head) == 0)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.FolioCorrupt, $"tail pfn 0x{pfn:x} belongs to no folio: 0x{memmap.Head(pfn):x} is not a head") with { Pfn = pfn });
                }
            }
        }

        var free = memory.CheckFreeLists(violations);
        for (var pfn = memmap.BasePfn; pfn < memmap.BasePfn + memmap.Frames; pfn++)
        {
            if (memory.IsReserved(pfn))
            {
                continue;
            }

            if (memory.CheckFrame(pfn, free, mappings, cached, violations))
            {
                PageTableInvariants.CheckTableFrame(pfn, tables, violations);
            }

            pins.CheckPinnedFrame(pfn, violations);
            generation.CheckPinnedFrame(pfn, violations);
        }

        tlbs.Check(live.Select(mm => mm.Id).ToHashSet(), translations, violations);
        return violations;
    }
}
