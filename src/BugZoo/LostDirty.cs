using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 6, the 2022 lost-dirty race (seed 004; protocol reference section 4). CPU A keeps storing to a shared
/// file mapping through a writable+dirty TLB entry (one store before the threads start, one racing); another thread
/// zaps the range with madvise(DONTNEED) or munmap; a third writes the file back. After everything quiesces, a final
/// writeback and an eviction, the backing store must hold A's last store.
/// </summary>
public static class LostDirty
{
    /// <summary>The interleaving a run with the fix must meet.</summary>
    public static readonly string[] Events =
    [
        "writeback copied out a store made while the zap ran",
    ];

    /// <summary>
    /// Eight dirty pages: the zap goes on clearing the other seven after the first, as a real zap of a range does, so
    /// the window between clearing the first entry and the flush is as long as in the kernel.
    /// </summary>
    private const ulong Pages = 8;

    /// <summary>
    /// The scenario; with <paramref name="munmap"/> the zap is munmap's, and A's store may come after the range is gone
    /// (a segmentation fault: nothing was stored, and the file must keep 1).
    /// </summary>
    public static Action Scenario(bool delayRmap, bool flushDirtyUnderPtl, ZooProbe? probe, bool munmap = false, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, DelayRmap = delayRmap, FlushDirtyUnderPtl = flushDirtyUnderPtl }));
        var file = machine.CreateFile("data", (long)(Pages * Page));
        var process = machine.CreateProcess();
        var address = process.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var a = machine.Cpus[0];
        for (ulong page = 0; page < Pages; page++)
        {
            a.Write(process, address + (page * Page), 1);
        }

        var zapping = new int[1];
        var landed = new int[1];
        var storer = ControlledThread.Start(() =>
        {
            // A keeps computing between its stores: Yield tells the strategies it is content to run later, so its next
            // store falls anywhere in the zap and the writeback, not mostly before them.
            Engine.Sync.SchedulingPoint.Yield();
            try
            {
                a.Write(process, address, 2);
                Volatile.Write(ref landed[0], 1);
            }
            catch (SegmentationFault) when (munmap)
            {
            }
        }, "cpu-a");
        var writeback = ControlledThread.Start(() =>
        {
            machine.Writeback(file);
            if (Volatile.Read(ref zapping[0]) == 1 && file.ReadStored(0) >= 2)
            {
                probe?.Saw(0);
            }
        }, "writeback");
        Volatile.Write(ref zapping[0], 1);
        if (munmap)
        {
            process.Munmap(address, Pages * Page);
        }
        else
        {
            process.MadviseDontNeed(address, Pages * Page);
        }

        Volatile.Write(ref zapping[0], 2);
        storer.Join();
        writeback.Join();

        machine.Writeback(file);
        machine.EvictCleanPages(file);
        var stored = file.ReadStored(0);
        var last = Volatile.Read(ref landed[0]) == 1 ? 2UL : 1UL;
        Specification.Assert(stored == last, ZooBugKind.LostStore, $"lost store: CPU A's last store ({last}) at 0x{address:x} is not in the backing store, which holds {stored}");
        for (var page = 1; page < (int)Pages; page++)
        {
            Specification.Assert(file.ReadStored(page * (long)Page) == 1, ZooBugKind.LostStore, $"lost store: page {page} of the file holds {file.ReadStored(page * (long)Page)}, not 1");
        }

        AssertInvariants(machine);
    };
}
