using Engine.Testing;
using static Engine.Tests.Rmap.RmapProbe;

namespace Engine.Tests.Gup;

/// <summary>
/// The scenarios of the kernel's COW selftest (tools/testing/selftests/mm/cow.c) on a base page, the anonymous ones
/// also on a swapped-out base page, written for the engine: each takes a machine built for one
/// <see cref="CowGeneration"/>, plays the scenario's steps in cow.c's order on one thread (fork, the child's and the
/// parent's steps, the checks) and returns what it found. A swapped-out variant pages the page out right after
/// populating it (<c>madvise(MADV_PAGEOUT)</c>), so that its first step finds a swap entry. cow.c's processes are
/// processes here, its pipe pages (vmsplice) are <see cref="Cpu.GetUserPages"/> references, its io_uring fixed buffers
/// are long-term write pins and its gup_test pins are long-term read-only pins, read back directly as the kernel's
/// device would. Everything a scenario takes it gives back before it returns.
/// <para>
/// cow.c's "GUP-fast" variants call <c>pin_user_pages_fast</c>, which tries the lockless walk and falls back to the
/// slow path for whatever the walk would not take; its plain variants call <c>pin_user_pages</c> under the mmap_lock,
/// which never walks locklessly. The engine's default <see cref="Cpu.PinUserPages"/> is the former and
/// <see cref="GupFlags.NoFast"/> the latter. <see cref="GupFlags.FastOnly"/> (<c>pin_user_pages_fast_only</c>) is
/// not what cow.c calls: it returns nothing for a page that must be unshared first instead of falling back.
/// </para>
/// </summary>
internal static class CowSelftestScenarios
{
    /// <summary>The page size.</summary>
    public const ulong Page = 4096;

    private const int Words = 512;

    /// <summary>What a populated page holds: cow.c fills its base page with ones before each test.</summary>
    private const ulong Old = 0x0101_0101_0101_0101;

    /// <summary>What the store after fork (or after the pin) writes: cow.c fills with 0xff.</summary>
    private const ulong New = ulong.MaxValue;

    /// <summary>What a swapped-out variant's name adds to its scenario's: "basic COW after fork (swapped out)".</summary>
    public const string SwappedOutSuffix = " (swapped out)";

    /// <summary>
    /// The scenarios on anonymous memory, in cow.c's order: each is played on the populated page as it is (cow.c's
    /// base page) or, with its second argument, after paging it out (cow.c's swapped-out base page).
    /// </summary>
    private static readonly (string Name, Func<Engine.Machine, bool, CowSelftestOutcome> Run)[] Anonymous =
    [
        ("basic COW after fork", (m, swappedOut) => CowInParent(m, swappedOut, mprotect: false)),
        ("basic COW after fork, the child stores", CowInChild),
        ("basic COW after fork with mprotect", (m, swappedOut) => CowInParent(m, swappedOut, mprotect: true)),
        ("vmsplice + unmap in child", (m, swappedOut) => VmspliceInChild(m, swappedOut, mprotect: false)),
        ("vmsplice + unmap in child with mprotect", (m, swappedOut) => VmspliceInChild(m, swappedOut, mprotect: true)),
        ("vmsplice before fork, unmap in parent after fork", (m, swappedOut) => VmspliceInParent(m, swappedOut, beforeFork: true)),
        ("vmsplice + unmap in parent after fork", (m, swappedOut) => VmspliceInParent(m, swappedOut, beforeFork: false)),
        ("R/O-mapping an io_uring fixed buffer", IouringReadOnlyMapped),
        ("fork with an io_uring fixed buffer", IouringFork),
        ("R/O pin on R/O-mapped shared page", (m, swappedOut) => ReadOnlyPinOnAnon(m, swappedOut, fast: false, ShareWithLiveChild)),
        ("R/O GUP-fast pin on R/O-mapped shared page", (m, swappedOut) => ReadOnlyPinOnAnon(m, swappedOut, fast: true, ShareWithLiveChild)),
        ("R/O pin on R/O-mapped previously-shared page", (m, swappedOut) => ReadOnlyPinOnAnon(m, swappedOut, fast: false, ShareWithChildThatExits)),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", (m, swappedOut) => ReadOnlyPinOnAnon(m, swappedOut, fast: true, ShareWithChildThatExits)),
        ("R/O pin on R/O-mapped exclusive page", (m, swappedOut) => ReadOnlyPinOnAnon(m, swappedOut, fast: false, MapReadOnly)),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", (m, swappedOut) => ReadOnlyPinOnAnon(m, swappedOut, fast: true, MapReadOnly)),
    ];

    /// <summary>
    /// Every scenario by name, in cow.c's order: the anonymous ones first, each on a base page and then on a
    /// swapped-out base page (named with <see cref="SwappedOutSuffix"/>), then the non-anonymous ones.
    /// </summary>
    public static IReadOnlyList<(string Name, Func<Engine.Machine, CowSelftestOutcome> Run)> All { get; } =
    [
        .. Anonymous.SelectMany(s => new (string, Func<Engine.Machine, CowSelftestOutcome>)[]
        {
            (s.Name, m => s.Run(m, false)),
            (s.Name + SwappedOutSuffix, m => s.Run(m, true)),
        }),
        ("basic COW, zero page", CowOfZeroPage),
        ("basic COW, file page", CowOfFilePage),
        ("R/O long-term pin, zero page", m => ReadOnlyPinOfZeroPage(m, fast: false)),
        ("R/O long-term GUP-fast pin, zero page", m => ReadOnlyPinOfZeroPage(m, fast: true)),
        ("R/O long-term pin, file page", m => ReadOnlyPinOfFilePage(m, fast: false)),
        ("R/O long-term GUP-fast pin, file page", m => ReadOnlyPinOfFilePage(m, fast: true)),
    ];

    /// <summary>A small machine of <paramref name="generation"/>, with as many swap slots as frames.</summary>
    /// <remarks>
    /// The three generations before AnonExclusive keep <see cref="MachineOptions.ReliableLongTermReadOnlyPins"/> at its
    /// default (on): the knob must do nothing outside the AnonExclusive generation, and the non-anonymous pin scenarios
    /// would show it if it did.
    /// </remarks>
    /// <param name="generation">The kernel.</param>
    /// <param name="ruleD">Run under seed 001's rule (d) (<see cref="MachineOptions.WriteProtectBeforeSwap"/>).</param>
    public static Engine.Machine CreateMachine(CowGeneration generation, bool ruleD = false) => new(new MachineOptions
    {
        WriteProtectBeforeSwap = ruleD,
        Cpus = 2,
        Frames = 256,
        CowReuse = generation switch
        {
            CowGeneration.MapCount => CowReuse.MapCount,
            CowGeneration.PageCountBefore518 or CowGeneration.PageCount => CowReuse.PageCount,
            _ => CowReuse.AnonExclusive,
        },
        SwapReuse = generation switch
        {
            CowGeneration.MapCount or CowGeneration.PageCountBefore518 => SwapReuse.ReuseSwapPage,
            CowGeneration.PageCount => SwapReuse.PageCount,
            _ => SwapReuse.ExclusiveEntry,
        },
        ReliableLongTermReadOnlyPins = generation != CowGeneration.AnonExclusiveBefore62,
    });

    /// <summary>Plays the scenario called <paramref name="name"/> on <paramref name="machine"/>.</summary>
    public static CowSelftestOutcome Run(string name, Engine.Machine machine) => All.Single(s => s.Name == name).Run(machine);

    /// <summary>
    /// Fork; the parent (after mprotect R/O then R/W, with <paramref name="mprotect"/>: the optimisation that maps a
    /// page writable again without a fault must leave a shared page alone) stores; the child must still read the old
    /// contents.
    /// </summary>
    private static CowSelftestOutcome CowInParent(Engine.Machine machine, bool swappedOut, bool mprotect)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(machine, cpu, parent, swappedOut);
        using var child = parent.Fork();
        if (mprotect)
        {
            MprotectReadOnlyThenReadWrite(parent, mem);
        }

        Fill(cpu, parent, mem, New);
        ExpectPage(outcome, w => childCpu.Read(child, Word(mem, w)), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
            "the child's mapping", "the parent's store after fork");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>The other direction, which cow.c checks only through its vmsplice-in-parent scenarios: the child stores.</summary>
    private static CowSelftestOutcome CowInChild(Engine.Machine machine, bool swappedOut)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(machine, cpu, parent, swappedOut);
        using var child = parent.Fork();
        Fill(childCpu, child, mem, New);
        ExpectPage(outcome, w => cpu.Read(parent, Word(mem, w)), Old, CowSelftestCheck.NoLeakFromChildIntoParent,
            "the parent's mapping", "the child's store after fork");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// CVE-2020-29374. Fork; the child vmsplices the page into a pipe (a FOLL_GET reference) and unmaps it; the parent
    /// (after mprotect R/O then R/W, with <paramref name="mprotect"/>) stores; the pipe must still hold the old contents.
    /// </summary>
    private static CowSelftestOutcome VmspliceInChild(Engine.Machine machine, bool swappedOut, bool mprotect)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(machine, cpu, parent, swappedOut);
        using var child = parent.Fork();
        using var pipe = childCpu.GetUserPages(child, mem, 1, GupFlags.None);
        child.Munmap(mem, Page);
        if (mprotect)
        {
            MprotectReadOnlyThenReadWrite(parent, mem);
        }

        Fill(cpu, parent, mem, New);
        ExpectPage(outcome, w => pipe.Read(0, w), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
            "the child's pipe", "the parent's store after fork");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// The parent vmsplices the page into a pipe before fork (<paramref name="beforeFork"/>) or after it, then unmaps
    /// it; the child stores; the parent's pipe must still hold the old contents.
    /// </summary>
    private static CowSelftestOutcome VmspliceInParent(Engine.Machine machine, bool swappedOut, bool beforeFork)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(machine, cpu, parent, swappedOut);
        var pipe = beforeFork ? cpu.GetUserPages(parent, mem, 1, GupFlags.None) : null;
        using var child = parent.Fork();
        pipe ??= cpu.GetUserPages(parent, mem, 1, GupFlags.None);
        using (pipe)
        {
            parent.Munmap(mem, Page);
            Fill(childCpu, child, mem, New);
            ExpectPage(outcome, w => pipe.Read(0, w), Old, CowSelftestCheck.NoLeakFromChildIntoParent,
                "the parent's pipe", "the child's store after fork");
            machine.CheckInvariants();
        }

        return outcome;
    }

    /// <summary>
    /// A long-term write pin (io_uring registering a fixed buffer); the page is mapped R/O and R/W again (mprotect);
    /// the process stores; the pin must see the store (io_uring writes the buffer to a file through the pin, and cow.c
    /// compares the file with the memory).
    /// </summary>
    private static CowSelftestOutcome IouringReadOnlyMapped(Engine.Machine machine, bool swappedOut)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();
        var mem = PopulatedAnonPage(machine, cpu, process, swappedOut);
        using var buffer = cpu.PinUserPages(process, mem, 1, GupFlags.Write | GupFlags.LongTerm);
        MprotectReadOnlyThenReadWrite(process, mem);
        Fill(cpu, process, mem, New);
        ExpectPage(outcome, w => buffer.Read(0, w), New, CowSelftestCheck.LongTermWritePinIsReliable,
            "the fixed buffer's pin", "it no longer holds the page the process maps");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// A long-term write pin (an io_uring fixed buffer); fork, the child staying alive; the parent stores; the pin
    /// must see the store, and the child must not.
    /// </summary>
    private static CowSelftestOutcome IouringFork(Engine.Machine machine, bool swappedOut)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(machine, cpu, parent, swappedOut);
        using var buffer = cpu.PinUserPages(parent, mem, 1, GupFlags.Write | GupFlags.LongTerm);
        using var child = parent.Fork();
        Fill(cpu, parent, mem, New);
        ExpectPage(outcome, w => buffer.Read(0, w), New, CowSelftestCheck.LongTermWritePinIsReliable,
            "the fixed buffer's pin", "the parent's store after fork went to another page");
        ExpectPage(outcome, w => childCpu.Read(child, Word(mem, w)), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
            "the child's mapping", "the parent's store after fork");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// cow.c's R/O pin tests on anonymous memory: <paramref name="prepare"/> leaves the page mapped read-only (and
    /// returns a child that must stay alive meanwhile, if any); a long-term read-only pin, plain or GUP-fast; the
    /// process stores; the pin must see the store (and a live child must not).
    /// </summary>
    private static CowSelftestOutcome ReadOnlyPinOnAnon(Engine.Machine machine, bool swappedOut, bool fast, Func<Process, ulong, Process?> prepare)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var process = machine.CreateProcess();
        var mem = PopulatedAnonPage(machine, cpu, process, swappedOut);
        using var child = prepare(process, mem);
        using (var pin = cpu.PinUserPages(process, mem, 1, ReadOnlyLongTerm(fast)))
        {
            Fill(cpu, process, mem, New);
            ExpectPage(outcome, w => pin.Read(0, w), New, CowSelftestCheck.LongTermReadOnlyPinIsReliable,
                "the R/O pin", "it no longer holds the page the process maps");
            machine.CheckInvariants();
        }

        if (child is not null)
        {
            ExpectPage(outcome, w => childCpu.Read(child, Word(mem, w)), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
                "the child's mapping", "the parent's store after fork");
        }

        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>Fork and keep the child: the page is shared and mapped R/O in both.</summary>
    private static Process? ShareWithLiveChild(Process process, ulong mem) => process.Fork();

    /// <summary>Fork and let the child exit: the page is mapped R/O, once, but was shared (not AnonExclusive).</summary>
    private static Process? ShareWithChildThatExits(Process process, ulong mem)
    {
        process.Fork().Dispose();
        return null;
    }

    /// <summary>
    /// mprotect R/O then R/W on a page never shared. cow.c clears the soft-dirty bits in between so that the second
    /// mprotect leaves the entry read-only; the engine has no soft-dirty tracking, so in the AnonExclusive generation
    /// (Linux 6.0's <c>can_change_pte_writable</c>) the entry is writable again and the store does not fault.
    /// </summary>
    private static Process? MapReadOnly(Process process, ulong mem)
    {
        MprotectReadOnlyThenReadWrite(process, mem);
        return null;
    }

    /// <summary>
    /// Non-anonymous "Basic COW" on the shared zero page: two private anonymous mappings, one R/W and one R/O, both
    /// read (so both map the zero page); a store through the first must not reach the second.
    /// </summary>
    private static CowSelftestOutcome CowOfZeroPage(Engine.Machine machine)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var smem = process.Mmap(Page, Prot.Read, MapFlags.Private | MapFlags.Anonymous);
        ReadZeroPage(machine, cpu, process, mem);
        ReadZeroPage(machine, cpu, process, smem);
        Fill(cpu, process, mem, New);
        ExpectPage(outcome, w => cpu.Read(process, Word(smem, w)), 0, CowSelftestCheck.OtherMappingUnmodified,
            "the other mapping of the zero page", "the store through the private mapping");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// Non-anonymous "Basic COW" on a page-cache page (cow.c's memfd and tmpfile: both are a
    /// <see cref="Engine.Machine.CreateFile"/> file here): a private R/W and a shared R/O mapping of the file, both
    /// read; a store through the private one must reach neither the shared mapping nor the file.
    /// </summary>
    private static CowSelftestOutcome CowOfFilePage(Engine.Machine machine)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        var file = machine.CreateFile("memfd", (long)Page);
        using var process = machine.CreateProcess();
        var (mem, smem) = MapFileTwice(machine, cpu, process, file);
        Fill(cpu, process, mem, New);
        ExpectPage(outcome, w => cpu.Read(process, Word(smem, w)), 0, CowSelftestCheck.OtherMappingUnmodified,
            "the shared mapping of the file", "the store through the private mapping");
        machine.Writeback(file);
        ExpectPage(outcome, w => file.ReadStored(8L * w), 0, CowSelftestCheck.OtherMappingUnmodified,
            "the file", "the store through the private mapping");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// Non-anonymous R/O long-term pin of the shared zero page: a private anonymous mapping, read (the zero page is
    /// mapped); a long-term read-only pin, plain or GUP-fast; the process stores; the pin must see the store.
    /// </summary>
    private static CowSelftestOutcome ReadOnlyPinOfZeroPage(Engine.Machine machine, bool fast)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        ReadZeroPage(machine, cpu, process, mem);
        using (var pin = cpu.PinUserPages(process, mem, 1, ReadOnlyLongTerm(fast)))
        {
            Fill(cpu, process, mem, New);
            ExpectPage(outcome, w => pin.Read(0, w), New, CowSelftestCheck.LongTermReadOnlyPinIsReliable,
                "the R/O pin", "it holds the zero page, which the store copied away from");
            machine.CheckInvariants();
        }

        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// Non-anonymous R/O long-term pin of a page-cache page (memfd, tmpfile): a private R/W and a shared R/O mapping
    /// of the file, both read; a long-term read-only pin of the private one, plain or GUP-fast; the process stores;
    /// the pin must see the store (and the shared mapping must not).
    /// </summary>
    private static CowSelftestOutcome ReadOnlyPinOfFilePage(Engine.Machine machine, bool fast)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        var file = machine.CreateFile("memfd", (long)Page);
        using var process = machine.CreateProcess();
        var (mem, smem) = MapFileTwice(machine, cpu, process, file);
        using (var pin = cpu.PinUserPages(process, mem, 1, ReadOnlyLongTerm(fast)))
        {
            Fill(cpu, process, mem, New);
            ExpectPage(outcome, w => pin.Read(0, w), New, CowSelftestCheck.LongTermReadOnlyPinIsReliable,
                "the R/O pin", "it holds the page-cache page, which the store copied away from");
            ExpectPage(outcome, w => cpu.Read(process, Word(smem, w)), 0, CowSelftestCheck.OtherMappingUnmodified,
                "the shared mapping of the file", "the store through the private mapping");
            machine.CheckInvariants();
        }

        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>gup_test's PIN_LONGTERM_TEST_START without the write flag: <c>pin_user_pages_fast</c> or <c>pin_user_pages</c>.</summary>
    private static GupFlags ReadOnlyLongTerm(bool fast) => fast ? GupFlags.LongTerm : GupFlags.LongTerm | GupFlags.NoFast;

    /// <summary>
    /// One private anonymous R/W page, populated with <see cref="Old"/> (cow.c's base-page runner) and, with
    /// <paramref name="swappedOut"/>, paged out (cow.c's swapped-out base page, <see cref="PageOut"/>).
    /// </summary>
    private static ulong PopulatedAnonPage(Engine.Machine machine, Cpu cpu, Process process, bool swappedOut)
    {
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Fill(cpu, process, mem, Old);
        if (swappedOut)
        {
            PageOut(machine, process, mem);
        }

        return mem;
    }

    /// <summary>
    /// <c>madvise(MADV_PAGEOUT)</c> of the page at <paramref name="mem"/>, and a check that it went: the page was
    /// freed and the process's entry is now a swap entry. cow.c reads the entry's pagemap bit and skips the test when
    /// the page was not swapped; here that fails the scenario.
    /// </summary>
    private static void PageOut(Engine.Machine machine, Process process, ulong mem)
    {
        Assert.Equal(1, process.MadvisePageOut(mem, Page));
        var entry = machine.Inspect().EntryAt(process, mem);
        Assert.True(entry.IsSwap, $"MADV_PAGEOUT left {entry} at 0x{mem:x}, not a swap entry");
    }

    private static void MprotectReadOnlyThenReadWrite(Process process, ulong mem)
    {
        process.Mprotect(mem, Page, Prot.Read);
        process.Mprotect(mem, Page, Prot.ReadWrite);
    }

    /// <summary>Reads <paramref name="mem"/> and checks that the read mapped the shared zero page (a special entry).</summary>
    private static void ReadZeroPage(Engine.Machine machine, Cpu cpu, Process process, ulong mem)
    {
        Assert.Equal(0UL, cpu.Read(process, mem));
        Assert.Equal(-1, PfnAt(machine, process, mem));
    }

    /// <summary>Maps <paramref name="file"/> private R/W and shared R/O, reads both, and checks they map one page-cache page.</summary>
    private static (ulong Mem, ulong Smem) MapFileTwice(Engine.Machine machine, Cpu cpu, Process process, BackingFile file)
    {
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        var smem = process.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        Assert.Equal(0UL, cpu.Read(process, mem) + cpu.Read(process, smem));
        var cached = PfnAt(machine, process, mem);
        Assert.NotEqual(-1, cached);
        Assert.Equal(cached, PfnAt(machine, process, smem));
        return (mem, smem);
    }

    /// <summary>Stores <paramref name="value"/> into every word of the page at <paramref name="mem"/> (cow.c's memset), and checks it reads back.</summary>
    private static void Fill(Cpu cpu, Process process, ulong mem, ulong value)
    {
        for (var word = 0; word < Words; word++)
        {
            cpu.Write(process, Word(mem, word), value);
        }

        Assert.Equal(value, cpu.Read(process, mem));
    }

    private static ulong Word(ulong mem, int word) => mem + (8UL * (ulong)word);

    /// <summary>
    /// cow.c's memcmp: every word <paramref name="read"/> returns must be <paramref name="expected"/>; the first that
    /// is not fails <paramref name="check"/>, naming <paramref name="who"/> and <paramref name="why"/>.
    /// </summary>
    private static void ExpectPage(CowSelftestOutcome outcome, Func<int, ulong> read, ulong expected, CowSelftestCheck check, string who, string why)
    {
        for (var word = 0; word < Words; word++)
        {
            var value = read(word);
            if (value != expected)
            {
                outcome.Fail(check, $"{who} reads 0x{value:x} at word {word}, not 0x{expected:x}: {why}");
                return;
            }
        }
    }
}
