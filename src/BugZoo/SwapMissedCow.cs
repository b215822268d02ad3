using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 13: CVE-2020-29374 for a page that was swapped out at fork (cow.c "vmsplice + unmap in child" on a
/// swapped-out page, the reproducer of "mm: streamline COW logic in do_swap_page()", c145e0b47c77). From Linux 5.9 the
/// write-protect fault counts references, but until 5.18 <c>do_swap_page</c> still asked <c>reuse_swap_page()</c>,
/// which counts mappings and swap entries only: once the child has unmapped, the parent's write fault on its swap entry
/// reuses the page the child's pipe still references.
/// </summary>
public static class SwapMissedCow
{
    /// <summary>The interleavings a run with the fix must meet.</summary>
    public static readonly string[] Events =
    [
        "the parent's write began after the child unmapped",
        "the parent's write began before the child unmapped",
    ];

    /// <summary>
    /// The parent writes a page and pages it out (<c>MADV_PAGEOUT</c>); fork shares the swap entry. The child takes a
    /// read-only reference (vmsplice into a pipe) and unmaps, while the parent stores a secret. Whatever the order, the
    /// pipe must still read what the page held at fork.
    /// </summary>
    public static Action Scenario(SwapReuse swapReuse, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 8, CowReuse = CowReuse.PageCount, SwapReuse = swapReuse }));
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        var paged = parent.MadvisePageOut(address, Page);
        Specification.Assert(paged == 1, ZooBugKind.ScenarioSetup, $"MADV_PAGEOUT freed {paged} page(s), not the one page the scenario swaps out");
        using var child = parent.Fork();
        var unmapped = new int[1];
        var after = new int[1];
        var secret = ControlledThread.Start(() =>
        {
            Volatile.Write(ref after[0], Volatile.Read(ref unmapped[0]));
            machine.Cpus[0].Write(parent, address, 2);
        }, "parent");
        using (var pipe = machine.Cpus[1].GetUserPages(child, address, 1, GupFlags.None))
        {
            child.Munmap(address, Page);
            Volatile.Write(ref unmapped[0], 1);
            secret.Join();
            probe?.Saw(Volatile.Read(ref after[0]) == 1 ? 0 : 1);
            var seen = pipe.Read(0, 0);
            Specification.Assert(seen == 1, ZooBugKind.SwapMissedCow, $"CVE-2020-29374 through swap: the child's pipe (a reference to 0x{address:x}, swapped out at fork) reads {seen}, the parent's store after fork");
            AssertInvariants(machine);
        }
    };
}
