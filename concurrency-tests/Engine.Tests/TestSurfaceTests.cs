using System.Reflection;
using System.Runtime.CompilerServices;
using Engine.PageTables;
using Engine.Systematic;
using Engine.Testing;

namespace Engine.Tests;

/// <summary>
/// The engine's public test surface (<c>Engine.Testing</c>: <see cref="MachineInspector"/>, <see cref="PageTableEntry"/>,
/// <see cref="PteSlot"/>, and the test setting <see cref="MachineOptions.RefcountLimit"/>), which the bug zoo uses
/// instead of the engine's internals: its values agree with the internal view, it checks its arguments, its reads are
/// the same scheduling points as the internal reads they replace, and the engine opens its internals to no product
/// assembly.
/// </summary>
public sealed class TestSurfaceTests
{
    private const ulong Page = 4096;

    public static TheoryData<PteLayout> Layouts => new(PteLayout.Native64, PteLayout.SplitPae);

    [Theory]
    [MemberData(nameof(Layouts))]
    public void EveryReadAgreesWithTheInternalViewOfTheEntry(PteLayout layout)
    {
        using var machine = Small(layout);
        var inspector = machine.Inspect();
        Assert.Same(machine, inspector.Machine);
        var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);

        // Nothing mapped yet: no PTE table covers the range.
        Assert.Equal(-1, machine.Tables.WalkToPteTable(process.Mm.Pgd, address));
        Assert.True(inspector.EntryAt(process, address).IsNone);
        Assert.Equal(PageTableEntry.None, inspector.EntryAt(process, address));
        Assert.Equal(-1, inspector.PfnAt(process, address));
        Assert.True(inspector.ReadEntryLockless(machine.Cpus[0], process, address).IsNone);
        Assert.Throws<InvalidOperationException>(() => inspector.LocateEntry(process, address));

        // A read maps the zero page (a special entry: no frame of the process's own), a write a page of its own.
        machine.Cpus[0].Read(process, address);
        machine.Cpus[0].Write(process, address + Page, 7);
        AgreesWithTheInternalView(machine, process, address, expectedPfn: -1);
        Assert.Equal(machine.ZeroPfn, inspector.EntryAt(process, address).Pfn);
        var page = machine.Tables.WalkToPteTable(process.Mm.Pgd, address + Page);
        AgreesWithTheInternalView(machine, process, address + Page, expectedPfn: machine.Ptes.PtepGet(page, PageTableSet.Index(address + Page, 1)).Pfn);

        // A page of the table that was never touched, and one that madvise emptied: none, with the table in place.
        AgreesWithTheInternalView(machine, process, address + (2 * Page), expectedPfn: -1);
        Assert.True(inspector.EntryAt(process, address + (2 * Page)).IsNone);
        process.MadviseDontNeed(address + Page, Page);
        AgreesWithTheInternalView(machine, process, address + Page, expectedPfn: -1);
        Assert.True(inspector.EntryAt(process, address + Page).IsNone);
        machine.CheckInvariants();
    }

    [Fact]
    public void OnSplitPaeTheHighHalfCarriesPfnBitsAndTheHalvesMakeTheValue()
    {
        using var machine = Small(PteLayout.SplitPae);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(process, address, 1);

        var entry = machine.Inspect().EntryAt(process, address);
        Assert.True(entry.IsPresent);
        Assert.True(entry.Pfn >= 1L << 20, $"pfn 0x{entry.Pfn:x} is below 4 GiB");
        Assert.NotEqual(0U, entry.High);
        Assert.Equal(entry.Value, ((ulong)entry.High << 32) | entry.Low);
        Assert.Equal((ulong)entry.Pfn, (entry.Value >> 12) & ((1UL << 40) - 1));
        Assert.Contains(FormattableString.Invariant($"pfn 0x{entry.Pfn:x}"), entry.ToString(), StringComparison.Ordinal);
        Assert.Equal("none", PageTableEntry.None.ToString());
    }

    [Fact]
    public void ASlotReadsTheSameEntryAgainWithoutWalking()
    {
        using var machine = Small(PteLayout.Native64);
        var inspector = machine.Inspect();
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);

        var slot = inspector.LocateEntry(process, address);
        Assert.Equal(machine.Tables.WalkToPteTable(process.Mm.Pgd, address), slot.Table);
        Assert.Equal(PageTableSet.Index(address, 1), slot.Index);
        Assert.Equal(inspector.EntryAt(process, address), inspector.ReadEntry(slot));
        Assert.Equal(slot, inspector.LocateEntry(process, address));

        process.MadviseDontNeed(address, Page);
        Assert.True(inspector.ReadEntry(slot).IsNone);
        machine.Cpus[0].Write(process, address, 2);
        Assert.Equal(inspector.PfnAt(process, address), inspector.ReadEntry(slot).Pfn);
    }

    [Fact]
    public void EveryMethodChecksItsArguments()
    {
        using var machine = Small(PteLayout.Native64);
        using var other = Small(PteLayout.Native64);
        var inspector = machine.Inspect();
        var process = machine.CreateProcess();
        var stranger = other.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var cpu = machine.Cpus[0];

        Assert.Throws<ArgumentNullException>(() => MachineInspection.Inspect(null!));

        // Every method that takes a process and an address checks them the same way.
        var reads = new (string Name, Action<Process, ulong> Read)[]
        {
            ("EntryAt", (p, a) => inspector.EntryAt(p, a)),
            ("LocateEntry", (p, a) => inspector.LocateEntry(p, a)),
            ("PfnAt", (p, a) => inspector.PfnAt(p, a)),
            ("ReadEntryLockless", (p, a) => inspector.ReadEntryLockless(cpu, p, a)),
        };
        foreach (var (name, read) in reads)
        {
            Assert.Equal("process", Assert.Throws<ArgumentNullException>(() => read(null!, address)).ParamName);
            var foreign = Assert.Throws<ArgumentException>(() => read(stranger, address));
            Assert.Equal("process", foreign.ParamName);
            Assert.Contains("another machine", foreign.Message, StringComparison.Ordinal);
            foreach (var bad in new[] { address + 8, address + 1, 0UL, Process.UserEnd, ulong.MaxValue & ~(Page - 1) })
            {
                var e = Assert.Throws<ArgumentException>(() => read(process, bad));
                Assert.True(e.ParamName == "address", $"{name}(0x{bad:x}): {e.Message}");
            }
        }

        // The lockless read also checks its CPU: another machine's, or one already running with interrupts off.
        Assert.Equal("cpu", Assert.Throws<ArgumentNullException>(() => inspector.ReadEntryLockless(null!, process, address)).ParamName);
        Assert.Equal("cpu", Assert.Throws<ArgumentException>(() => inspector.ReadEntryLockless(other.Cpus[0], process, address)).ParamName);
        cpu.LocalIrqDisable();
        try
        {
            Assert.Throws<InvalidOperationException>(() => inspector.ReadEntryLockless(cpu, process, address));
        }
        finally
        {
            cpu.LocalIrqEnable();
        }

        Assert.True(inspector.ReadEntryLockless(cpu, process, address).IsPresent);

        // A slot: the default one, and one located on another machine.
        Assert.Equal("slot", Assert.Throws<ArgumentException>(() => inspector.ReadEntry(default)).ParamName);
        var strangerAddress = stranger.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        other.Cpus[0].Write(stranger, strangerAddress, 1);
        var foreignSlot = other.Inspect().LocateEntry(stranger, strangerAddress);
        Assert.Equal("slot", Assert.Throws<ArgumentException>(() => inspector.ReadEntry(foreignSlot)).ParamName);

        // An exited process: its tables are gone.
        process.Dispose();
        foreach (var (_, read) in reads)
        {
            Assert.Throws<ObjectDisposedException>(() => read(process, address));
        }
    }

    [Fact]
    public void TheRefcountLimitIsAPositiveTestSetting()
    {
        Assert.Equal(int.MaxValue, new MachineOptions().RefcountLimit);
        foreach (var limit in new[] { 0, -1, int.MinValue })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, RefcountLimit = limit }));
            Assert.Equal(nameof(MachineOptions.RefcountLimit), e.ParamName);
        }

        // Zoo entry 8's counter, and the smallest one.
        foreach (var limit in new[] { BugZoo.RefcountOverflow.Limit, 1 })
        {
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, RefcountLimit = limit });
            Assert.Equal(limit, machine.Memmap.RefcountLimit);
        }
    }

    [Fact]
    public void TheEngineOpensItsInternalsOnlyToTheTestsAndTheBenchmarks()
    {
        var engine = typeof(Engine.Machine).Assembly;
        var friends = engine.GetCustomAttributes<InternalsVisibleToAttribute>().Select(a => a.AssemblyName).Order(StringComparer.Ordinal).ToList();
        // Conformance holds the scenarios the tests share with `engine mapcount` (cow.c, the large-folio races), which
        // read a machine's settings and its MM-id slots and switch the MM-id lock bit off, as the tests did.
        Assert.Equal(new[] { "Conformance", "Engine.Benchmarks", "Engine.Tests" }, friends);

        // The bug zoo is built on the engine (vacuity guard) without any of its internals.
        var zoo = typeof(BugZoo.ZooScenario).Assembly;
        Assert.Contains(zoo.GetReferencedAssemblies(), a => a.Name == engine.GetName().Name);
        Assert.DoesNotContain(zoo.GetName().Name, friends);
    }

    /// <summary>
    /// TornPte's reads, once through the test surface and once through the internal calls it replaced: every schedule
    /// is the same (the same scheduling points in the same order), so the same seed finds the torn read in the same
    /// schedule with the same replay string, and the fixed scenario takes as many steps.
    /// </summary>
    [Fact]
    public void TheSurfaceReadsAreTheSameSchedulingPointsAsTheInternalReads()
    {
        for (var seed = 0; seed < 3; seed++)
        {
            var viaSurface = Explore(LocklessReadVersusRefault(surface: true, retry: false), iterations: 1_000, seed);
            var viaInternals = Explore(LocklessReadVersusRefault(surface: false, retry: false), iterations: 1_000, seed);
            Assert.NotNull(viaInternals.FirstBug);
            Assert.NotNull(viaSurface.FirstBug);
            Assert.Equal(viaInternals.FirstBug.Iteration, viaSurface.FirstBug.Iteration);
            Assert.Equal(viaInternals.FirstBug.ReplayString, viaSurface.FirstBug.ReplayString);
            Assert.Equal(viaInternals.TotalSteps, viaSurface.TotalSteps);
        }

        var fixedViaSurface = Explore(LocklessReadVersusRefault(surface: true, retry: true), iterations: 300, seed: 0);
        var fixedViaInternals = Explore(LocklessReadVersusRefault(surface: false, retry: true), iterations: 300, seed: 0);
        Assert.Equal(0, fixedViaSurface.BugsFound);
        Assert.Equal(0, fixedViaInternals.BugsFound);
        Assert.Equal(fixedViaInternals.TotalSteps, fixedViaSurface.TotalSteps);
        Assert.Equal(fixedViaInternals.MaxStepsInIteration, fixedViaSurface.MaxStepsInIteration);
    }

    private static TestReport Explore(Action body, int iterations, int seed)
        => TestingEngine.Run(Configuration.Create().WithTestingIterations(iterations).WithSeed(seed)
            .WithScheduleMinimization(false).WithFailureReplay(false).WithTraceFiles(false), body);

    /// <summary>
    /// Zoo entry 3's race (<c>BugZoo.TornPte</c>): a GUP-fast-style lockless read on CPU 0 while the page is zapped and
    /// faulted in again, then the frame the address maps. A torn present entry throws.
    /// </summary>
    private static Action LocklessReadVersusRefault(bool surface, bool retry) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, PteLayout = PteLayout.SplitPae, LocklessPteRetry = retry });
        var inspector = machine.Inspect();
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(process, address, 1);
        var index = PageTableSet.Index(address, 1);
        var slot = surface ? inspector.LocateEntry(process, address) : default;
        var table = surface ? slot.Table : machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
        var first = surface ? inspector.ReadEntry(slot).Pfn : machine.Ptes.PtepGet(table, index).Pfn;

        var observed = new ulong[1];
        var walker = ControlledThread.Start(() =>
        {
            if (surface)
            {
                observed[0] = inspector.ReadEntryLockless(machine.Cpus[0], process, address).Value;
                return;
            }

            var cpu = machine.Cpus[0];
            cpu.LocalIrqDisable();
            var pteTable = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
            observed[0] = pteTable >= 0 ? machine.Ptes.PtepGetLockless(pteTable, index).Value : 0;
            cpu.LocalIrqEnable();
        }, "gup-fast");
        process.MadviseDontNeed(address, Page);
        machine.Cpus[1].Write(process, address, 2);
        var second = surface ? inspector.ReadEntry(slot).Pfn : machine.Ptes.PtepGet(table, index).Pfn;
        walker.Join();

        var entry = new Pte(observed[0]);
        if (entry.IsPresent && entry.Pfn != first && entry.Pfn != second)
        {
            throw new InvalidOperationException($"torn read: pfn 0x{entry.Pfn:x}");
        }

        var mapped = surface ? inspector.PfnAt(process, address) : machine.Ptes.PtepGet(machine.Tables.WalkToPteTable(process.Mm.Pgd, address), index).Pfn;
        if (mapped != second)
        {
            throw new InvalidOperationException($"the address maps 0x{mapped:x}, not 0x{second:x}");
        }
    };

    private static void AgreesWithTheInternalView(Engine.Machine machine, Process process, ulong address, long expectedPfn)
    {
        var inspector = machine.Inspect();
        var table = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
        Assert.True(table >= 0, $"no PTE table for 0x{address:x}");
        var pte = machine.Ptes.PtepGet(table, PageTableSet.Index(address, 1));

        var entry = inspector.EntryAt(process, address);
        Assert.Equal(pte.Value, entry.Value);
        Assert.Equal(pte.IsNone, entry.IsNone);
        Assert.Equal(pte.IsPresent, entry.IsPresent);
        Assert.Equal(pte.Pfn, entry.Pfn);
        Assert.Equal(pte.Low, entry.Low);
        Assert.Equal(pte.High, entry.High);
        Assert.Equal(pte.ToString(), entry.ToString());
        Assert.Equal(entry, inspector.ReadEntry(inspector.LocateEntry(process, address)));
        Assert.Equal(entry, inspector.ReadEntryLockless(machine.Cpus[1], process, address));
        Assert.Equal(expectedPfn, inspector.PfnAt(process, address));
        Assert.Equal(expectedPfn, BugZoo.ZooScenario.PfnAt(machine, process, address));
    }

    private static Engine.Machine Small(PteLayout layout) => new(new MachineOptions { Cpus = 2, Frames = 64, PteLayout = layout });
}
