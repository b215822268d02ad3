using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 17, the road seed 003 did not take: reusing a page of a large anonymous folio for a write when the folio
/// "is not shared" by the per-page estimate (<c>folio_likely_mapped_shared</c>, ≤ 6.14) and every reference is a
/// mapping. The estimate looks at the folio's first page only; a folio that two mms map through other pages is taken
/// for exclusive, the parent's store lands in the page the child still maps. 6.15's MM owner tracking answers
/// precisely, as David Hildenbrand argued a reuse decision needs.
/// </summary>
public static class EstimatedSharersReuse
{
    /// <summary>The interleavings a run with the precise answer must meet.</summary>
    public static readonly string[] Events =
    [
        "the child's read returned before the parent's store was done",
        "the child's read returned after it",
    ];

    /// <summary>
    /// A folio of four pages, written, then shared by fork; the parent keeps pages 1 and 2, the child page 1 (the
    /// partial munmaps cannot split a folio two mms map: it stays large). The parent stores to page 1 while the
    /// child reads it; the child must keep reading what was there at fork.
    /// </summary>
    public static Action Scenario(bool precise, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions
        {
            Cpus = 2,
            Frames = 64,
            AnonFolioOrder = 2,
            Mapcount = precise ? MapcountScheme.MmId : MapcountScheme.PerPage,
            ReuseLargeFoliosByEstimate = !precise,
        }));
        var parent = machine.CreateProcess();
        var address = parent.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var i = 0UL; i < 4; i++)
        {
            machine.Cpus[0].Write(parent, address + (i * Page), 1);
        }

        var child = parent.Fork();
        parent.Munmap(address, Page);
        parent.Munmap(address + (3 * Page), Page);
        child.Munmap(address, Page);
        child.Munmap(address + (2 * Page), 2 * Page);

        var before = new ulong[1];
        var stored = new int[1];
        var readAfterStore = new bool[1];
        var reader = ControlledThread.Start(() =>
        {
            before[0] = machine.Cpus[1].Read(child, address + Page);
            readAfterStore[0] = Volatile.Read(ref stored[0]) != 0;
        }, "child");
        machine.Cpus[0].Write(parent, address + Page, 2);
        Volatile.Write(ref stored[0], 1);
        reader.Join();
        probe?.Saw(readAfterStore[0] ? 1 : 0);
        var after = machine.Cpus[1].Read(child, address + Page);
        Specification.Assert(before[0] == 1 && after == 1, ZooBugKind.SharedFolioReused,
            $"the child reads {(before[0] != 1 ? before[0] : after)} at 0x{address + Page:x}, not 1: the parent's write reused a page of a large folio the child still maps (folio_likely_mapped_shared said the folio was not shared)");
        AssertInvariants(machine);
        child.Dispose();
    };
}
