using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 1, CVE-2020-29374 (cow.c "vmsplice() + unmap in child"): with the mapcount rule the parent's write fault
/// reuses a page the child still references, and the child reads what the parent wrote after fork.
/// </summary>
public static class MissedCow
{
    /// <summary>The interleavings a run with a fixed rule must meet.</summary>
    public static readonly string[] Events =
    [
        "the parent stored before the child took its reference",
        "the parent stored after it",
    ];

    /// <summary>
    /// After fork the child takes a read-only reference to the shared page (vmsplice into a pipe) and unmaps it, while
    /// the parent stores a secret. Whatever the order, the child's reference must still read what the page held at fork.
    /// </summary>
    public static Action Scenario(CowReuse rule, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, CowReuse = rule }));
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        using var child = parent.Fork();
        var stored = new int[1];
        var secret = ControlledThread.Start(() =>
        {
            machine.Cpus[0].Write(parent, address, 2);
            Volatile.Write(ref stored[0], 1);
        }, "parent");
        var before = Volatile.Read(ref stored[0]);
        using (var pipe = machine.Cpus[1].GetUserPages(child, address, 1, GupFlags.None))
        {
            child.Munmap(address, Page);
            secret.Join();
            probe?.Saw(before == 1 ? 0 : 1);
            Specification.Assert(pipe.Read(0, 0) == 1, ZooBugKind.MissedCow, $"CVE-2020-29374: the child's pipe (a reference to 0x{address:x}) reads {pipe.Read(0, 0)}, the parent's store after fork");
            AssertInvariants(machine);
        }
    };
}
