using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Machine;

/// <summary>
/// Races that <c>engine stress</c>'s targeted mixes found on real threads, as schedules for the tester: each passes
/// 10,000 schedules with the fix.
/// </summary>
public sealed class StressFoundRaceTests
{
    /// <summary>
    /// CPU 1 stores again and again while CPU 0 stores, zaps, stores and zaps the page. The shootdown's guard for walks
    /// in flight waited for CPU 1 to leave the access that filled a stale entry, invalidated again, and returned: but
    /// CPU 1 had begun another access meanwhile, which hit the stale entry and stored into the frame after the zap
    /// freed it. The flush now waits once more after the second invalidation.
    /// </summary>
    [Fact]
    public void StoresAgainstMadviseNeverReachAFreedFrame()
    {
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10_000), () =>
        {
            using var machine = SmallMachine();
            var process = machine.CreateProcess();
            var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            var other = ControlledThread.Start(() =>
            {
                for (var i = 0; i < 3; i++)
                {
                    machine.Cpus[1].Write(process, address + 8, (ulong)i + 1);
                }
            }, "cpu1");
            machine.Cpus[0].Write(process, address, 1);
            process.MadviseDontNeed(address, Page);
            machine.Cpus[0].Write(process, address, 2);
            process.MadviseDontNeed(address, Page);
            other.Join();
            Specification.Assert(machine.Stats.UseAfterFree == 0, "use-after-free");
            AssertInvariants(machine);
        });

        AssertClean(report);
    }

    /// <summary>
    /// CPU 1 faults a file page in while CPU 0 faults it in too, stores, writes it back, zaps and evicts it. A fill
    /// that read the backing store before all that, and published its frame after the eviction, brought back the
    /// older contents: CPU 0's store was gone from the cache, and the next writeback would have put the old word back
    /// on the store. The fill now reads the store under the index lock, with the slot empty.
    /// </summary>
    [Fact]
    public void AFillNeverPublishesContentsOlderThanTheBackingStore()
    {
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10_000), () =>
        {
            using var machine = SmallMachine();
            var file = machine.CreateFile("data", (long)Page);
            var process = machine.CreateProcess();
            var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
            var reader = ControlledThread.Start(() => machine.Cpus[1].Read(process, address), "cpu1");
            machine.Cpus[0].Write(process, address, 5);
            machine.Writeback(file);
            process.MadviseDontNeed(address, Page);
            machine.EvictCleanPages(file);
            reader.Join();
            var value = machine.Cpus[0].Read(process, address);
            Specification.Assert(value == 5, $"lost store: the page reads {value} after CPU 0's store 5 was written back and the page evicted: a fill published older contents");
            AssertInvariants(machine);
        });

        AssertClean(report);
    }
}
