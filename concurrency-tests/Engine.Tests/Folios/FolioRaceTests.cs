using Engine.Systematic;
using Engine.Testing;
using Engine.Tests.Machine;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Folios;

/// <summary>
/// Large folios under the tester: two faults allocating one folio, fork against a store into a folio, a munmap that
/// splits a folio against GUP-fast on it, and the MM-id slots under three mms mapping and unmapping at once.
/// </summary>
public sealed class FolioRaceTests
{
    private const int Order = 1;
    private const int Pages = 1 << Order;
    private const ulong FolioSize = Page * Pages;

    private static Engine.Machine FolioMachine(MapcountScheme scheme, bool lockBit = true)
        => new(new MachineOptions { Cpus = 2, Frames = 64, AnonFolioOrder = Order, Mapcount = scheme, SwapSlots = 0, LargeMapcountLock = lockBit });

    /// <summary>
    /// Two CPUs write the two pages of an empty folio-sized range at once: both faults find the range empty and
    /// allocate a folio, one maps it, the other finds the range taken under the PTL, frees its folio and retries into
    /// the winner's. Both stores land, one folio is mapped, nothing leaks.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void TwoFaultsOnOneFolioMapItOnceAndBothStoresLand(MapcountScheme scheme)
    {
        var lost = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), () =>
        {
            using var machine = FolioMachine(scheme);
            var process = machine.CreateProcess();
            var address = process.Mmap(FolioSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            var other = ControlledThread.Start(() => machine.Cpus[1].Write(process, address + Page, 2), "cpu1");
            machine.Cpus[0].Write(process, address, 1);
            other.Join();

            Specification.Assert(machine.Cpus[0].Read(process, address) == 1 && machine.Cpus[1].Read(process, address + Page) == 2, "a store was lost");
            Specification.Assert(machine.Stats.AnonFolioFaults == 1, $"{machine.Stats.AnonFolioFaults} folios were mapped for one range");
            if (machine.Stats.FaultRetries > 0)
            {
                Interlocked.Increment(ref lost);
            }

            AssertInvariants(machine);
            process.Dispose();
        });
        AssertClean(report);
        Assert.True(lost > 0, "no fault ever lost the race for the range: the test proved nothing");
    }

    /// <summary>
    /// Fork while the parent stores into a page of a folio: whatever the order, the child's memory does not change
    /// after fork returned, and the parent keeps its last store (ForkRaceTests' property, on a large folio).
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void AStoreIntoAFolioRacingForkNeverReachesTheChildAfterForkReturns(MapcountScheme scheme)
    {
        var copied = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), () =>
        {
            using var machine = FolioMachine(scheme);
            var parent = machine.CreateProcess();
            var address = parent.Mmap(FolioSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(parent, address, 1);
            var writer = ControlledThread.Start(() =>
            {
                machine.Cpus[0].Write(parent, address + Page, 2);
                machine.Cpus[0].Write(parent, address + Page, 3);
            }, "parent-thread");

            var child = parent.Fork();
            var atReturn = machine.Cpus[1].Read(child, address + Page);
            writer.Join();
            var later = machine.Cpus[1].Read(child, address + Page);

            Specification.Assert(later == atReturn, $"the child read {atReturn} when fork returned and {later} afterwards: a parent store leaked into a shared folio");
            Specification.Assert(machine.Cpus[1].Read(parent, address + Page) == 3, "the parent's last store was lost");
            if (machine.Stats.CowCopies > 0)
            {
                Interlocked.Increment(ref copied);
            }

            AssertInvariants(machine);
            child.Dispose();
            parent.Dispose();
        });
        AssertClean(report);
        Assert.True(copied > 0, "the parent never stored after fork shared the folio: the test proved nothing");
    }

    /// <summary>
    /// A munmap of the folio's first page (which splits the folio) against GUP-fast pinning its second page: the pin
    /// is taken on the folio or on the page the split left, never on the wrong one, and the split is refused while the
    /// pin holds the folio. The pin sees the process's store, the unmapped page is freed, nothing leaks.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void APartialMunmapRacingGupFastSplitsOrKeepsTheFolioAndThePinHoldsTheRightPage(MapcountScheme scheme)
    {
        int split = 0, refused = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), () =>
        {
            using var machine = FolioMachine(scheme);
            var process = machine.CreateProcess();
            var address = process.Mmap(2 * FolioSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(process, address, 1);
            machine.Cpus[0].Write(process, address + Page, 2);
            var pinner = ControlledThread.Start(() =>
            {
                using var pin = machine.Cpus[1].PinUserPages(process, address + Page, 1, GupFlags.Write | GupFlags.LongTerm);
                Specification.Assert(pin.Read(0, 0) == 2, $"the pin of the folio's second page reads {pin.Read(0, 0)}, not 2");
                pin.Write(0, 0, 5);
                Specification.Assert(machine.Cpus[1].Read(process, address + Page) == 5, "the pin's store did not reach the process: it pins another page");
            }, "gup-fast");
            process.Munmap(address, Page);
            pinner.Join();

            Specification.Assert(machine.Cpus[0].Read(process, address + Page) == 5, "the pin's store was lost");
            Interlocked.Add(ref split, (int)machine.Stats.FolioSplits);
            Interlocked.Add(ref refused, (int)machine.Stats.FolioSplitsRefused);
            AssertInvariants(machine);
            process.Dispose();
        });
        AssertClean(report);
        Assert.True(split > 0 && refused > 0, $"the munmap split the folio in {split} schedules and was refused by the pin in {refused}: both must happen");
    }

    /// <summary>
    /// Reclaim's hand takes a speculative reference on a tail page while an mprotect through the folio splits it
    /// (found by the zoo's entry 12 under <c>--proposal folios</c>): the reference must land on the page's folio as it is
    /// once taken, not on the old head, or reclaim later drops it from the tail and frees a mapped page. Every page is
    /// either swapped out or still mapped with its data, and the invariants hold.
    /// </summary>
    [Theory]
    [InlineData(MapcountScheme.PerPage)]
    [InlineData(MapcountScheme.MmId)]
    public void ReclaimRacingASplitNeverMisplacesAReference(MapcountScheme scheme)
    {
        int split = 0, swapped = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(3_000), () =>
        {
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, AnonFolioOrder = Order, Mapcount = scheme, SwapSlots = 8 });
            var process = machine.CreateProcess();
            var address = process.Mmap(2 * FolioSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            for (var i = 0UL; i < 2 * Pages; i++)
            {
                machine.Cpus[1].Write(process, address + (i * Page), 10 + i);
            }

            var kswapd = ControlledThread.Start(() => machine.Reclaim(2 * Pages), "kswapd");
            process.Mprotect(address, Page, Prot.Read);
            kswapd.Join();

            for (var i = 0UL; i < 2 * Pages; i++)
            {
                var read = machine.Cpus[0].Read(process, address + (i * Page));
                Specification.Assert(read == 10 + i, $"page {i} reads {read}, not {10 + i}");
            }

            Interlocked.Add(ref split, (int)machine.Stats.FolioSplits);
            Interlocked.Add(ref swapped, (int)machine.Stats.SwapOuts);
            AssertInvariants(machine);
            process.Dispose();
        });
        AssertClean(report);
        Assert.True(split > 0 && swapped > 0, $"{split} splits and {swapped} swap-outs in all: the race never ran");
    }

    /// <summary>
    /// The MM-id protocol under three mms: the parent and a child map a folio; the child unmaps it while the parent
    /// forks a second child (which maps it too) and an observer reads the folio's MM-id state under its lock bit at
    /// every one of its steps. Each snapshot must be consistent: a clear "maybe mapped shared" bit only while one slot
    /// counts every mapping, which (slots never count more than their mm maps) means one mm alone maps the folio: no
    /// false negative. At the end the census agrees (CheckInvariants' SharedFalseNegative).
    /// </summary>
    [Fact]
    public void TheMmIdSlotsNeverAnswerNotSharedWhileTwoMmsMapTheFolio()
    {
        var cleared = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), MmIdSlotsUnderThreeMms(lockBit: true, () => Interlocked.Increment(ref cleared)));
        AssertClean(report);
        Assert.True(cleared > 0, "the observer never saw the bit cleared by the child's unmap: the test proved nothing");
    }

    [Fact]
    public void WithoutTheLockBitTheSlotsLoseTrackAndTheFolioLooksExclusive()
    {
        AssertFoundForEachOfTenSeeds(MmIdSlotsUnderThreeMms(lockBit: false, onCleared: null), bug =>
            Assert.Contains("maybe mapped shared", bug.Message, StringComparison.Ordinal));
    }

    private static Action MmIdSlotsUnderThreeMms(bool lockBit, Action? onCleared) => () =>
    {
        using var machine = FolioMachine(MapcountScheme.MmId, lockBit);
        var parent = machine.CreateProcess();
        var address = parent.Mmap(FolioSize, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        var head = machine.Memmap.Head(machine.Inspect().PfnAt(parent, address));
        var first = parent.Fork();
        Process? second = null;

        var observer = ControlledThread.Start(() =>
        {
            for (var i = 0; i < 6; i++)
            {
                var (total, slot0, slot1, shared) = machine.Memmap.MmIdSnapshot(head);
                Specification.Assert(shared || total <= 1 || slot0.Count == total || slot1.Count == total,
                    $"the folio's \"maybe mapped shared\" bit is clear with {total} mappings, but its slots count only (mm {slot0.Id}: {slot0.Count}, mm {slot1.Id}: {slot1.Count}): a false negative");
                if (!shared && total == Pages)
                {
                    onCleared?.Invoke();
                }
            }
        }, "observer");
        var unmapper = ControlledThread.Start(() => first.Munmap(address, FolioSize), "child-munmap");
        second = parent.Fork();
        unmapper.Join();
        observer.Join();

        var (finalTotal, _, _, finalShared) = machine.Memmap.MmIdSnapshot(head);
        Specification.Assert(finalTotal == 2 * Pages && finalShared, $"after the unmap and the fork the folio has {finalTotal} mappings and the bit {(finalShared ? "set" : "clear")}: parent and second child map it");
        AssertInvariants(machine);
        second.Dispose();
        first.Dispose();
        parent.Dispose();
    };
}
