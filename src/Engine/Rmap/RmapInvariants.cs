using Engine.Invariants;
using Engine.Memory;
using Engine.Mm;
using Engine.PageTables;
using Engine.Sync;

namespace Engine.Rmap;

/// <summary>
/// The anonymous reverse map's invariants, checked at quiescence for <c>Machine.CheckInvariants</c>: every entry
/// mapping an anonymous page lies where the page's anon_vma and index place it, and an rmap walk of each mapped
/// anonymous page finds exactly the entries that map it. (The links between VMAs and anon_vmas are the Mm layer's:
/// <c>MmInvariants.CheckAnonVmaChains</c>.) Nothing here is a scheduling point.
/// </summary>
internal sealed class RmapInvariants(Memmap memmap, RmapWalk rmapWalk, PageTableSet tables, PteAccess ptes)
{
    /// <summary>
    /// An entry at <paramref name="address"/> in <paramref name="vma"/> mapping the anonymous page <paramref name="pfn"/>
    /// lies where the page says: its anon_vma is in the VMA's family and lists the VMA, and its index maps back to
    /// this address.
    /// </summary>
    public void CheckAnonEntry(Vma vma, ulong address, long pfn, List<InvariantViolation> violations)
    {
        var anonVma = AnonRmap.AnonVmaOf(memmap, pfn);
        var index = Atomic.Read(ref memmap.Page(pfn).Index);
        if (anonVma is null || vma.AnonVma is null || anonVma.Root != vma.AnonVma.Root || !anonVma.Vmas.Contains(vma))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.AnonRmapBroken, $"pid {vma.Mm.Id}: anon page 0x{pfn:x} at 0x{address:x} belongs to {anonVma?.ToString() ?? "no anon_vma"}, which does not list its VMA {vma} (whose anon_vma is {vma.AnonVma?.ToString() ?? "none"})")
                with { Pid = vma.Mm.Id, Address = address, Pfn = pfn });
        }

        if (vma.AddressOf(index) != address)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.AnonRmapBroken, $"pid {vma.Mm.Id}: anon page 0x{pfn:x} at 0x{address:x} has index {index}, which VMA {vma} places at 0x{vma.AddressOf(index) ?? 0:x}")
                with { Pid = vma.Mm.Id, Address = address, Pfn = pfn });
        }
    }

    /// <summary>An rmap walk of <paramref name="pfn"/>, when it is anonymous, finds the <paramref name="count"/> entries that map it.</summary>
    public void CheckWalk(long pfn, int count, List<InvariantViolation> violations)
    {
        if (!memmap.TestFlags(pfn, PageFlags.Anon))
        {
            return;
        }

        var walk = new CountingVisitor(tables, ptes, pfn);
        rmapWalk.Walk(pfn, ref walk);
        if (walk.Found != count)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.AnonRmapBroken, $"pfn 0x{pfn:x}: an rmap walk finds {walk.Found} of the {count} entries mapping it")
                with { Pfn = pfn, Expected = count, Actual = walk.Found });
        }
    }

    /// <summary>Counts the entries an rmap walk finds mapping the page.</summary>
    private struct CountingVisitor(PageTableSet tables, PteAccess ptes, long pfn) : IRmapVisitor
    {
        public int Found { get; private set; }

        public bool Visit(Vma vma, ulong address)
        {
            var table = tables.WalkToPteTable(vma.Mm.Pgd, address);
            if (table >= 0 && ptes.PtepGet(table, PageTableSet.Index(address, 1)) is { MapsPage: true, IsSpecial: false } pte && pte.Pfn == pfn)
            {
                Found++;
            }

            return true;
        }
    }
}
