using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 9 (cow.c "R/O GUP pin on R/O-mapped shared page"): without <c>FAULT_FLAG_UNSHARE</c>, a read-only pin
/// holds a page shared after fork, and the process's next store copies away from it.
/// </summary>
public static class ReadOnlyPinUnshare
{
    /// <summary>The interleavings a run with unshare must meet.</summary>
    public static readonly string[] Events =
    [
        "the parent's racing store came after the pin",
        "it came before the pin",
    ];

    /// <summary>
    /// After fork the parent's page is shared; CPU 0 takes a read-only long-term pin (GUP-fast first) while CPU 1
    /// stores to the page from the parent. Whatever the order, the parent's last store must be what the pin reads: the
    /// pin must hold the page the parent keeps.
    /// </summary>
    public static Action Scenario(bool unshare, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, UnshareOnReadOnlyPin = unshare }));
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(parent, address, 1);
        using var child = parent.Fork();
        var stored = new int[1];
        var writer = ControlledThread.Start(() =>
        {
            machine.Cpus[1].Write(parent, address, 2);
            Volatile.Write(ref stored[0], 1);
        }, "cpu1");
        using (var pin = machine.Cpus[0].PinUserPages(parent, address, 1, GupFlags.LongTerm))
        {
            var before = Volatile.Read(ref stored[0]);
            writer.Join();
            probe?.Saw(before);
            machine.Cpus[1].Write(parent, address, 3);
            Specification.Assert(pin.Read(0, 0) == 3, ZooBugKind.ReadOnlyPinStale, $"the R/O pin of 0x{address:x} reads {pin.Read(0, 0)}, not the parent's last store 3: it holds a page the parent no longer maps");
            Specification.Assert(machine.Cpus[0].Read(child, address) == 1, ZooBugKind.ChildSeesParentStore, "the child sees the parent's store after fork");
            AssertInvariants(machine);
        }
    };
}
