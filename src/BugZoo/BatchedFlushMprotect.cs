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
    /// CPU 1 stores to a page (its TLB now holds a writable translation); kswapd reclaims the page while the process
    /// makes it read-only; then CPU 1 stores again, which must fault.
    /// </summary>
    public static Action Scenario(bool flushBatchedPending, ZooProbe? probe) => () =>
    {
        using var machine = new Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 8, FlushTlbBatchedPending = flushBatchedPending });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(process, address, 1);
        var kswapd = ControlledThread.Start(() => machine.Reclaim(1), "kswapd");
        process.Mprotect(address, Page, Prot.Read);
        probe?.Saw(machine.Inspect().EntryAt(process, address).IsPresent ? 0 : 1);

        var stored = true;
        try
        {
            machine.Cpus[1].Write(process, address, 2);
        }
        catch (SegmentationFault)
        {
            stored = false;
        }

        kswapd.Join();
        Specification.Assert(!stored, ZooBugKind.StoreAfterMprotect, $"stale TLB after mprotect: CPU 1's store to 0x{address:x} succeeded after mprotect(PROT_READ) returned: reclaim had cleared the entry and deferred its flush, and mprotect flushed nothing");
        AssertInvariants(machine);
    };
}
