using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 5: GUP-fast write pins racing fork. Without <c>write_protect_seq</c> a pin taken after fork checked
/// "maybe pinned" and before it write-protected the entry ends up on a page shared with the child.
/// </summary>
public static class PinDuringFork
{
    /// <summary>The interleavings a run with the sequence check must meet.</summary>
    public static readonly string[] Events =
    [
        "fork copied the pinned pages for the child",
        "the pin came after fork",
    ];

    /// <summary>
    /// Four pages, pinned together: fork's window between its pinned check and its write-protect is a few steps per
    /// page (as narrow as the kernel's), and four pages give GUP-fast four chances to fall in one.
    /// </summary>
    private const int Pages = 4;

    /// <summary>
    /// The parent's pages are exclusive and writable; one thread forks while CPU 0 write-pins them through GUP-fast.
    /// Afterwards the parent stores through its mapping: a successful pin must see that store (the pinned page is
    /// still the parent's), and the child must not.
    /// </summary>
    public static Action Scenario(bool forkSeq, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, GupFastForkSeq = forkSeq }));
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var i = 0; i < Pages; i++)
        {
            machine.Cpus[1].Write(parent, address + ((ulong)i * Page), 1);
        }

        Process? child = null;
        var forker = ControlledThread.Start(() => child = parent.Fork(), "fork");

        // The pinning thread has other work first: it is content to run later, so its pin falls anywhere in fork.
        Engine.Sync.SchedulingPoint.Yield();
        using (var pin = machine.Cpus[0].PinUserPages(parent, address, Pages, GupFlags.Write | GupFlags.LongTerm))
        {
            forker.Join();
            probe?.Saw(machine.Stats.ForkPinnedCopies > 0 ? 0 : 1);
            for (var i = 0; i < Pages; i++)
            {
                var at = address + ((ulong)i * Page);
                machine.Cpus[1].Write(parent, at, 2);
                Specification.Assert(pin.Read(i, 0) == 2, ZooBugKind.PinSharedWithChild, $"the pin holds {pin.Read(i, 0)} in page {i} (0x{at:x}), not the parent's store 2: the pinned page was shared with the child and the parent's write copied it away from the pin");
                Specification.Assert(machine.Cpus[1].Read(child!, at) == 1, ZooBugKind.ChildSeesParentStore, "the child sees the parent's store after fork");
            }

            AssertInvariants(machine);
        }

        child!.Dispose();
    };
}
