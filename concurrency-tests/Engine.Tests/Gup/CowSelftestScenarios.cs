using static Engine.Tests.Rmap.RmapProbe;

namespace Engine.Tests.Gup;

/// <summary>
/// The scenarios of the kernel's COW selftest (tools/testing/selftests/mm/cow.c) on a base page, written for the
/// engine: each takes a machine built for one <see cref="CowGeneration"/>, plays the scenario's steps in cow.c's
/// order on one thread (fork, the child's and the parent's steps, the checks) and returns what it found. cow.c's
/// processes are processes here, its pipe pages (vmsplice) are <see cref="Cpu.GetUserPages"/> references, its io_uring
/// fixed buffers are long-term write pins and its gup_test pins are long-term read-only pins, read back directly as
/// the kernel's device would. Everything a scenario takes it gives back before it returns.
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

    /// <summary>Every scenario by name, anonymous memory first, then the non-anonymous ones, in cow.c's order.</summary>
    public static IReadOnlyList<(string Name, Func<Engine.Machine, CowSelftestOutcome> Run)> All { get; } =
    [
        ("basic COW after fork", m => CowInParent(m, mprotect: false)),
        ("basic COW after fork, the child stores", CowInChild),
        ("basic COW after fork with mprotect", m => CowInParent(m, mprotect: true)),
        ("vmsplice + unmap in child", m => VmspliceInChild(m, mprotect: false)),
        ("vmsplice + unmap in child with mprotect", m => VmspliceInChild(m, mprotect: true)),
        ("vmsplice before fork, unmap in parent after fork", m => VmspliceInParent(m, beforeFork: true)),
        ("vmsplice + unmap in parent after fork", m => VmspliceInParent(m, beforeFork: false)),
        ("R/O-mapping an io_uring fixed buffer", IouringReadOnlyMapped),
        ("fork with an io_uring fixed buffer", IouringFork),
        ("R/O pin on R/O-mapped shared page", m => ReadOnlyPinOnAnon(m, fast: false, ShareWithLiveChild)),
        ("R/O GUP-fast pin on R/O-mapped shared page", m => ReadOnlyPinOnAnon(m, fast: true, ShareWithLiveChild)),
        ("R/O pin on R/O-mapped previously-shared page", m => ReadOnlyPinOnAnon(m, fast: false, ShareWithChildThatExits)),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", m => ReadOnlyPinOnAnon(m, fast: true, ShareWithChildThatExits)),
        ("R/O pin on R/O-mapped exclusive page", m => ReadOnlyPinOnAnon(m, fast: false, MapReadOnly)),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", m => ReadOnlyPinOnAnon(m, fast: true, MapReadOnly)),
        ("basic COW, zero page", CowOfZeroPage),
        ("basic COW, file page", CowOfFilePage),
        ("R/O long-term pin, zero page", m => ReadOnlyPinOfZeroPage(m, fast: false)),
        ("R/O long-term GUP-fast pin, zero page", m => ReadOnlyPinOfZeroPage(m, fast: true)),
        ("R/O long-term pin, file page", m => ReadOnlyPinOfFilePage(m, fast: false)),
        ("R/O long-term GUP-fast pin, file page", m => ReadOnlyPinOfFilePage(m, fast: true)),
    ];

    /// <summary>A small machine of <paramref name="generation"/>.</summary>
    /// <remarks>
    /// The two older generations keep <see cref="MachineOptions.ReliableLongTermReadOnlyPins"/> at its default (on):
    /// the knob must do nothing outside the AnonExclusive generation, and the non-anonymous pin scenarios would
    /// show it if it did.
    /// </remarks>
    public static Engine.Machine CreateMachine(CowGeneration generation) => new(new MachineOptions
    {
        Cpus = 2,
        Frames = 256,
        CowReuse = generation switch
        {
            CowGeneration.MapCount => CowReuse.MapCount,
            CowGeneration.PageCount => CowReuse.PageCount,
            _ => CowReuse.AnonExclusive,
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
    private static CowSelftestOutcome CowInParent(Engine.Machine machine, bool mprotect)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(cpu, parent);
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
    private static CowSelftestOutcome CowInChild(Engine.Machine machine)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(cpu, parent);
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
    private static CowSelftestOutcome VmspliceInChild(Engine.Machine machine, bool mprotect)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(cpu, parent);
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
    private static CowSelftestOutcome VmspliceInParent(Engine.Machine machine, bool beforeFork)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(cpu, parent);
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
    private static CowSelftestOutcome IouringReadOnlyMapped(Engine.Machine machine)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();
        var mem = PopulatedAnonPage(cpu, process);
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
    private static CowSelftestOutcome IouringFork(Engine.Machine machine)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        var mem = PopulatedAnonPage(cpu, parent);
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
    private static CowSelftestOutcome ReadOnlyPinOnAnon(Engine.Machine machine, bool fast, Func<Process, ulong, Process?> prepare)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var process = machine.CreateProcess();
        var mem = PopulatedAnonPage(cpu, process);
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

    /// <summary>One private anonymous R/W page, populated with <see cref="Old"/> (cow.c's base-page runner).</summary>
    private static ulong PopulatedAnonPage(Cpu cpu, Process process)
    {
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Fill(cpu, process, mem, Old);
        return mem;
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
