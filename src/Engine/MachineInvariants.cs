using System.Globalization;
using Engine.Cpus;
using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Rmap;
using Engine.Sync;

namespace Engine;

/// <summary>
/// The machine's invariants, checked at quiescence (section 1 of the protocol reference and issue 3):
/// <list type="bullet">
/// <item>every table reachable from a live mm is a page-table frame with one reference;</item>
/// <item>every entry that maps a page maps a live, non-table frame inside a VMA; its mapcount equals the number of
/// entries mapping it, and its refcount equals that number too (no other holder exists at quiescence yet);</item>
/// <item>a writable anon entry maps an AnonExclusive page (AnonExclusive generation only), and no writable entry maps a
/// page mapped more than once;</item>
/// <item>every other allocated data frame is a leak; every frame with refcount 0 is on a free list, unmapped and clean;</item>
/// <item>every TLB entry belongs to a live mm and agrees with its entry (same pfn, not writable where the entry is not);</item>
/// <item>VMAs are sorted, page aligned and disjoint;</item>
/// <item>anon rmap: every entry mapping an anonymous page is where the page's anon_vma and index place it, every
/// VMA is linked into its anon_vma family consistently, and an rmap walk of each anonymous page finds exactly its
/// mapcount entries.</item>
/// </list>
/// </summary>
internal sealed class MachineInvariants(Machine machine, RmapWalk rmapWalk, CpuContext[] cpus)
{
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
        var memmap = machine.Memmap;
        var mappings = new Dictionary<long, int>();
        var tables = new HashSet<long>();
        var translations = new Dictionary<(int Mm, ulong Vpn), Pte>();
        var cached = CheckPageCache(violations);
        CheckFileRmaps(processes, violations);

        foreach (var process in processes)
        {
            if (process.HasExited)
            {
                continue;
            }

            var mm = process.Mm;
            CheckVmas(mm, violations);
            Walk(mm.Pgd, 4, 0, (address, pte) =>
            {
                translations[(mm.Id, address >> PhysicalMemory.PageShift)] = pte;
                var vma = mm.FindVma(address);
                if (vma is null)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.EntryOutsideVma, $"pid {mm.Id}: entry at 0x{address:x} ({pte}) lies outside every VMA"));
                }

                if (pte.IsSpecial)
                {
                    if (pte.Pfn != machine.ZeroPfn || pte.IsWrite)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.BadSpecialEntry, $"pid {mm.Id}: special entry at 0x{address:x} ({pte}) is not the read-only zero page"));
                    }

                    return;
                }

                if (!memmap.Contains(pte.Pfn))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.EntryMapsBadFrame, $"pid {mm.Id}: entry at 0x{address:x} maps pfn 0x{pte.Pfn:x} outside physical memory"));
                    return;
                }

                mappings[pte.Pfn] = mappings.GetValueOrDefault(pte.Pfn) + 1;
                var flags = memmap.GetFlags(pte.Pfn);
                if (memmap.PageCount(pte.Pfn) == 0)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.EntryMapsBadFrame, $"pid {mm.Id}: entry at 0x{address:x} maps free frame 0x{pte.Pfn:x}"));
                }

                if ((flags & PageFlags.PageTable) != 0)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.EntryMapsBadFrame, $"pid {mm.Id}: entry at 0x{address:x} maps page-table frame 0x{pte.Pfn:x}"));
                }

                if (pte.IsWrite && (flags & PageFlags.Anon) != 0 && (flags & PageFlags.AnonExclusive) == 0 && machine.Generation.WritableAnonImpliesExclusive)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.WritableNotExclusive, $"pid {mm.Id}: writable entry at 0x{address:x} maps anon page 0x{pte.Pfn:x} that is not AnonExclusive"));
                }

                if (vma is not null && (flags & PageFlags.Anon) != 0)
                {
                    CheckAnonMapping(vma, address, pte.Pfn, violations);
                }

                if (vma?.File is { } file && (flags & PageFlags.Anon) == 0)
                {
                    var index = (int)vma.LinearPageIndex(address);
                    if (file.Cache.Peek(index) != pte.Pfn)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.FileMappingBroken, $"pid {mm.Id}: entry at 0x{address:x} maps pfn 0x{pte.Pfn:x}, not the page cached for page {index} of {file}"));
                    }

                    if (pte.IsWrite && !vma.IsShared)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.FileMappingBroken, $"pid {mm.Id}: private mapping's entry at 0x{address:x} maps page-cache page 0x{pte.Pfn:x} writable"));
                    }

                    if (pte.IsWrite && (flags & PageFlags.Dirty) == 0)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.WriteNotifyBroken, $"pid {mm.Id}: shared file page 0x{pte.Pfn:x} is mapped writable at 0x{address:x} while the page is clean (write-notify broken)"));
                    }
                }
                else if (vma?.File is not null && vma.IsShared)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.FileMappingBroken, $"pid {mm.Id}: shared file mapping's entry at 0x{address:x} maps anon page 0x{pte.Pfn:x}"));
                }
            }, tables, violations);
        }

        CheckAnonVmaChains(processes, violations);
        foreach (var (pfn, count) in mappings)
        {
            if (memmap.TestFlags(pfn, PageFlags.Anon))
            {
                var walk = new CountingVisitor(machine, pfn);
                rmapWalk.Walk(pfn, ref walk);
                if (walk.Found != count)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.AnonRmapBroken, $"pfn 0x{pfn:x}: an rmap walk finds {walk.Found} of the {count} entries mapping it"));
                }
            }

            var mapcount = memmap.MapCount(pfn);
            var refcount = memmap.PageCount(pfn);
            if (mapcount != count)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.MapcountMismatch, $"pfn 0x{pfn:x}: mapcount {mapcount} but {count} entries map it"));
            }

            var (gupRefs, _) = memmap.GupHeld(pfn);
            var expected = count + (cached.Contains(pfn) ? 1 : 0) + gupRefs;
            if (refcount != expected)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.RefcountMismatch, $"pfn 0x{pfn:x}: refcount {refcount} but {count} entries map it and {expected - count} other reference(s) are held (cache, GUP)"));
            }

            if (count > 1 && memmap.TestFlags(pfn, PageFlags.Anon))
            {
                foreach (var ((mm, vpn), pte) in translations)
                {
                    if (!pte.IsSpecial && pte.Pfn == pfn && pte.IsWrite)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.WritableShared, $"pid {mm}: writable entry at 0x{vpn << PhysicalMemory.PageShift:x} maps pfn 0x{pfn:x}, which is mapped {count} times"));
                    }
                }
            }
        }

        var free = new HashSet<long>();
        foreach (var pfn in machine.Allocator.FreeList())
        {
            if (!free.Add(pfn))
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x} is on the free lists twice"));
            }
        }

        for (var pfn = memmap.BasePfn; pfn < memmap.BasePfn + memmap.Frames; pfn++)
        {
            var refcount = memmap.PageCount(pfn);
            var flags = memmap.GetFlags(pfn);
            if ((flags & PageFlags.Reserved) != 0)
            {
                continue;
            }

            if (refcount == 0)
            {
                if (!free.Contains(pfn))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x} has refcount 0 but is on no free list (lost)"));
                }

                if (memmap.MapCount(pfn) != 0 || flags != PageFlags.None)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"free pfn 0x{pfn:x} has mapcount {memmap.MapCount(pfn)} and flags {flags}"));
                }
            }
            else if (free.Contains(pfn))
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FreeListCorrupt, $"pfn 0x{pfn:x} is on a free list with refcount {refcount}"));
            }
            else if ((flags & PageFlags.PageTable) != 0)
            {
                if (!tables.Contains(pfn))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.LeakedPageTable, $"page-table frame 0x{pfn:x} belongs to no live mm (leaked table)"));
                }
            }
            else if (!mappings.ContainsKey(pfn) && !cached.Contains(pfn) && memmap.GupHeld(pfn).Refs == 0)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.LeakedFrame, $"pfn 0x{pfn:x} has refcount {refcount} but nothing maps or holds it (leak)"));
            }
            else if (!mappings.ContainsKey(pfn) && !cached.Contains(pfn) && refcount != memmap.GupHeld(pfn).Refs)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.RefcountMismatch, $"pfn 0x{pfn:x} is held only by GUP handles ({memmap.GupHeld(pfn).Refs} references) but has refcount {refcount}"));
            }

            // Pins: maybe_dma_pinned never misses a pin; under the modern rule a pinned anonymous page is exclusive.
            var (_, pins) = memmap.GupHeld(pfn);
            if (pins > 0 && refcount != 0)
            {
                if (!memmap.MaybeDmaPinned(pfn))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.PinNotDetected, $"pfn 0x{pfn:x} is pinned {pins} time(s) but folio_maybe_dma_pinned is false"));
                }

                if ((flags & PageFlags.Anon) != 0 && (flags & PageFlags.AnonExclusive) == 0 && machine.Generation.PinnedAnonImpliesExclusive)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.PinnedNotExclusive, $"pinned anon pfn 0x{pfn:x} is not AnonExclusive"));
                }
            }
        }

        var liveMms = processes.Where(p => !p.HasExited).Select(p => p.Mm.Id).ToHashSet();
        foreach (var cpu in cpus)
        {
            foreach (var (mm, vpn, pfn, writable, _) in cpu.Tlb.Entries())
            {
                var where = Format($"CPU {cpu.Id}: TLB entry for pid {mm} at 0x{vpn << PhysicalMemory.PageShift:x} -> pfn 0x{pfn:x}");
                if (!liveMms.Contains(mm))
                {
                    violations.Add(new InvariantViolation(ViolationKind.StaleTlbEntry, where + " belongs to an exited process"));
                }
                else if (!translations.TryGetValue((mm, vpn), out var pte) || !pte.IsPresent)
                {
                    violations.Add(new InvariantViolation(ViolationKind.StaleTlbEntry, where + " is stale: no present entry maps that address"));
                }
                else if (pte.Pfn != pfn)
                {
                    violations.Add(new InvariantViolation(ViolationKind.StaleTlbEntry, where + Format($" is stale: the entry maps pfn 0x{pte.Pfn:x}")));
                }
                else if (writable && !pte.IsWrite)
                {
                    violations.Add(new InvariantViolation(ViolationKind.StaleTlbEntry, where + " is writable but the entry is read-only"));
                }

                if (memmap.Contains(pfn) && memmap.PageCount(pfn) == 0)
                {
                    violations.Add(new InvariantViolation(ViolationKind.StaleTlbEntry, where + " points at a free frame"));
                }
            }
        }

        return violations;
    }

    /// <summary>
    /// Every cached page: live, not anon, not a table, its descriptor naming its file and index, held by the cache (and,
    /// when unmapped, by nothing else), unlocked and not under writeback at quiescence, tagged dirty when dirty, and,
    /// when clean, identical to its backing store.
    /// Returns the set of cached pfns.
    /// </summary>
    private HashSet<long> CheckPageCache( List<InvariantViolation> violations)
    {
        var memmap = machine.Memmap;
        var cached = new HashSet<long>();
        foreach (var file in machine.Files.All)
        {
            for (var index = 0; index < file.Cache.Pages; index++)
            {
                var pfn = file.Cache.Peek(index);
                if (pfn < 0)
                {
                    continue;
                }

                var where = Format($"{file} page {index} (pfn 0x{pfn:x})");
                if (!memmap.Contains(pfn))
                {
                    violations.Add(new InvariantViolation(ViolationKind.PageCacheCorrupt, where + " is outside physical memory"));
                    continue;
                }

                if (!cached.Add(pfn))
                {
                    violations.Add(new InvariantViolation(ViolationKind.PageCacheCorrupt, where + " is cached twice"));
                }

                var flags = memmap.GetFlags(pfn);
                ref var page = ref memmap.Page(pfn);
                if (memmap.PageCount(pfn) == 0)
                {
                    violations.Add(new InvariantViolation(ViolationKind.PageCacheCorrupt, where + " is free while in the page cache"));
                }
                else if (memmap.MapCount(pfn) == 0 && memmap.PageCount(pfn) != 1 + memmap.GupHeld(pfn).Refs)
                {
                    violations.Add(new InvariantViolation(ViolationKind.RefcountMismatch, where + Format($" is unmapped but has refcount {memmap.PageCount(pfn)}; only the cache and {memmap.GupHeld(pfn).Refs} GUP references hold it")));
                }

                if ((flags & (PageFlags.Anon | PageFlags.PageTable)) != 0 || Atomic.Read(ref page.Mapping) != file.Id || Atomic.Read(ref page.Index) != index)
                {
                    violations.Add(new InvariantViolation(ViolationKind.PageCacheCorrupt, where + Format($" has flags {flags}, mapping {Atomic.Read(ref page.Mapping)}, index {Atomic.Read(ref page.Index)}")));
                }

                if ((flags & (PageFlags.Locked | PageFlags.Writeback)) != 0)
                {
                    violations.Add(new InvariantViolation(ViolationKind.PageCacheCorrupt, where + Format($" is {flags & (PageFlags.Locked | PageFlags.Writeback)} at quiescence")));
                }

                if ((flags & PageFlags.Dirty) != 0 && !file.Cache.IsTaggedDirty(index))
                {
                    violations.Add(new InvariantViolation(ViolationKind.PageCacheCorrupt, where + " is dirty but not in its file's dirty set"));
                }

                // The backing-store invariant in the form quiescence can check: a page is clean only once it has been
                // copied out, and a store after that must have dirtied it again (write-notify), so a clean page holds
                // exactly what the backing store holds. A store that reached a clean page unnoticed (the lost-dirty
                // race) breaks this before any eviction can hide it.
                if ((flags & (PageFlags.Dirty | PageFlags.Writeback)) == 0)
                {
                    var contents = machine.Memory.Frame(pfn);
                    var stored = file.Store.Page(index);
                    var word = contents.CommonPrefixLength(stored);
                    if (word < contents.Length)
                    {
                        violations.Add(new InvariantViolation(ViolationKind.CleanPageDiffers, where + Format($" is clean but differs from the backing store at word {word} (0x{contents[word]:x} cached, 0x{stored[word]:x} stored): a store reached it without dirtying it")));
                    }
                }
            }
        }

        return cached;
    }

    /// <summary>Every file VMA of a live process is in its file's rmap, and the rmap lists nothing else.</summary>
    private void CheckFileRmaps(IReadOnlyList<Process> processes, List<InvariantViolation> violations)
    {
        var live = new HashSet<Vma>();
        foreach (var process in processes)
        {
            if (process.HasExited)
            {
                continue;
            }

            foreach (var vma in process.Mm.Vmas)
            {
                if (vma.File is null)
                {
                    continue;
                }

                live.Add(vma);
                if (!vma.File.Rmap.Vmas.Contains(vma))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {process.Mm.Id}: VMA {vma} is missing from its file's rmap"));
                }
            }
        }

        foreach (var file in machine.Files.All)
        {
            foreach (var vma in file.Rmap.Vmas)
            {
                if (!live.Contains(vma) || vma.File != file)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"{file}: rmap lists VMA {vma} of pid {vma.Mm.Id}, which is not mapped"));
                }
            }
        }
    }

    /// <summary>
    /// An entry mapping an anonymous page lies where the page's anon_vma and index say: the anon_vma is in the VMA's
    /// family and lists the VMA, and the page's index maps back to this address.
    /// </summary>
    private void CheckAnonMapping(Vma vma, ulong address, long pfn, List<InvariantViolation> violations)
    {
        var anonVma = AnonRmap.AnonVmaOf(machine.Memmap, pfn);
        var index = Atomic.Read(ref machine.Memmap.Page(pfn).Index);
        if (anonVma is null || vma.AnonVma is null || anonVma.Root != vma.AnonVma.Root || !anonVma.Vmas.Contains(vma))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.AnonRmapBroken, $"pid {vma.Mm.Id}: anon page 0x{pfn:x} at 0x{address:x} belongs to {anonVma?.ToString() ?? "no anon_vma"}, which does not list its VMA {vma} (whose anon_vma is {vma.AnonVma?.ToString() ?? "none"})"));
        }

        if (vma.AddressOf(index) != address)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.AnonRmapBroken, $"pid {vma.Mm.Id}: anon page 0x{pfn:x} at 0x{address:x} has index {index}, which VMA {vma} places at 0x{vma.AddressOf(index) ?? 0:x}"));
        }
    }

    /// <summary>
    /// Every live VMA is linked into its own anon_vma and its chain's, all of one family, each listing it once; every
    /// VMA an anon_vma lists is live and has it in its chain.
    /// </summary>
    private static void CheckAnonVmaChains(IReadOnlyList<Process> processes, List<InvariantViolation> violations)
    {
        var live = new HashSet<Vma>();
        var anonVmas = new HashSet<AnonVma>();
        foreach (var process in processes)
        {
            if (process.HasExited)
            {
                continue;
            }

            foreach (var vma in process.Mm.Vmas)
            {
                live.Add(vma);
                if (vma.AnonVma is not { } own)
                {
                    if (vma.AnonVmaChain.Count != 0)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {vma.Mm.Id}: VMA {vma} has no anon_vma but is linked into {vma.AnonVmaChain.Count}"));
                    }

                    continue;
                }

                if (!vma.AnonVmaChain.Contains(own))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {vma.Mm.Id}: VMA {vma} is not linked into its own {own}"));
                }

                foreach (var anonVma in vma.AnonVmaChain)
                {
                    anonVmas.Add(anonVma);
                    if (anonVma.Root != own.Root || anonVma.Vmas.Count(v => v == vma) != 1)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {vma.Mm.Id}: VMA {vma} is chained to {anonVma}, which is of another family or lists it other than once"));
                    }
                }
            }
        }

        foreach (var anonVma in anonVmas)
        {
            foreach (var vma in anonVma.Vmas)
            {
                if (!live.Contains(vma) || !vma.AnonVmaChain.Contains(anonVma))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"{anonVma} lists VMA {vma} of pid {vma.Mm.Id}, which is gone or not chained to it"));
                }
            }
        }
    }

    /// <summary>Counts the entries an rmap walk finds mapping the page.</summary>
    private struct CountingVisitor(Machine machine, long pfn) : IRmapVisitor
    {
        public int Found { get; private set; }

        public bool Visit(Vma vma, ulong address)
        {
            var table = machine.Tables.WalkToPteTable(vma.Mm.Pgd, address);
            if (table >= 0 && machine.Ptes.PtepGet(table, PageTableSet.Index(address, 1)) is { MapsPage: true, IsSpecial: false } pte && pte.Pfn == pfn)
            {
                Found++;
            }

            return true;
        }
    }

    private static void CheckVmas(MmStruct mm, List<InvariantViolation> violations)
    {
        ulong previousEnd = 0;
        foreach (var vma in mm.Vmas)
        {
            if (vma.Start >= vma.End || (vma.Start & 0xFFF) != 0 || (vma.End & 0xFFF) != 0 || vma.Start < previousEnd)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.MalformedVma, $"pid {mm.Id}: VMA {vma} is empty, unaligned or overlaps its predecessor"));
            }

            previousEnd = vma.End;
        }
    }

    private void Walk(long table, int level, ulong tableBase, Action<ulong, Pte> leaf, HashSet<long> tables, List<InvariantViolation> violations)
    {
        tables.Add(table);
        if (machine.Memmap.PageCount(table) != 1 || !machine.Memmap.TestFlags(table, PageFlags.PageTable))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.BadPageTable, $"page table 0x{table:x} (level {level}) has refcount {machine.Memmap.PageCount(table)} and flags {machine.Memmap.GetFlags(table)}"));
        }

        var span = 1UL << (PhysicalMemory.PageShift + (9 * (level - 1)));
        for (var i = 0; i < PageTableSet.Entries; i++)
        {
            var entry = new Pte(Atomic.Read(ref machine.Memory.Word(table, i)));
            var address = tableBase + ((ulong)i * span);
            if (level == 1)
            {
                if (entry.MapsPage)
                {
                    leaf(address, entry);
                }
                else if (!entry.IsNone && !entry.IsSwap)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.GarbageEntry, $"entry at 0x{address:x} holds garbage 0x{entry.Value:x16}"));
                }
            }
            else if (entry.IsPresent)
            {
                Walk(entry.Pfn, level - 1, address, leaf, tables, violations);
            }
            else if (!entry.IsNone)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.GarbageEntry, $"upper-level entry (level {level}) for 0x{address:x} holds garbage 0x{entry.Value:x16}"));
            }
        }
    }

    private static string Format(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
