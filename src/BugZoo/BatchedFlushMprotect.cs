using Engine;
using Engine.Systematic;
using Engine.Testing;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 12: reclaim clears a page's entry and defers its TLB flush to the end of its batch; an mprotect(PROT_READ)
/// that runs in between finds no present entry to write-protect, so it flushes nothing and returns while another CPU
/// still holds a writable translation: a store made after mprotect returned lands in the page ("mm, mprotect: flush
/// TLB if potentially racing with a parallel reclaim leaving stale TLB entries", 3ea277194daa, 4.13).
/// </summary>
public static class BatchedFlushMprotect
{
    /// <summary>The interleavings a run with the fix must meet.</summary>
    public static readonly string[] Events =
    [
        "mprotect found the page still mapped",
        "mprotect found reclaim's swap entry",
    ];

    /// <summary>
    /// CPU 1 stores to four pages (its TLB now holds writable translations); kswapd reclaims them while the process
    /// makes them read-only one by one, and after each mprotect returns CPU 1 stores to that page again, which must
    /// fault.
    /// </summary>
    public static Action Scenario(bool flushBatchedPending, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        const int Pages = 4;
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 8, FlushTlbBatchedPending = flushBatchedPending }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var i = 0UL; i < Pages; i++)
        {
            machine.Cpus[1].Write(process, address + (i * Page), 1);
        }

        var kswapd = ControlledThread.Start(() => machine.Reclaim(Pages), "kswapd");
        var stored = -1L;
        var sawMapped = false;
        for (var i = 0UL; i < Pages && stored < 0; i++)
        {
            var at = address + (i * Page);
            process.Mprotect(at, Page, Prot.Read);
            sawMapped |= machine.Inspect().EntryAt(process, at).IsPresent;
            try
            {
                machine.Cpus[1].Write(process, at, 2);
                stored = (long)at;
            }
            catch (SegmentationFault)
            {
            }
        }

        kswapd.Join();
        probe?.Saw(sawMapped ? 0 : 1);
        Specification.Assert(stored < 0, ZooBugKind.StoreAfterMprotect, $"stale TLB after mprotect: CPU 1's store to 0x{stored:x} succeeded after mprotect(PROT_READ) returned: reclaim had cleared the entry (or, under rule (d), write-protected it) and deferred its flush, and mprotect flushed nothing");
        AssertInvariants(machine);
    };
}
