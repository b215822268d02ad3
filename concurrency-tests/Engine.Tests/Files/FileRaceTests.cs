using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Files;

/// <summary>
/// Further races on file mappings under the tester (issue 4): a write fault vs writeback, a write fault vs munmap on
/// a shared mapping, and a private copy-on-write of a file page vs writeback of the same page.
/// </summary>
public sealed class FileRaceTests
{
    private const int Schedules = 10_000;

    [Fact]
    public void AWriteFaultRacingWritebackIsNeverLost()
    {
        var copied = new int[2]; // the racing writeback copied the old value, the new one
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), () =>
        {
            using var machine = SmallMachine();
            var file = machine.CreateFile("data", (long)Page);
            var process = machine.CreateProcess();
            var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
            machine.Cpus[0].Write(process, address, 1);
            machine.Writeback(file);

            // The entry is clean and read-only now: the store below takes wp_page_shared while writeback runs.
            var writer = ControlledThread.Start(() => machine.Cpus[0].Write(process, address, 2), "cpu0");
            machine.Writeback(file);
            Interlocked.Increment(ref copied[file.ReadStored(0) == 2 ? 1 : 0]);
            writer.Join();

            machine.Writeback(file);
            Specification.Assert(file.ReadStored(0) == 2, $"lost store: the backing store holds {file.ReadStored(0)}, not 2");
            AssertInvariants(machine);
        });

        AssertClean(report);
        Assert.True(copied[0] > 0 && copied[1] > 0, $"the racing writeback copied (old, new): {copied[0]}, {copied[1]}");
    }

    [Fact]
    public void AWriteFaultRacingMunmapOfASharedMappingEitherReachesTheFileOrSegfaults()
    {
        var outcomes = new int[2]; // landed, segmentation fault
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), () =>
        {
            using var machine = SmallMachine();
            var initial = machine.FreeFrames;
            var file = machine.CreateFile("data", (long)Page);
            var process = machine.CreateProcess();
            var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
            var landed = new int[1];
            var writer = ControlledThread.Start(() =>
            {
                try
                {
                    machine.Cpus[0].Write(process, address, 5);
                    Volatile.Write(ref landed[0], 1);
                }
                catch (SegmentationFault)
                {
                }
            }, "cpu0");
            process.Munmap(address, Page);
            writer.Join();
            Interlocked.Increment(ref outcomes[landed[0] == 1 ? 0 : 1]);

            AssertInvariants(machine);
            machine.Writeback(file);
            var expected = landed[0] == 1 ? 5UL : 0UL;
            Specification.Assert(file.ReadStored(0) == expected, $"the backing store holds {file.ReadStored(0)}, expected {expected}");
            process.Dispose();
            machine.EvictCleanPages();
            Specification.Assert(machine.FreeFrames == initial, $"{initial - machine.FreeFrames} frame(s) leaked");
        });

        AssertClean(report);
        Assert.True(outcomes[0] > 0 && outcomes[1] > 0, $"outcomes (landed, segfault): {outcomes[0]}, {outcomes[1]}");
    }

    [Fact]
    public void APrivateCopyRacingWritebackOfTheSamePageNeverReachesTheFile()
    {
        var copiedDuringWriteback = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), () =>
        {
            using var machine = SmallMachine();
            var file = machine.CreateFile("data", (long)Page);
            var sharer = machine.CreateProcess();
            var shared = sharer.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
            machine.Cpus[1].Write(sharer, shared, 1);
            var owner = machine.CreateProcess();
            var privately = owner.Mmap(Page, Prot.ReadWrite, MapFlags.Private, file, 0);
            Specification.Assert(machine.Cpus[0].Read(owner, privately) == 1, "the private mapping does not see the file's data");

            var writingBack = new int[1];
            var writer = ControlledThread.Start(() =>
            {
                machine.Cpus[0].Write(owner, privately, 7);
                if (Volatile.Read(ref writingBack[0]) == 1)
                {
                    Interlocked.Increment(ref copiedDuringWriteback);
                }
            }, "cpu0");
            Volatile.Write(ref writingBack[0], 1);
            machine.Writeback(file);
            Volatile.Write(ref writingBack[0], 2);
            writer.Join();

            machine.Writeback(file);
            Specification.Assert(file.ReadStored(0) == 1, $"a private store reached the file: it holds {file.ReadStored(0)}");
            Specification.Assert(machine.Cpus[0].Read(owner, privately) == 7, "the private copy lost its store");
            Specification.Assert(machine.Cpus[1].Read(sharer, shared) == 1, "the shared mapping sees the private store");
            AssertInvariants(machine);
        });

        AssertClean(report);
        Assert.True(copiedDuringWriteback > 0, "the private copy never happened while writeback ran: the test proved nothing");
    }

    [Fact]
    public void AWritebackReturnsOnlyOnceEveryEarlierStoreIsStoredEvenBesideAnotherWriteback()
    {
        var waited = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), ConcurrentWritebacks(waits: true, () => Interlocked.Increment(ref waited)));
        AssertClean(report);
        Assert.True(waited > 0, "the second writeback never found the first one's copy in flight: the test proved nothing");
    }

    [Fact]
    public void WithoutWaitingForWritebackInFlightAnOlderCopyWinsForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(ConcurrentWritebacks(waits: false, onInFlight: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("after Writeback returned", bug.Message);
        });
    }

    /// <summary>
    /// fsync semantics with two callers: a writeback thread runs while the main thread stores 2 and then writes the
    /// file back itself; when its call returns the backing store must hold 2, whichever writeback copied what.
    /// </summary>
    internal static Action ConcurrentWritebacks(bool waits, Action? onInFlight) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SyncWritebackWaits = waits });
        var file = machine.CreateFile("data", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address, 1);
        var pfn = Rmap.RmapProbe.PfnAt(machine, process, address);
        var other = ControlledThread.Start(() => machine.Writeback(file), "writeback");
        machine.Cpus[0].Write(process, address, 2);
        if (machine.Memmap.TestFlags(pfn, Engine.Memory.PageFlags.Writeback))
        {
            onInFlight?.Invoke();
        }

        machine.Writeback(file);
        var stored = file.ReadStored(0);
        other.Join();
        Specification.Assert(stored == 2, $"the backing store held {stored} after Writeback returned, not the 2 stored before the call");
        AssertInvariants(machine);
    };
}
