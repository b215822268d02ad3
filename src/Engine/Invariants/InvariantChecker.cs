using System.Globalization;
using Engine.Memory;
using Engine.PageTables;
using Engine.Rmap;
using Engine.Sync;

namespace Engine.Invariants;

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
internal static class InvariantChecker
{
    public static List<string> Check(Machine machine, IReadOnlyList<Process> processes)
    {
        var violations = new List<string>();
        var memmap = machine.Memmap;
        var mappings = new Dictionary<long, int>();
        var tables = new HashSet<long>();
        var translations = new Dictionary<(int Mm, ulong Vpn), Pte>();
        var cached = CheckPageCache(machine, violations);
        CheckFileRmaps(machine, processes, violations);

        foreach (var process in processes)
        {
            if (process.HasExited)
            {
                continue;
            }

            var mm = process.Mm;
            CheckVmas(mm, violations);
            Walk(machine, mm.Pgd, 4, 0, (address, pte) =>
            {
                translations[(mm.Id, address >> PhysicalMemory.PageShift)] = pte;
                var vma = mm.FindVma(address);
                if (vma is null)
                {
                    violations.Add(Format($"pid {mm.Id}: entry at 0x{address:x} ({pte}) lies outside every VMA"));
                }

                if (pte.IsSpecial)
                {
                    if (pte.Pfn != machine.ZeroPfn || pte.IsWrite)
                    {
                        violations.Add(Format($"pid {mm.Id}: special entry at 0x{address:x} ({pte}) is not the read-only zero page"));
                    }

                    return;
                }

                if (!memmap.Contains(pte.Pfn))
                {
                    violations.Add(Format($"pid {mm.Id}: entry at 0x{address:x} maps pfn 0x{pte.Pfn:x} outside physical memory"));
                    return;
                }

                mappings[pte.Pfn] = mappings.GetValueOrDefault(pte.Pfn) + 1;
                var flags = memmap.GetFlags(pte.Pfn);
                if (memmap.PageCount(pte.Pfn) == 0)
                {
                    violations.Add(Format($"pid {mm.Id}: entry at 0x{address:x} maps free frame 0x{pte.Pfn:x}"));
                }

                if ((flags & PageFlags.PageTable) != 0)
                {
                    violations.Add(Format($"pid {mm.Id}: entry at 0x{address:x} maps page-table frame 0x{pte.Pfn:x}"));
                }

                if (pte.IsWrite && (flags & PageFlags.Anon) != 0 && (flags & PageFlags.AnonExclusive) == 0 && machine.Options.CowReuse == CowReuse.AnonExclusive)
                {
                    violations.Add(Format($"pid {mm.Id}: writable entry at 0x{address:x} maps anon page 0x{pte.Pfn:x} that is not AnonExclusive"));
                }

                if (vma is not null && (flags & PageFlags.Anon) != 0)
                {
                    CheckAnonMapping(machine, vma, address, pte.Pfn, violations);
                }

                if (vma?.File is { } file && (flags & PageFlags.Anon) == 0)
                {
                    var index = (int)vma.LinearPageIndex(address);
                    if (file.Cache.Peek(index) != pte.Pfn)
                    {
                        violations.Add(Format($"pid {mm.Id}: entry at 0x{address:x} maps pfn 0x{pte.Pfn:x}, not the page cached for page {index} of {file}"));
                    }

                    if (pte.IsWrite && !vma.IsShared)
                    {
                        violations.Add(Format($"pid {mm.Id}: private mapping's entry at 0x{address:x} maps page-cache page 0x{pte.Pfn:x} writable"));
                    }

                    if (pte.IsWrite && (flags & PageFlags.Dirty) == 0)
                    {
                        violations.Add(Format($"pid {mm.Id}: shared file page 0x{pte.Pfn:x} is mapped writable at 0x{address:x} while the page is clean (write-notify broken)"));
                    }
                }
                else if (vma?.File is not null && vma.IsShared)
                {
                    violations.Add(Format($"pid {mm.Id}: shared file mapping's entry at 0x{address:x} maps anon page 0x{pte.Pfn:x}"));
                }
            }, tables, violations);
        }

        CheckAnonVmaChains(processes, violations);
        foreach (var (pfn, count) in mappings)
        {
            if (memmap.TestFlags(pfn, PageFlags.Anon))
            {
                var walk = new CountingVisitor(machine, pfn);
                RmapWalk.Walk(machine, pfn, ref walk);
                if (walk.Found != count)
                {
                    violations.Add(Format($"pfn 0x{pfn:x}: an rmap walk finds {walk.Found} of the {count} entries mapping it"));
                }
            }

            var mapcount = memmap.MapCount(pfn);
            var refcount = memmap.PageCount(pfn);
            if (mapcount != count)
            {
                violations.Add(Format($"pfn 0x{pfn:x}: mapcount {mapcount} but {count} entries map it"));
            }

            var (gupRefs, _) = memmap.GupHeld(pfn);
            var expected = count + (cached.Contains(pfn) ? 1 : 0) + gupRefs;
            if (refcount != expected)
            {
                violations.Add(Format($"pfn 0x{pfn:x}: refcount {refcount} but {count} entries map it and {expected - count} other reference(s) are held (cache, GUP)"));
            }

            if (count > 1 && memmap.TestFlags(pfn, PageFlags.Anon))
            {
                foreach (var ((mm, vpn), pte) in translations)
                {
                    if (!pte.IsSpecial && pte.Pfn == pfn && pte.IsWrite)
                    {
                        violations.Add(Format($"pid {mm}: writable entry at 0x{vpn << PhysicalMemory.PageShift:x} maps pfn 0x{pfn:x}, which is mapped {count} times"));
                    }
                }
            }
        }

        var free = new HashSet<long>();
        foreach (var pfn in machine.Allocator.FreeList())
        {
            if (!free.Add(pfn))
            {
                violations.Add(Format($"pfn 0x{pfn:x} is on the free lists twice"));
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
                    violations.Add(Format($"pfn 0x{pfn:x} has refcount 0 but is on no free list (lost)"));
                }

                if (memmap.MapCount(pfn) != 0 || flags != PageFlags.None)
                {
                    violations.Add(Format($"free pfn 0x{pfn:x} has mapcount {memmap.MapCount(pfn)} and flags {flags}"));
                }
            }
            else if (free.Contains(pfn))
            {
                violations.Add(Format($"pfn 0x{pfn:x} is on a free list with refcount {refcount}"));
            }
            else if ((flags & PageFlags.PageTable) != 0)
            {
                if (!tables.Contains(pfn))
                {
                    violations.Add(Format($"page-table frame 0x{pfn:x} belongs to no live mm (leaked table)"));
                }
            }
            else if (!mappings.ContainsKey(pfn) && !cached.Contains(pfn) && memmap.GupHeld(pfn).Refs == 0)
            {
                violations.Add(Format($"pfn 0x{pfn:x} has refcount {refcount} but nothing maps or holds it (leak)"));
            }
            else if (!mappings.ContainsKey(pfn) && !cached.Contains(pfn) && refcount != memmap.GupHeld(pfn).Refs)
            {
                violations.Add(Format($"pfn 0x{pfn:x} is held only by GUP handles ({memmap.GupHeld(pfn).Refs} references) but has refcount {refcount}"));
            }

            // Pins: maybe_dma_pinned never misses a pin; under the modern rule a pinned anonymous page is exclusive.
            var (_, pins) = memmap.GupHeld(pfn);
            if (pins > 0 && refcount != 0)
            {
                if (!memmap.MaybeDmaPinned(pfn))
                {
                    violations.Add(Format($"pfn 0x{pfn:x} is pinned {pins} time(s) but folio_maybe_dma_pinned is false"));
                }

                if ((flags & PageFlags.Anon) != 0 && (flags & PageFlags.AnonExclusive) == 0 && machine.Options.UnsharesReadOnlyPins)
                {
                    violations.Add(Format($"pinned anon pfn 0x{pfn:x} is not AnonExclusive"));
                }
            }
        }

        var liveMms = processes.Where(p => !p.HasExited).Select(p => p.Mm.Id).ToHashSet();
        foreach (var cpu in machine.Cpus)
        {
            foreach (var (mm, vpn, pfn, writable, _) in cpu.Tlb.Entries())
            {
                var where = Format($"CPU {cpu.Id}: TLB entry for pid {mm} at 0x{vpn << PhysicalMemory.PageShift:x} -> pfn 0x{pfn:x}");
                if (!liveMms.Contains(mm))
                {
                    violations.Add(where + " belongs to an exited process");
                }
                else if (!translations.TryGetValue((mm, vpn), out var pte) || !pte.IsPresent)
                {
                    violations.Add(where + " is stale: no present entry maps that address");
                }
                else if (pte.Pfn != pfn)
                {
                    violations.Add(where + Format($" is stale: the entry maps pfn 0x{pte.Pfn:x}"));
                }
                else if (writable && !pte.IsWrite)
                {
                    violations.Add(where + " is writable but the entry is read-only");
                }

                if (memmap.Contains(pfn) && memmap.PageCount(pfn) == 0)
                {
                    violations.Add(where + " points at a free frame");
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
    private static HashSet<long> CheckPageCache(Machine machine, List<string> violations)
    {
        var memmap = machine.Memmap;
        var cached = new HashSet<long>();
        foreach (var file in machine.AllFiles())
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
                    violations.Add(where + " is outside physical memory");
                    continue;
                }

                if (!cached.Add(pfn))
                {
                    violations.Add(where + " is cached twice");
                }

                var flags = memmap.GetFlags(pfn);
                ref var page = ref memmap.Page(pfn);
                if (memmap.PageCount(pfn) == 0)
                {
                    violations.Add(where + " is free while in the page cache");
                }
                else if (memmap.MapCount(pfn) == 0 && memmap.PageCount(pfn) != 1 + memmap.GupHeld(pfn).Refs)
                {
                    violations.Add(where + Format($" is unmapped but has refcount {memmap.PageCount(pfn)}; only the cache and {memmap.GupHeld(pfn).Refs} GUP references hold it"));
                }

                if ((flags & (PageFlags.Anon | PageFlags.PageTable)) != 0 || Atomic.Read(ref page.Mapping) != file.Id || Atomic.Read(ref page.Index) != index)
                {
                    violations.Add(where + Format($" has flags {flags}, mapping {Atomic.Read(ref page.Mapping)}, index {Atomic.Read(ref page.Index)}"));
                }

                if ((flags & (PageFlags.Locked | PageFlags.Writeback)) != 0)
                {
                    violations.Add(where + Format($" is {flags & (PageFlags.Locked | PageFlags.Writeback)} at quiescence"));
                }

                if ((flags & PageFlags.Dirty) != 0 && !file.Cache.IsTaggedDirty(index))
                {
                    violations.Add(where + " is dirty but not in its file's dirty set");
                }

                // The backing-store invariant in the form quiescence can check: a page is clean only once it has been
                // copied out, and a store after that must have dirtied it again (write-notify), so a clean page holds
                // exactly what the backing store holds. A store that reached a clean page unnoticed (the lost-dirty
                // race) breaks this before any eviction can hide it.
                if ((flags & (PageFlags.Dirty | PageFlags.Writeback)) == 0)
                {
                    var contents = machine.Memory.Frame(pfn);
                    var stored = file.StoredPage(index);
                    var word = contents.CommonPrefixLength(stored);
                    if (word < contents.Length)
                    {
                        violations.Add(where + Format($" is clean but differs from the backing store at word {word} (0x{contents[word]:x} cached, 0x{stored[word]:x} stored): a store reached it without dirtying it"));
                    }
                }
            }
        }

        return cached;
    }

    /// <summary>Every file VMA of a live process is in its file's rmap, and the rmap lists nothing else.</summary>
    private static void CheckFileRmaps(Machine machine, IReadOnlyList<Process> processes, List<string> violations)
    {
        var live = new HashSet<AddressSpace.Vma>();
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
                    violations.Add(Format($"pid {process.Mm.Id}: VMA {vma} is missing from its file's rmap"));
                }
            }
        }

        foreach (var file in machine.AllFiles())
        {
            foreach (var vma in file.Rmap.Vmas)
            {
                if (!live.Contains(vma) || vma.File != file)
                {
                    violations.Add(Format($"{file}: rmap lists VMA {vma} of pid {vma.Mm.Id}, which is not mapped"));
                }
            }
        }
    }

    /// <summary>
    /// An entry mapping an anonymous page lies where the page's anon_vma and index say: the anon_vma is in the VMA's
    /// family and lists the VMA, and the page's index maps back to this address.
    /// </summary>
    private static void CheckAnonMapping(Machine machine, AddressSpace.Vma vma, ulong address, long pfn, List<string> violations)
    {
        var anonVma = machine.Memmap.AnonVmaOf(pfn);
        var index = Atomic.Read(ref machine.Memmap.Page(pfn).Index);
        if (anonVma is null || vma.AnonVma is null || anonVma.Root != vma.AnonVma.Root || !anonVma.Vmas.Contains(vma))
        {
            violations.Add(Format($"pid {vma.Mm.Id}: anon page 0x{pfn:x} at 0x{address:x} belongs to {anonVma?.ToString() ?? "no anon_vma"}, which does not list its VMA {vma} (whose anon_vma is {vma.AnonVma?.ToString() ?? "none"})"));
        }

        if (vma.AddressOf(index) != address)
        {
            violations.Add(Format($"pid {vma.Mm.Id}: anon page 0x{pfn:x} at 0x{address:x} has index {index}, which VMA {vma} places at 0x{vma.AddressOf(index) ?? 0:x}"));
        }
    }

    /// <summary>
    /// Every live VMA is linked into its own anon_vma and its chain's, all of one family, each listing it once; every
    /// VMA an anon_vma lists is live and has it in its chain.
    /// </summary>
    private static void CheckAnonVmaChains(IReadOnlyList<Process> processes, List<string> violations)
    {
        var live = new HashSet<AddressSpace.Vma>();
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
                        violations.Add(Format($"pid {vma.Mm.Id}: VMA {vma} has no anon_vma but is linked into {vma.AnonVmaChain.Count}"));
                    }

                    continue;
                }

                if (!vma.AnonVmaChain.Contains(own))
                {
                    violations.Add(Format($"pid {vma.Mm.Id}: VMA {vma} is not linked into its own {own}"));
                }

                foreach (var anonVma in vma.AnonVmaChain)
                {
                    anonVmas.Add(anonVma);
                    if (anonVma.Root != own.Root || anonVma.Vmas.Count(v => v == vma) != 1)
                    {
                        violations.Add(Format($"pid {vma.Mm.Id}: VMA {vma} is chained to {anonVma}, which is of another family or lists it other than once"));
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
                    violations.Add(Format($"{anonVma} lists VMA {vma} of pid {vma.Mm.Id}, which is gone or not chained to it"));
                }
            }
        }
    }

    /// <summary>Counts the entries an rmap walk finds mapping the page.</summary>
    private struct CountingVisitor(Machine machine, long pfn) : IRmapVisitor
    {
        public int Found { get; private set; }

        public bool Visit(AddressSpace.Vma vma, ulong address)
        {
            var table = machine.Tables.WalkToPteTable(vma.Mm.Pgd, address);
            if (table >= 0 && machine.Ptes.PtepGet(table, PageTableSet.Index(address, 1)) is { MapsPage: true, IsSpecial: false } pte && pte.Pfn == pfn)
            {
                Found++;
            }

            return true;
        }
    }

    private static void CheckVmas(AddressSpace.MmStruct mm, List<string> violations)
    {
        ulong previousEnd = 0;
        foreach (var vma in mm.Vmas)
        {
            if (vma.Start >= vma.End || (vma.Start & 0xFFF) != 0 || (vma.End & 0xFFF) != 0 || vma.Start < previousEnd)
            {
                violations.Add(Format($"pid {mm.Id}: VMA {vma} is empty, unaligned or overlaps its predecessor"));
            }

            previousEnd = vma.End;
        }
    }

    private static void Walk(Machine machine, long table, int level, ulong tableBase, Action<ulong, Pte> leaf, HashSet<long> tables, List<string> violations)
    {
        tables.Add(table);
        if (machine.Memmap.PageCount(table) != 1 || !machine.Memmap.TestFlags(table, PageFlags.PageTable))
        {
            violations.Add(Format($"page table 0x{table:x} (level {level}) has refcount {machine.Memmap.PageCount(table)} and flags {machine.Memmap.GetFlags(table)}"));
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
                    violations.Add(Format($"entry at 0x{address:x} holds garbage 0x{entry.Value:x16}"));
                }
            }
            else if (entry.IsPresent)
            {
                Walk(machine, entry.Pfn, level - 1, address, leaf, tables, violations);
            }
            else if (!entry.IsNone)
            {
                violations.Add(Format($"upper-level entry (level {level}) for 0x{address:x} holds garbage 0x{entry.Value:x16}"));
            }
        }
    }

    private static string Format(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
