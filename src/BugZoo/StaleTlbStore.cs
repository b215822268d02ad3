using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 7: the <c>mmu_gather</c> rule "unhook, invalidate the TLB, then free". Freed before the flush, a frame
/// can still be written through another CPU's cached translation.
/// </summary>
public static class StaleTlbStore
{
    /// <summary>The interleavings a run with the rule must meet.</summary>
    public static readonly string[] Events =
    [
        "the store landed while munmap ran",
        "the store faulted after the unmap",
    ];

    /// <summary>
    /// CPU 0 has a writable TLB entry for a page and stores through it again while another thread unmaps the page. The
    /// store may land before the flush (an access in flight), or fault afterwards; it must never reach the frame once
    /// it is free.
    /// </summary>
    public static Action Scenario(bool flushBeforeFree, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, FlushBeforeFree = flushBeforeFree }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var unmapping = new int[1];
        var writer = ControlledThread.Start(() =>
        {
            try
            {
                machine.Cpus[0].Write(process, address, 2);
                if (Volatile.Read(ref unmapping[0]) == 1)
                {
                    probe?.Saw(0);
                }
            }
            catch (SegmentationFault)
            {
                probe?.Saw(1);
            }
        }, "cpu0");
        Volatile.Write(ref unmapping[0], 1);
        process.Munmap(address, Page);
        Volatile.Write(ref unmapping[0], 2);
        writer.Join();

        Specification.Assert(machine.Stats.UseAfterFree == 0, ZooBugKind.UseAfterFree, $"use-after-free through a stale TLB entry: a store to 0x{address:x} reached a frame after munmap freed it");
        AssertInvariants(machine);
    };
}
