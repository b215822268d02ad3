using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 11: reclaim's <c>__remove_mapping</c> must freeze the page's refcount at the holders it expects before it
/// tests the dirty flag. A GUP user (direct I/O through <c>get_user_pages</c>, before pins) that writes into the page,
/// dirties it and drops its reference between a dirty test done first and the freeze is not seen: the page is freed,
/// and its swap slot holds the data from before the write.
/// </summary>
public static class ReclaimFreezeDirty
{
    /// <summary>The interleavings a run with the fix must meet.</summary>
    public static readonly string[] Events =
    [
        "the I/O finished before reclaim took the page",
        "the I/O finished while reclaim held the page",
    ];

    /// <summary>
    /// A direct-I/O read into four pages of a process: a GUP reference with write access on each; reclaim swaps the
    /// pages out, again and again while the I/O is in flight, and the I/O completes page by page (writes the data,
    /// dirties the page, drops the reference). The process then reads the I/O's data in every page, through swap or not.
    /// </summary>
    public static Action Scenario(bool freezeFirst, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        const int Pages = 4;
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 8, FreezeBeforeDirtyTest = freezeFirst }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var io = new PageReferences[Pages];
        for (var i = 0; i < Pages; i++)
        {
            machine.Cpus[0].Write(process, address + ((ulong)i * Page), 1);
            io[i] = machine.Cpus[0].GetUserPages(process, address + ((ulong)i * Page), 1, GupFlags.Write);
        }

        var done = new int[1];
        var device = ControlledThread.Start(() =>
        {
            for (var i = 0; i < Pages; i++)
            {
                io[i].Write(0, 0, 0xD10 + (ulong)i);
                io[i].Dispose();
            }

            Volatile.Write(ref done[0], 1);
        }, "direct-io");
        var before = Volatile.Read(ref done[0]);

        // kswapd keeps at it while the I/O is in flight: pages it could not free (a reference held) it meets again.
        var freed = 0;
        for (var round = 0; round < 8 && Volatile.Read(ref done[0]) == 0; round++)
        {
            freed += machine.Reclaim(Pages);
        }

        device.Join();
        probe?.Saw(before == 1 ? 0 : 1);
        for (var i = 0; i < Pages; i++)
        {
            var at = address + ((ulong)i * Page);
            var word = machine.Cpus[1].Read(process, at);
            Specification.Assert(word == 0xD10 + (ulong)i, ZooBugKind.SwapDataLost, $"lost I/O: the process reads 0x{word:x} at 0x{at:x}, not what the direct I/O wrote (0x{0xD10 + i:x}): reclaim freed the page after the I/O dirtied it ({freed} page(s) freed)");
        }

        AssertInvariants(machine);
    };
}
