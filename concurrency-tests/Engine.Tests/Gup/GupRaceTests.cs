using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Gup;

/// <summary>GUP races under the tester: a GUP-fast pin racing fork (write_protect_seq).</summary>
public sealed class GupRaceTests
{
    private const int Schedules = 10_000;

    [Fact]
    public void APinRacingForkStaysCoherentWithTheParent()
    {
        var outcomes = new int[2]; // fork copied the pinned page for the child; the pin came after and COWed
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), PinVersusFork(forkSeq: true, outcomes));
        AssertClean(report);
        Assert.True(outcomes[0] > 0 && outcomes[1] > 0, $"fork copied the pinned page in {outcomes[0]} schedules and the pin came after fork in {outcomes[1]}: both orders must be seen");
    }

    [Fact]
    public void WithoutTheForkSequenceAPinTakenDuringForkIsSharedWithTheChildForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(PinVersusFork(forkSeq: false, outcomes: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("pin", bug.Message);
        });
    }

    /// <summary>
    /// The parent's page is exclusive and writable; one thread forks while CPU 0 write-pins the page through
    /// GUP-fast. Afterwards the parent stores through its mapping: a successful pin must see that store (the pinned
    /// page is still the parent's), and the child must not.
    /// </summary>
    internal static Action PinVersusFork(bool forkSeq, int[]? outcomes) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, GupFastForkSeq = forkSeq });
        var parent = machine.CreateProcess();

        // Four pages, pinned together: fork's window between its pinned check and its write-protect is a few steps
        // per page (as narrow as the kernel's), and four pages give GUP-fast four chances to fall in one.
        var address = parent.Mmap(PinnedPages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var i = 0; i < PinnedPages; i++)
        {
            machine.Cpus[1].Write(parent, address + ((ulong)i * Page), 1);
        }

        Process? child = null;
        var forker = ControlledThread.Start(() => child = parent.Fork(), "fork");

        // The pinning thread has other work first: it is content to run later, so its pin falls anywhere in fork.
        Engine.Sync.SchedulingPoint.Yield();
        using (var pin = machine.Cpus[0].PinUserPages(parent, address, PinnedPages, GupFlags.Write | GupFlags.LongTerm))
        {
            forker.Join();
            if (outcomes is not null)
            {
                Interlocked.Increment(ref outcomes[machine.Stats.ForkPinnedCopies > 0 ? 0 : 1]);
            }

            for (var i = 0; i < PinnedPages; i++)
            {
                var at = address + ((ulong)i * Page);
                machine.Cpus[1].Write(parent, at, 2);
                Specification.Assert(pin.Read(i, 0) == 2, $"the pin holds {pin.Read(i, 0)} in page {i}, not the parent's store 2: the pinned page was shared with the child and the parent's write copied it away from the pin");
                Specification.Assert(machine.Cpus[1].Read(child!, at) == 1, "the child sees the parent's store after fork");
            }

            AssertInvariants(machine);
        }

        child!.Dispose();
    };

    private const int PinnedPages = 4;

    [Fact]
    public void AReadOnlyPinOfASharedPageIsCoherentWithTheProcesssLaterWrites()
    {
        var outcomes = new int[2]; // the racing store landed before the pin, after it
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), ReadOnlyPinOfSharedPage(unshare: true, outcomes));
        AssertClean(report);
        Assert.True(outcomes[0] > 0 && outcomes[1] > 0, $"the racing store came before the pin in {outcomes[0]} schedules and after it in {outcomes[1]}: both orders must be seen");
    }

    [Fact]
    public void WithoutUnshareAReadOnlyPinLosesThePagesFutureForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(ReadOnlyPinOfSharedPage(unshare: false, outcomes: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("R/O pin", bug.Message);
        });
    }

    /// <summary>
    /// cow.c's "R/O GUP pin on R/O-mapped shared page": after fork the parent's page is shared; CPU 0 takes a
    /// read-only long-term pin (GUP-fast first) while CPU 1 stores to the page from the parent. Whatever the order,
    /// the parent's last store must be what the pin reads: the pin must hold the page the parent keeps.
    /// </summary>
    internal static Action ReadOnlyPinOfSharedPage(bool unshare, int[]? outcomes) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, UnshareOnReadOnlyPin = unshare });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(parent, address, 1);
        using var child = parent.Fork();
        var stored = new int[1];
        var writer = ControlledThread.Start(() =>
        {
            machine.Cpus[1].Write(parent, address, 2);
            Volatile.Write(ref stored[0], 1);
        }, "cpu1");
        using (var pin = machine.Cpus[0].PinUserPages(parent, address, 1, GupFlags.LongTerm))
        {
            var before = Volatile.Read(ref stored[0]);
            writer.Join();
            if (outcomes is not null)
            {
                Interlocked.Increment(ref outcomes[before]);
            }

            machine.Cpus[1].Write(parent, address, 3);
            Specification.Assert(pin.Read(0, 0) == 3, $"the R/O pin reads {pin.Read(0, 0)}, not the parent's last store 3: it holds a page the parent no longer maps");
            Specification.Assert(machine.Cpus[0].Read(child, address) == 1, "the child sees the parent's store after fork");
            AssertInvariants(machine);
        }
    };

    [Fact]
    public void APokeRacingMadviseNeverWritesTheFile()
    {
        var outcomes = new int[2]; // the poke's copy survived the madvise, or was dropped by it
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), DirtyCow(cowCheck: true, outcomes));
        AssertClean(report);
        Assert.True(outcomes[0] > 0 && outcomes[1] > 0, $"the poked copy survived in {outcomes[0]} schedules and was dropped in {outcomes[1]}: both must be seen");
    }

    [Fact]
    public void WithoutTheCowCheckDirtyCowWritesTheFileForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(DirtyCow(cowCheck: false, outcomes: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("Dirty COW", bug.Message);
        });
    }

    /// <summary>
    /// CVE-2016-5195: a process maps a file it may only read, privately (a setuid program's text, /etc/passwd);
    /// ptrace pokes a word into it (FOLL_FORCE | FOLL_WRITE) while another thread of the process keeps calling
    /// madvise(DONTNEED) on it. The poke must land in the process's private copy or nowhere; the file's page must
    /// keep what the file holds.
    /// </summary>
    internal static Action DirtyCow(bool cowCheck, int[]? outcomes) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, ForceWriteCowCheck = cowCheck });
        var file = machine.CreateFile("passwd", (long)Page);
        var owner = machine.CreateProcess();
        var shared = owner.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[1].Write(owner, shared, 1);
        machine.Writeback(file);
        var victim = machine.CreateProcess();
        var text = victim.Mmap(Page, Prot.Read, MapFlags.Private, file, 0);

        var madvise = ControlledThread.Start(() => victim.MadviseDontNeed(text, Page), "madvise");
        machine.Cpus[0].PokeData(victim, text, 666);
        madvise.Join();

        var seen = machine.Cpus[0].Read(victim, text);
        if (outcomes is not null)
        {
            Interlocked.Increment(ref outcomes[seen == 666 ? 0 : 1]);
        }

        Specification.Assert(machine.Cpus[1].Read(owner, shared) == 1, $"Dirty COW: the file's page holds {machine.Cpus[1].Read(owner, shared)}: a forced write to a private read-only mapping reached the page cache");
        AssertInvariants(machine);
    };

    [Fact]
    public void TheOverflowGuardRefusesTheReferenceThatWouldWrapTheCount()
    {
        var refused = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), ReferenceOverflow(guard: true, () => Interlocked.Increment(ref refused)));
        AssertClean(report);
        Assert.True(refused > 0, "no reference was ever refused: the attack never reached the wrap");
    }

    [Fact]
    public void WithoutTheGuardTheWrappedCountFreesAPageStillReferencedForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(ReferenceOverflow(guard: false, onRefused: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("overflow", bug.Message);
        });
    }

    /// <summary>
    /// Jann Horn's 2019 attack, on a counter shrunk to <see cref="OverflowLimit"/> (the real one needs 2^32
    /// references): a thread takes read references to one page (vmsplice into pipes) until the count has gone all
    /// the way round, while the process unmaps the page. The page must not be freed while references remain: with
    /// the guard, a reference that would take a wrapped (negative) count further is refused.
    /// </summary>
    internal static Action ReferenceOverflow(bool guard, Action? onRefused) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, RefcountOverflowGuard = guard, RefcountLimit = OverflowLimit });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var pipes = new List<PageReferences>();
        var attacker = ControlledThread.Start(() =>
        {
            try
            {
                // Once round the counter: back to where it started, with 2 * (limit + 1) more references than it says.
                for (var i = 0; i < 2 * (OverflowLimit + 1); i++)
                {
                    pipes.Add(machine.Cpus[1].GetUserPages(process, address, 1, GupFlags.NoFast));
                }
            }
            catch (InvalidOperationException)
            {
                onRefused?.Invoke();
            }
        }, "vmsplice");
        attacker.Join();
        process.Munmap(address, Page);
        foreach (var pipe in pipes)
        {
            var word = pipe.Read(0, 0);
            Specification.Assert(word == 1, $"refcount overflow: a pipe reads 0x{word:x} from a page that was freed while {pipes.Count} references to it remained");
        }

        foreach (var pipe in pipes)
        {
            pipe.Dispose();
        }

        AssertInvariants(machine);
    };

    private const int OverflowLimit = 15;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AShootdownWaitsForAnIrqDisabledCpuOnlyWhenItIsAnIpi(bool broadcast)
    {
        var overlapped = 0;
        var startedInside = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), () =>
        {
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, BroadcastTlbInvalidate = broadcast });
            var process = machine.CreateProcess();
            var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(process, address, 1);
            var irqsOff = new int[1];
            var walker = ControlledThread.Start(() =>
            {
                machine.Cpus[0].LocalIrqDisable();
                Volatile.Write(ref irqsOff[0], 1);
                Engine.Sync.SchedulingPoint.Yield();
                Volatile.Write(ref irqsOff[0], 0);
                machine.Cpus[0].LocalIrqEnable();
            }, "irqs-off");
            var before = Volatile.Read(ref irqsOff[0]);
            if (before == 1)
            {
                Interlocked.Increment(ref startedInside);
            }

            machine.FlushTlbRange(process.Mm, address, address + Page);
            if (before == 1 && Volatile.Read(ref irqsOff[0]) == 1)
            {
                // CPU 0 had interrupts off all through the flush: only a broadcast invalidation may complete then.
                Interlocked.Increment(ref overlapped);
                Specification.Assert(broadcast, "an IPI shootdown completed while its target had interrupts off");
            }

            walker.Join();
        });
        AssertClean(report);
        Assert.True(startedInside > 0, "the flush never started while CPU 0 had interrupts off: the test proved nothing");
        Assert.Equal(broadcast, overlapped > 0);
    }
}
