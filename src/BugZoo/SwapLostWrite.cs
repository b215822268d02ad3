using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 14: a write through a GUP reference (<c>FOLL_GET | FOLL_WRITE</c>, as O_DIRECT took it before
/// <c>FOLL_PIN</c>) to an exclusive anonymous page is lost across swap in Linux 5.18. Only pins keep a page from being
/// unmapped, so the page is swapped out under the reference and stays in the swap cache; the swap-in sees a reference
/// count above one, cannot tell the page was exclusive and maps it read-only; the process's write copies it, and what
/// the I/O writes afterwards goes to the page the process left. "mm/swap: remember PG_anon_exclusive via a swp pte bit"
/// (1493a1913e34, 5.19) keeps the exclusive bit in the swap entry, and the swap-in maps the same page again.
/// </summary>
public static class SwapLostWrite
{
    /// <summary>The interleavings a run with the fix must meet.</summary>
    public static readonly string[] Events =
    [
        "the process's write began while the I/O was in flight",
        "the I/O completed before the process's write",
    ];

    /// <summary>
    /// A direct-I/O read into a written page: a GUP reference with write access. The process pages the buffer out
    /// (<c>MADV_PAGEOUT</c>) and writes another word of it while the I/O completes (writes its data, dirties the page,
    /// drops the reference). The process must then read the I/O's data.
    /// </summary>
    public static Action Scenario(CowReuse rule, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 8, CowReuse = rule }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var io = machine.Cpus[0].GetUserPages(process, address, 1, GupFlags.Write);
        var done = new int[1];
        var device = ControlledThread.Start(() =>
        {
            io.Write(0, 1, 0xD10);
            io.Dispose();
            Volatile.Write(ref done[0], 1);
        }, "direct-io");
        process.MadvisePageOut(address, Page);
        var inFlight = Volatile.Read(ref done[0]) == 0;
        machine.Cpus[1].Write(process, address, 2);
        device.Join();
        probe?.Saw(inFlight ? 0 : 1);
        var word = machine.Cpus[1].Read(process, address + 8);
        Specification.Assert(word == 0xD10, ZooBugKind.SwapWriteLost, $"lost I/O: the process reads 0x{word:x} at 0x{address + 8:x}, not what the direct I/O wrote (0xd10): the swap-in did not know the page was exclusive, and the process's write copied it away from the I/O");
        Specification.Assert(machine.Cpus[1].Read(process, address) == 2, ZooBugKind.ScenarioSetup, "the process's own store is missing");
        AssertInvariants(machine);
    };
}
