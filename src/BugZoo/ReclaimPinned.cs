using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 15: reclaim swaps out a page under a long-term pin, before Linux 5.11. The unmap succeeds (the rmap knows
/// nothing of pins) and the pinned page stays in the swap cache; the process faults it back in read-only, and from 5.9,
/// where the write-protect fault counts references, its next write copies the page away from the pin: the pin and the
/// process no longer share memory. "mm: don't put pinned pages into the swap cache" (feb889fb40fa, 5.11) leaves maybe-
/// pinned pages alone; from 5.19 the unmap also refuses an exclusive page that may be pinned
/// (<c>folio_try_share_anon_rmap</c>).
/// </summary>
public static class ReclaimPinned
{
    /// <summary>The interleavings a run with the fix must meet.</summary>
    public static readonly string[] Events =
    [
        "reclaim looked at the page before the process's read",
        "reclaim looked at it after the process's read",
    ];

    /// <summary>
    /// A page registered as an io_uring fixed buffer (a long-term write pin). A memory manager pages the process out
    /// (<c>MADV_PAGEOUT</c> from another thread) while the process reads the buffer and then writes it. The pin must
    /// see the process's store.
    /// </summary>
    public static Action Scenario(CowReuse rule, bool skipPinned, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 8, CowReuse = rule, ReclaimSkipsMaybePinned = skipPinned }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        using var buffer = machine.Cpus[0].PinUserPages(process, address, 1, GupFlags.Write | GupFlags.LongTerm);
        var looked = new int[1];
        var manager = ControlledThread.Start(() =>
        {
            process.MadvisePageOut(address, Page);
            Volatile.Write(ref looked[0], 1);
        }, "pageout");
        var before = Volatile.Read(ref looked[0]) == 1;
        var read = machine.Cpus[1].Read(process, address);
        machine.Cpus[1].Write(process, address, 2);
        manager.Join();
        probe?.Saw(before ? 0 : 1);
        Specification.Assert(read == 1, ZooBugKind.ScenarioSetup, $"the process read {read} before its store, not 1");
        var seen = buffer.Read(0, 0);
        Specification.Assert(seen == 2, ZooBugKind.PinDiverged, $"the fixed buffer's pin reads {seen} at 0x{address:x}, not the process's store (2): reclaim swapped the pinned page out, and the write after the swap-in copied it away from the pin");
        AssertInvariants(machine);
    };
}
