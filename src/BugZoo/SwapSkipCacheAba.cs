using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 16: on a synchronous swap device the swap-in of an entry only one process names skips the swap cache, and
/// until Linux 6.8 nothing stopped two faults on that entry from both reading the slot. The first maps its page and
/// frees the slot; the page is written and swapped out again, into the same slot; the second fault's <c>pte_same</c>
/// sees the same swap entry as before (an ABA) and maps its copy of the old data: the write is lost. "mm/swap: fix race
/// when skipping swapcache" (13ddaf26be32, 6.8) claims the entry with <c>swapcache_prepare</c> for the whole swap-in.
/// </summary>
public static class SwapSkipCacheAba
{
    /// <summary>The interleavings a run with the fix must meet.</summary>
    public static readonly string[] Events =
    [
        "a reader's access began before the writer's swap-out",
        "both readers' accesses began after it",
    ];

    /// <summary>How many threads read the page, each on its own CPU.</summary>
    private const int Readers = 2;

    /// <summary>
    /// A page written and paged out to the device's only slot. Two threads of the process read the page while a third
    /// writes it and pages it out again (back into that slot: it is the only one). The process must then read the
    /// write.
    /// </summary>
    public static Action Scenario(bool claim, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions
        {
            Cpus = 2 + Readers, Frames = 64, SwapSlots = 1, SynchronousSwapDevice = true, SwapcachePrepareWhenSkipping = claim,
        }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var paged = process.MadvisePageOut(address, Page);
        Specification.Assert(paged == 1, ZooBugKind.ScenarioSetup, $"MADV_PAGEOUT freed {paged} page(s), not the one page the scenario swaps out");
        var swappedAgain = new int[1];
        var early = new int[1];
        var readers = new ControlledThread[Readers];
        for (var r = 0; r < Readers; r++)
        {
            var cpu = machine.Cpus[2 + r];
            readers[r] = ControlledThread.Start(() =>
            {
                if (Volatile.Read(ref swappedAgain[0]) == 0)
                {
                    Volatile.Write(ref early[0], 1);
                }

                var seen = cpu.Read(process, address);
                Specification.Assert(seen is 1 or 2, ZooBugKind.ScenarioSetup, $"a reader saw {seen}, neither the old value nor the write");
            }, $"reader{r}");
        }

        machine.Cpus[1].Write(process, address, 2);
        process.MadvisePageOut(address, Page);
        Volatile.Write(ref swappedAgain[0], 1);
        foreach (var reader in readers)
        {
            reader.Join();
        }

        probe?.Saw(Volatile.Read(ref early[0]) == 1 ? 0 : 1);
        var word = machine.Cpus[1].Read(process, address);
        Specification.Assert(word == 2, ZooBugKind.SwapSkipCacheStale, $"lost write: the process reads {word} at 0x{address:x}, not its store (2): a swap-in that skipped the swap cache mapped a copy read before the page was written and swapped out again into the same slot");
        AssertInvariants(machine);
    };
}
