using Engine;
using Engine.Systematic;
using Engine.Testing;
using static BugZoo.ZooScenario;

namespace Conformance;

/// <summary>
/// Large folios under the tester: two faults allocating one folio, fork against a store into a folio, a munmap that
/// splits a folio against GUP-fast on it, reclaim's speculative reference against a split, and the MM-id slots under
/// three mms mapping and unmapping at once. Each scenario is a body for <see cref="TestingEngine.Run(Configuration, Action)"/>
/// that builds a fresh machine with folios of order 1 under the scheme it is given, states its property with
/// <see cref="Specification.Assert(bool, string)"/>, and counts what its vacuity guard needs in a
/// <see cref="FolioRaceCounters"/>. <see cref="All"/> lists them with their guards, for a run under any scheme.
/// </summary>
public static class FolioRaceScenarios
{
    /// <summary>The order of the scenarios' folios: two pages.</summary>
    public const int Order = 1;

    private const ulong Page = 4096;
    private const int Pages = 1 << Order;
    private const ulong FolioSize = Page * Pages;

    /// <summary>
    /// Every scenario with the budget its test gives it and its vacuity guard, in the order of FolioRaceTests; the
    /// last two exist under MM ids only.
    /// </summary>
    public static IReadOnlyList<FolioRace> All { get; } =
    [
        new("two-faults", "two faults on one folio map it once and both stores land", 2_000, null, TwoFaultsOnOneFolio,
            c => c.LostRaces > 0 ? null : "no fault ever lost the race for the range: the test proved nothing"),
        new("store-racing-fork", "a store into a folio racing fork never reaches the child after fork returns", 2_000, null, StoreIntoAFolioRacingFork,
            c => c.Copied > 0 ? null : "the parent never stored after fork shared the folio: the test proved nothing"),
        new("munmap-racing-gup-fast", "a partial munmap racing GUP-fast splits or keeps the folio, and the pin holds the right page", 2_000, null, PartialMunmapRacingGupFast,
            c => c.Splits > 0 && c.RefusedSplits > 0 ? null : $"the munmap split the folio in {c.Splits} schedules and was refused by the pin in {c.RefusedSplits}: both must happen"),
        new("reclaim-racing-split", "reclaim racing a split never misplaces a reference", 3_000, null, ReclaimRacingASplit,
            c => c.Splits > 0 && c.SwapOuts > 0 ? null : $"{c.Splits} splits and {c.SwapOuts} swap-outs in all: the race never ran"),
        new("mm-id-slots", "the MM-id slots never answer \"not shared\" while two mms map the folio", 2_000, [MapcountScheme.MmId],
            (_, counters) => MmIdSlotsUnderThreeMms(lockBit: true, counters),
            c => c.Cleared > 0 ? null : "the observer never saw the bit cleared by the child's unmap: the test proved nothing"),
        new("walk-vs-read-fault", "the tri-state's rmap walk never lowers the word under a mapping a read fault makes", 2_000, [MapcountScheme.TriState],
            (_, counters) => TriStateWalkRacingAReadFault(readFaultLocksPage: true, counters),
            c => c.MappedAfterLowering > 0 ? null : "the read fault never mapped the page after the walk lowered the word: the test proved nothing"),
        new("walk-vs-unlocked-read-fault", "the same with a read fault that maps without the page lock (ReadFaultLocksPage off)", 2_000, [MapcountScheme.TriState],
            (_, counters) => TriStateWalkRacingAReadFault(readFaultLocksPage: false, counters),
            c => c.MappedAfterLowering > 0 ? null : "the read fault never mapped the page after the walk lowered the word: the test proved nothing"),
    ];

    /// <summary>
    /// The tri-state's way down (docs/mapcount.md): writeback's <c>folio_mkclean</c> walks a dirty page-cache page
    /// whose word says "maybe more" but that nothing maps any more, while another process's read fault maps it. The
    /// walk may lower the word to "not mapped" only because no mapping can appear while it holds the page lock, which
    /// the read fault takes (<paramref name="readFaultLocksPage"/>); the checker then finds the word exact whatever the
    /// interleaving. Without the lock, the walk finds no entry, the fault maps the page ("maybe more" stays) and the
    /// walk lowers the word: "not mapped" of a mapped page, which truncation, eviction and mkclean would trust.
    /// </summary>
    public static Action TriStateWalkRacingAReadFault(bool readFaultLocksPage, FolioRaceCounters? counters) => () =>
    {
        using var machine = new Machine(new MachineOptions { Cpus = 2, Frames = 64, Mapcount = MapcountScheme.TriState, ReadFaultLocksPage = readFaultLocksPage });
        var file = machine.CreateFile("f", (long)Page);
        var a = machine.CreateProcess();
        var b = machine.CreateProcess();
        var inA = a.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var inB = b.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(a, inA, 7);
        Require.That(machine.Cpus[1].Read(b, inB) == 7, "b reads a's store");
        a.Munmap(inA, Page);
        var pfn = machine.Inspect().PfnAt(b, inB);
        b.MadviseDontNeed(inB, Page);
        Require.That(machine.Memmap.MapcountWord(pfn) == 1, "the page, mapped twice and then by nobody, is at \"maybe more\"");

        var reader = ControlledThread.Start(() => Specification.Assert(machine.Cpus[1].Read(b, inB) == 7, "the reader lost a's store"), "reader");
        machine.Writeback(file);
        reader.Join();
        if (machine.Inspect().PfnAt(b, inB) == pfn && machine.Memmap.MapcountWord(pfn) == 0)
        {
            // The fault mapped the page after the walk had brought the word down: "once", exactly.
            counters?.MapAfterLowering();
        }

        AssertInvariants(machine);
        a.Dispose();
        b.Dispose();
    };

    /// <summary>The scenario called <paramref name="name"/>.</summary>
    public static FolioRace Get(string name) => All.FirstOrDefault(r => r.Name == name)
        ?? throw new ArgumentException($"No large-folio race '{name}'. Known: {string.Join(", ", All.Select(r => r.Name))}.", nameof(name));

    /// <summary>The machine every scenario but reclaim's runs on: two CPUs, 64 frames, folios of order 1, no swap.</summary>
    private static Machine FolioMachine(MapcountScheme scheme, bool lockBit = true)
        => new(new MachineOptions { Cpus = 2, Frames = 64, AnonFolioOrder = Order, Mapcount = scheme, SwapSlots = 0, LargeMapcountLock = lockBit });

    /// <summary>
    /// Two CPUs write the two pages of an empty folio-sized range at once: both faults find the range empty and
    /// allocate a folio, one maps it, the other finds the range taken under the PTL, frees its folio and retries into
    /// the winner's. Both stores land, one folio is mapped, nothing leaks.
    /// </summary>
    public static Action TwoFaultsOnOneFolio(MapcountScheme scheme, FolioRaceCounters counters) => () =>
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
            counters.LostRace();
        }

        AssertInvariants(machine);
        process.Dispose();
    };

    /// <summary>
    /// Fork while the parent stores into a page of a folio: whatever the order, the child's memory does not change
    /// after fork returned, and the parent keeps its last store (ForkRaceTests' property, on a large folio).
    /// </summary>
    public static Action StoreIntoAFolioRacingFork(MapcountScheme scheme, FolioRaceCounters counters) => () =>
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
            counters.Copy();
        }

        AssertInvariants(machine);
        child.Dispose();
        parent.Dispose();
    };

    /// <summary>
    /// A munmap of the folio's first page (which splits the folio) against GUP-fast pinning its second page: the pin
    /// is taken on the folio or on the page the split left, never on the wrong one, and the split is refused while the
    /// pin holds the folio. The pin sees the process's store, the unmapped page is freed, nothing leaks.
    /// </summary>
    public static Action PartialMunmapRacingGupFast(MapcountScheme scheme, FolioRaceCounters counters) => () =>
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
        counters.Split(machine.Stats.FolioSplits, machine.Stats.FolioSplitsRefused);
        AssertInvariants(machine);
        process.Dispose();
    };

    /// <summary>
    /// Reclaim's hand takes a speculative reference on a tail page while an mprotect through the folio splits it
    /// (found by the zoo's entry 12 under <c>--proposal folios</c>): the reference must land on the page's folio as it is
    /// once taken, not on the old head, or reclaim later drops it from the tail and frees a mapped page. Every page is
    /// either swapped out or still mapped with its data, and the invariants hold.
    /// </summary>
    public static Action ReclaimRacingASplit(MapcountScheme scheme, FolioRaceCounters counters) => () =>
    {
        using var machine = new Machine(new MachineOptions { Cpus = 2, Frames = 64, AnonFolioOrder = Order, Mapcount = scheme, SwapSlots = 8 });
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

        counters.Split(machine.Stats.FolioSplits, 0);
        counters.SwappedOut(machine.Stats.SwapOuts);
        AssertInvariants(machine);
        process.Dispose();
    };

    /// <summary>
    /// The MM-id protocol under three mms: the parent and a child map a folio; the child unmaps it while the parent
    /// forks a second child (which maps it too) and an observer reads the folio's MM-id state under its lock bit at
    /// every one of its steps. Each snapshot must be consistent: a clear "maybe mapped shared" bit only while one slot
    /// counts every mapping, which (slots never count more than their mm maps) means one mm alone maps the folio: no
    /// false negative. At the end the census agrees (CheckInvariants' SharedFalseNegative). With
    /// <paramref name="lockBit"/> off (<see cref="MachineOptions.LargeMapcountLock"/>) the slots lose track.
    /// </summary>
    public static Action MmIdSlotsUnderThreeMms(bool lockBit, FolioRaceCounters? counters) => () =>
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
                    counters?.SawCleared();
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
