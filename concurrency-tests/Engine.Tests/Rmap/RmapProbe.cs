using Engine.Mm;
using Engine.PageTables;
using Engine.Rmap;

namespace Engine.Tests.Rmap;

/// <summary>Test-side looks at the engine's rmap: which frame an address maps, and what an rmap walk of a frame finds.</summary>
internal static class RmapProbe
{
    /// <summary>The frame <paramref name="address"/> of <paramref name="process"/> maps, or −1.</summary>
    public static long PfnAt(Engine.Machine machine, Process process, ulong address) => BugZoo.ZooScenario.PfnAt(machine, process, address);

    /// <summary>The (pid, address) pairs an rmap walk of <paramref name="pfn"/> finds mapping it, in walk order.</summary>
    public static List<(int Pid, ulong Address)> Mappers(Engine.Machine machine, long pfn)
    {
        var visitor = new CollectingVisitor(machine, pfn, []);
        machine.Rmap.Walk(pfn, ref visitor);
        return visitor.Found;
    }

    /// <summary>How many VMAs an rmap walk of <paramref name="pfn"/> visits (whether or not they map it).</summary>
    public static int VisitedVmas(Engine.Machine machine, long pfn)
    {
        var visitor = new CollectingVisitor(machine, -1, []);
        machine.Rmap.Walk(pfn, ref visitor);
        return visitor.Visited;
    }

    private struct CollectingVisitor(Engine.Machine machine, long pfn, List<(int, ulong)> found) : IRmapVisitor
    {
        public List<(int Pid, ulong Address)> Found { get; } = found;

        public int Visited { get; private set; }

        public bool Visit(Vma vma, ulong address)
        {
            Visited++;
            var table = machine.Tables.WalkToPteTable(vma.Mm.Pgd, address);
            if (table >= 0 && machine.Ptes.PtepGet(table, PageTableSet.Index(address, 1)) is { MapsPage: true, IsSpecial: false } pte && pte.Pfn == pfn)
            {
                Found.Add((vma.Mm.Id, address));
            }

            return true;
        }
    }
}
