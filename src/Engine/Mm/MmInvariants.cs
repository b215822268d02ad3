using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;

namespace Engine.Mm;

/// <summary>
/// The address spaces' invariants, checked at quiescence for <c>Machine.CheckInvariants</c>:
/// <list type="bullet">
/// <item>VMAs are sorted, page aligned, non-empty and disjoint, and every entry lies inside a VMA;</item>
/// <item>every live VMA is linked into its own anon_vma and its chain's, all of one family, each listing it once, and
/// every VMA an anon_vma lists is live and chained to it;</item>
/// <item>every file VMA of a live mm is in its file's <c>i_mmap</c>, which lists nothing else;</item>
/// <item>an entry of a file mapping maps the page cached for its index (a private mapping never writable), a shared
/// mapping maps no anonymous page, and a shared file page is writable only while dirty (write-notify).</item>
/// </list>
/// Nothing here is a scheduling point: the caller runs at quiescence with scheduling points suppressed.
/// </summary>
internal sealed class MmInvariants(Memmap memmap, FileTable files)
{
    /// <summary>The VMAs of <paramref name="mm"/> are non-empty, page aligned, sorted and disjoint.</summary>
    public static void CheckVmas(MmStruct mm, List<InvariantViolation> violations)
    {
        ulong previousEnd = 0;
        foreach (var vma in mm.Vmas)
        {
            if (vma.Start >= vma.End || (vma.Start & 0xFFF) != 0 || (vma.End & 0xFFF) != 0 || vma.Start < previousEnd)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.MalformedVma, $"pid {mm.Id}: VMA {vma} is empty, unaligned or overlaps its predecessor")
                    with { Pid = mm.Id, Address = vma.Start });
            }

            previousEnd = vma.End;
        }
    }

    /// <summary>The VMA of <paramref name="mm"/> that holds the entry <paramref name="pte"/> at <paramref name="address"/>; null, and a violation, when none does.</summary>
    public static Vma? CheckEntryInVma(MmStruct mm, ulong address, Pte pte, List<InvariantViolation> violations)
    {
        var vma = mm.FindVmaAtQuiescence(address);
        if (vma is null)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.EntryOutsideVma, $"pid {mm.Id}: entry at 0x{address:x} ({pte}) lies outside every VMA")
                with { Pid = mm.Id, Address = address, Pfn = pte.Pfn });
        }

        return vma;
    }

    /// <summary>
    /// An entry of <paramref name="mm"/> at <paramref name="address"/> in <paramref name="vma"/> mapping the page
    /// <paramref name="pte"/> names (a frame of physical memory): in a file mapping, the page cached for its index, not
    /// writable in a private mapping nor while clean; in a shared file mapping, never an anonymous page.
    /// </summary>
    public void CheckFileEntry(MmStruct mm, Vma? vma, ulong address, Pte pte, List<InvariantViolation> violations)
    {
        var flags = memmap.GetFlags(pte.Pfn);
        if (vma?.File is { } file && (flags & PageFlags.Anon) == 0)
        {
            var index = (int)vma.LinearPageIndex(address);
            if (file.Cache.Peek(index) != pte.Pfn)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FileMappingBroken, $"pid {mm.Id}: entry at 0x{address:x} maps pfn 0x{pte.Pfn:x}, not the page cached for page {index} of {file}")
                    with { Pid = mm.Id, Address = address, Pfn = pte.Pfn });
            }

            if (pte.IsWrite && !vma.IsShared)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.FileMappingBroken, $"pid {mm.Id}: private mapping's entry at 0x{address:x} maps page-cache page 0x{pte.Pfn:x} writable")
                    with { Pid = mm.Id, Address = address, Pfn = pte.Pfn });
            }

            if (pte.IsWrite && (flags & PageFlags.Dirty) == 0)
            {
                violations.Add(InvariantViolation.Of(ViolationKind.WriteNotifyBroken, $"pid {mm.Id}: shared file page 0x{pte.Pfn:x} is mapped writable at 0x{address:x} while the page is clean (write-notify broken)")
                    with { Pid = mm.Id, Address = address, Pfn = pte.Pfn });
            }
        }
        else if (vma?.File is not null && vma.IsShared)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.FileMappingBroken, $"pid {mm.Id}: shared file mapping's entry at 0x{address:x} maps anon page 0x{pte.Pfn:x}")
                with { Pid = mm.Id, Address = address, Pfn = pte.Pfn });
        }
    }

    /// <summary>Every file VMA of a live mm (<paramref name="mms"/>) is in its file's rmap, and the rmaps list nothing else.</summary>
    public void CheckFileRmaps(IReadOnlyList<MmStruct> mms, List<InvariantViolation> violations)
    {
        var live = new HashSet<Vma>();
        foreach (var mm in mms)
        {
            foreach (var vma in mm.Vmas)
            {
                if (vma.File is null)
                {
                    continue;
                }

                live.Add(vma);
                if (!vma.File.Rmap.Vmas.Contains(vma))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {mm.Id}: VMA {vma} is missing from its file's rmap")
                        with { Pid = mm.Id, Address = vma.Start });
                }
            }
        }

        foreach (var file in files.All)
        {
            foreach (var vma in file.Rmap.Vmas)
            {
                if (!live.Contains(vma) || vma.File != file)
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"{file}: rmap lists VMA {vma} of pid {vma.Mm.Id}, which is not mapped")
                        with { Pid = vma.Mm.Id, Address = vma.Start });
                }
            }
        }
    }

    /// <summary>
    /// Every VMA of a live mm (<paramref name="mms"/>) is linked into its own anon_vma and its chain's, all of one
    /// family, each listing it once; every VMA an anon_vma lists is live and has it in its chain.
    /// </summary>
    public static void CheckAnonVmaChains(IReadOnlyList<MmStruct> mms, List<InvariantViolation> violations)
    {
        var live = new HashSet<Vma>();
        var anonVmas = new HashSet<AnonVma>();
        foreach (var mm in mms)
        {
            foreach (var vma in mm.Vmas)
            {
                live.Add(vma);
                if (vma.AnonVma is not { } own)
                {
                    if (vma.AnonVmaChain.Count != 0)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {vma.Mm.Id}: VMA {vma} has no anon_vma but is linked into {vma.AnonVmaChain.Count}")
                            with { Pid = vma.Mm.Id, Address = vma.Start, Expected = 0, Actual = vma.AnonVmaChain.Count });
                    }

                    continue;
                }

                if (!vma.AnonVmaChain.Contains(own))
                {
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {vma.Mm.Id}: VMA {vma} is not linked into its own {own}")
                        with { Pid = vma.Mm.Id, Address = vma.Start });
                }

                foreach (var anonVma in vma.AnonVmaChain)
                {
                    anonVmas.Add(anonVma);
                    var listed = anonVma.Vmas.Count(v => v == vma);
                    if (anonVma.Root != own.Root || listed != 1)
                    {
                        violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"pid {vma.Mm.Id}: VMA {vma} is chained to {anonVma}, which is of another family or lists it other than once")
                            with { Pid = vma.Mm.Id, Address = vma.Start, Expected = listed != 1 ? 1 : null, Actual = listed != 1 ? listed : null });
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
                    violations.Add(InvariantViolation.Of(ViolationKind.RmapLinksBroken, $"{anonVma} lists VMA {vma} of pid {vma.Mm.Id}, which is gone or not chained to it")
                        with { Pid = vma.Mm.Id, Address = vma.Start });
                }
            }
        }
    }
}
