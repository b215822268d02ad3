using Engine;
using Engine.Testing;

namespace Conformance;

/// <summary>
/// The scenarios of the kernel's COW selftest (tools/testing/selftests/mm/cow.c) on a base page, the anonymous ones
/// also on a swapped-out base page and on large anonymous folios (<see cref="CowSelftestMemory"/>), written for the
/// engine: each takes a machine built for one <see cref="CowGeneration"/>, plays the scenario's steps in cow.c's order
/// on one thread (fork, the child's and the parent's steps, the checks) and returns what it found. A swapped-out
/// variant pages the page out right after populating it (<c>madvise(MADV_PAGEOUT)</c>), so that its first step finds
/// a swap entry; a large-folio variant prepares its folio as cow.c's THP runner does (<see cref="Populate"/>), and the
/// scenario stores to, pins and compares every page the runner hands on, as cow.c does with its <c>size</c>. cow.c's
/// processes are processes here, its pipe pages (vmsplice) are <see cref="Cpu.GetUserPages"/> references, its io_uring
/// fixed buffers are long-term write pins and its gup_test pins are long-term read-only pins, read back directly as
/// the kernel's device would. Everything a scenario takes it gives back before it returns.
/// <para>
/// cow.c's "GUP-fast" variants call <c>pin_user_pages_fast</c>, which tries the lockless walk and falls back to the
/// slow path for whatever the walk would not take; its plain variants call <c>pin_user_pages</c> under the mmap_lock,
/// which never walks locklessly. The engine's default <see cref="Cpu.PinUserPages(Process, ulong, int, GupFlags)"/> is the former and
/// <see cref="GupFlags.NoFast"/> the latter. <see cref="GupFlags.FastOnly"/> (<c>pin_user_pages_fast_only</c>) is
/// not what cow.c calls: it returns nothing for a page that must be unshared first instead of falling back.
/// </para>
/// </summary>
public static class CowSelftestScenarios
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
    /// The scenarios on anonymous memory, in cow.c's order: each is played on the memory its second argument names
    /// (cow.c's base page, swapped-out base page, or one of its THP runners on a large folio).
    /// </summary>
    private static readonly (string Name, Func<Machine, CowSelftestMemory, CowSelftestOutcome> Run)[] Anonymous =
    [
        ("basic COW after fork", (m, memory) => CowInParent(m, memory, mprotect: false)),
        ("basic COW after fork, the child stores", CowInChild),
        ("basic COW after fork with mprotect", (m, memory) => CowInParent(m, memory, mprotect: true)),
        ("vmsplice + unmap in child", (m, memory) => VmspliceInChild(m, memory, mprotect: false)),
        ("vmsplice + unmap in child with mprotect", (m, memory) => VmspliceInChild(m, memory, mprotect: true)),
        ("vmsplice before fork, unmap in parent after fork", (m, memory) => VmspliceInParent(m, memory, beforeFork: true)),
        ("vmsplice + unmap in parent after fork", (m, memory) => VmspliceInParent(m, memory, beforeFork: false)),
        ("R/O-mapping an io_uring fixed buffer", IouringReadOnlyMapped),
        ("fork with an io_uring fixed buffer", IouringFork),
        ("R/O pin on R/O-mapped shared page", (m, memory) => ReadOnlyPinOnAnon(m, memory, fast: false, ShareWithLiveChild)),
        ("R/O GUP-fast pin on R/O-mapped shared page", (m, memory) => ReadOnlyPinOnAnon(m, memory, fast: true, ShareWithLiveChild)),
        ("R/O pin on R/O-mapped previously-shared page", (m, memory) => ReadOnlyPinOnAnon(m, memory, fast: false, ShareWithChildThatExits)),
        ("R/O GUP-fast pin on R/O-mapped previously-shared page", (m, memory) => ReadOnlyPinOnAnon(m, memory, fast: true, ShareWithChildThatExits)),
        ("R/O pin on R/O-mapped exclusive page", (m, memory) => ReadOnlyPinOnAnon(m, memory, fast: false, MapReadOnly)),
        ("R/O GUP-fast pin on R/O-mapped exclusive page", (m, memory) => ReadOnlyPinOnAnon(m, memory, fast: true, MapReadOnly)),
    ];

    /// <summary>
    /// Every scenario by name, in cow.c's order: the anonymous ones first, each on a base page and then on a
    /// swapped-out base page (named with <see cref="SwappedOutSuffix"/>), then the non-anonymous ones.
    /// </summary>
    public static IReadOnlyList<(string Name, Func<Machine, CowSelftestOutcome> Run)> All { get; } =
    [
        .. Anonymous.SelectMany(s => new (string, Func<Machine, CowSelftestOutcome>)[]
        {
            (s.Name, m => s.Run(m, CowSelftestMemory.BasePage)),
            (s.Name + SwappedOutSuffix, m => s.Run(m, CowSelftestMemory.SwappedOutBasePage)),
        }),
        ("basic COW, zero page", CowOfZeroPage),
        ("basic COW, file page", CowOfFilePage),
        ("R/O long-term pin, zero page", m => ReadOnlyPinOfZeroPage(m, fast: false)),
        ("R/O long-term GUP-fast pin, zero page", m => ReadOnlyPinOfZeroPage(m, fast: true)),
        ("R/O long-term pin, file page", m => ReadOnlyPinOfFilePage(m, fast: false)),
        ("R/O long-term GUP-fast pin, file page", m => ReadOnlyPinOfFilePage(m, fast: true)),
    ];

    /// <summary>The anonymous scenarios' names, in cow.c's order (the base-page rows' names).</summary>
    public static IReadOnlyList<string> AnonymousScenarios { get; } = [.. Anonymous.Select(s => s.Name)];

    /// <summary>The large-folio variants, in cow.c's order of its THP runners.</summary>
    public static IReadOnlyList<CowSelftestMemory> LargeFolioMemories { get; } =
    [
        CowSelftestMemory.PteMappedFolio,
        CowSelftestMemory.SinglePteOfFolio,
        CowSelftestMemory.PartiallyUnmappedFolio,
        CowSelftestMemory.PartiallySharedFolio,
    ];

    /// <summary>A small machine of <paramref name="generation"/>, with as many swap slots as frames (<see cref="Options"/>).</summary>
    /// <param name="generation">The kernel.</param>
    /// <param name="ruleD">Run under seed 001's rule (d) (<see cref="MachineOptions.WriteProtectBeforeSwap"/>).</param>
    /// <param name="folioOrder">The order of large anonymous folios (<see cref="MachineOptions.AnonFolioOrder"/>; 0: none).</param>
    /// <param name="mapcount">How pages and folios count their mappings (every scheme but <see cref="MapcountScheme.PerPage"/> needs the AnonExclusive generation).</param>
    public static Machine CreateMachine(CowGeneration generation, bool ruleD = false, int folioOrder = 0, MapcountScheme mapcount = MapcountScheme.PerPage)
        => new(Options(generation, ruleD, folioOrder, mapcount));

    /// <summary>
    /// The settings of a small machine of <paramref name="generation"/> (two CPUs, 256 frames, as many swap slots as
    /// frames), on which every scenario runs: <c>new Machine(Options(...) with { ... })</c> runs one under other
    /// settings.
    /// </summary>
    /// <remarks>
    /// The three generations before AnonExclusive keep <see cref="MachineOptions.ReliableLongTermReadOnlyPins"/> at its
    /// default (on): the knob must do nothing outside the AnonExclusive generation, and the non-anonymous pin scenarios
    /// would show it if it did.
    /// </remarks>
    /// <param name="generation">The kernel.</param>
    /// <param name="ruleD">Run under seed 001's rule (d) (<see cref="MachineOptions.WriteProtectBeforeSwap"/>).</param>
    /// <param name="folioOrder">The order of large anonymous folios (<see cref="MachineOptions.AnonFolioOrder"/>; 0: none).</param>
    /// <param name="mapcount">How pages and folios count their mappings (every scheme but <see cref="MapcountScheme.PerPage"/> needs the AnonExclusive generation).</param>
    public static MachineOptions Options(CowGeneration generation, bool ruleD = false, int folioOrder = 0, MapcountScheme mapcount = MapcountScheme.PerPage) => new()
    {
        WriteProtectBeforeSwap = ruleD,
        AnonFolioOrder = folioOrder,
        Mapcount = mapcount,
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
    };

    /// <summary>Plays the scenario called <paramref name="name"/> on <paramref name="machine"/>.</summary>
    public static CowSelftestOutcome Run(string name, Machine machine) => All.Single(s => s.Name == name).Run(machine);

    /// <summary>
    /// Plays the anonymous scenario called <paramref name="name"/> (a base-page row's name) on <paramref name="memory"/>;
    /// a large-folio variant needs a machine with large folios.
    /// </summary>
    public static CowSelftestOutcome Run(string name, CowSelftestMemory memory, Machine machine)
        => Anonymous.Single(s => s.Name == name).Run(machine, memory);

    /// <summary>
    /// Fork; the parent (after mprotect R/O then R/W, with <paramref name="mprotect"/>: the optimisation that maps a
    /// page writable again without a fault must leave a shared page alone) stores; the child must still read the old
    /// contents.
    /// </summary>
    private static CowSelftestOutcome CowInParent(Machine machine, CowSelftestMemory memory, bool mprotect)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        using var region = Populate(machine, cpu, parent, memory);
        var mem = region.Mem;
        using var child = parent.Fork();
        if (mprotect)
        {
            MprotectReadOnlyThenReadWrite(machine, parent, region);
        }

        Fill(cpu, parent, mem, region.Pages, New);
        ExpectPages(outcome, region.Pages, (p, w) => childCpu.Read(child, Word(mem, p, w)), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
            "the child's mapping", "the parent's store after fork");
        return Checked(machine, outcome, region);
    }

    /// <summary>The other direction, which cow.c checks only through its vmsplice-in-parent scenarios: the child stores.</summary>
    private static CowSelftestOutcome CowInChild(Machine machine, CowSelftestMemory memory)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        using var region = Populate(machine, cpu, parent, memory);
        var mem = region.Mem;
        using var child = parent.Fork();
        Fill(childCpu, child, mem, region.Pages, New);
        ExpectPages(outcome, region.Pages, (p, w) => cpu.Read(parent, Word(mem, p, w)), Old, CowSelftestCheck.NoLeakFromChildIntoParent,
            "the parent's mapping", "the child's store after fork");
        return Checked(machine, outcome, region);
    }

    /// <summary>
    /// CVE-2020-29374. Fork; the child vmsplices the memory into a pipe (a FOLL_GET reference) and unmaps it; the
    /// parent (after mprotect R/O then R/W, with <paramref name="mprotect"/>) stores; the pipe must still hold the old
    /// contents.
    /// </summary>
    private static CowSelftestOutcome VmspliceInChild(Machine machine, CowSelftestMemory memory, bool mprotect)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        using var region = Populate(machine, cpu, parent, memory);
        var mem = region.Mem;
        using var child = parent.Fork();
        using var pipe = childCpu.GetUserPages(child, mem, region.Pages, GupFlags.None);
        child.Munmap(mem, region.Length);
        if (mprotect)
        {
            MprotectReadOnlyThenReadWrite(machine, parent, region);
        }

        Fill(cpu, parent, mem, region.Pages, New);
        ExpectPages(outcome, region.Pages, pipe.Read, Old, CowSelftestCheck.NoLeakFromParentIntoChild,
            "the child's pipe", "the parent's store after fork");
        return Checked(machine, outcome, region);
    }

    /// <summary>
    /// The parent vmsplices the memory into a pipe before fork (<paramref name="beforeFork"/>) or after it, then
    /// unmaps it; the child stores; the parent's pipe must still hold the old contents.
    /// </summary>
    private static CowSelftestOutcome VmspliceInParent(Machine machine, CowSelftestMemory memory, bool beforeFork)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        using var region = Populate(machine, cpu, parent, memory);
        var mem = region.Mem;
        var pipe = beforeFork ? cpu.GetUserPages(parent, mem, region.Pages, GupFlags.None) : null;
        using var child = parent.Fork();
        pipe ??= cpu.GetUserPages(parent, mem, region.Pages, GupFlags.None);
        using (pipe)
        {
            parent.Munmap(mem, region.Length);
            Fill(childCpu, child, mem, region.Pages, New);
            ExpectPages(outcome, region.Pages, pipe.Read, Old, CowSelftestCheck.NoLeakFromChildIntoParent,
                "the parent's pipe", "the child's store after fork");
            machine.CheckInvariants();
        }

        return Checked(machine, outcome, region);
    }

    /// <summary>
    /// A long-term write pin (io_uring registering a fixed buffer); the memory is mapped R/O and R/W again (mprotect);
    /// the process stores; the pin must see the store (io_uring writes the buffer to a file through the pin, and cow.c
    /// compares the file with the memory).
    /// </summary>
    private static CowSelftestOutcome IouringReadOnlyMapped(Machine machine, CowSelftestMemory memory)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();
        using var region = Populate(machine, cpu, process, memory);
        var mem = region.Mem;
        using var buffer = cpu.PinUserPages(process, mem, region.Pages, GupFlags.Write | GupFlags.LongTerm);
        MprotectReadOnlyThenReadWrite(machine, process, region);
        Fill(cpu, process, mem, region.Pages, New);
        ExpectPages(outcome, region.Pages, buffer.Read, New, CowSelftestCheck.LongTermWritePinIsReliable,
            "the fixed buffer's pin", "it no longer holds the page the process maps");
        return Checked(machine, outcome, region);
    }

    /// <summary>
    /// A long-term write pin (an io_uring fixed buffer); fork, the child staying alive; the parent stores; the pin
    /// must see the store, and the child must not.
    /// </summary>
    private static CowSelftestOutcome IouringFork(Machine machine, CowSelftestMemory memory)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var parent = machine.CreateProcess();
        using var region = Populate(machine, cpu, parent, memory);
        var mem = region.Mem;
        using var buffer = cpu.PinUserPages(parent, mem, region.Pages, GupFlags.Write | GupFlags.LongTerm);
        using var child = parent.Fork();
        Fill(cpu, parent, mem, region.Pages, New);
        ExpectPages(outcome, region.Pages, buffer.Read, New, CowSelftestCheck.LongTermWritePinIsReliable,
            "the fixed buffer's pin", "the parent's store after fork went to another page");
        ExpectPages(outcome, region.Pages, (p, w) => childCpu.Read(child, Word(mem, p, w)), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
            "the child's mapping", "the parent's store after fork");
        return Checked(machine, outcome, region);
    }

    /// <summary>
    /// cow.c's R/O pin tests on anonymous memory: <paramref name="prepare"/> leaves the memory mapped read-only (and
    /// returns a child that must stay alive meanwhile, if any); a long-term read-only pin, plain or GUP-fast; the
    /// process stores; the pin must see the store (and a live child must not).
    /// </summary>
    private static CowSelftestOutcome ReadOnlyPinOnAnon(Machine machine, CowSelftestMemory memory, bool fast, Func<Machine, Process, CowSelftestRegion, Process?> prepare)
    {
        var outcome = new CowSelftestOutcome();
        var (cpu, childCpu) = (machine.Cpus[0], machine.Cpus[1]);
        using var process = machine.CreateProcess();
        using var region = Populate(machine, cpu, process, memory);
        var mem = region.Mem;
        using var child = prepare(machine, process, region);
        using (var pin = cpu.PinUserPages(process, mem, region.Pages, ReadOnlyLongTerm(fast)))
        {
            Fill(cpu, process, mem, region.Pages, New);
            ExpectPages(outcome, region.Pages, pin.Read, New, CowSelftestCheck.LongTermReadOnlyPinIsReliable,
                "the R/O pin", "it no longer holds the page the process maps");
            machine.CheckInvariants();
        }

        if (child is not null)
        {
            ExpectPages(outcome, region.Pages, (p, w) => childCpu.Read(child, Word(mem, p, w)), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
                "the child's mapping", "the parent's store after fork");
        }

        return Checked(machine, outcome, region);
    }

    /// <summary>Fork and keep the child: the memory is shared and mapped R/O in both.</summary>
    private static Process? ShareWithLiveChild(Machine machine, Process process, CowSelftestRegion region) => process.Fork();

    /// <summary>Fork and let the child exit: the memory is mapped R/O, once, but was shared (not AnonExclusive).</summary>
    private static Process? ShareWithChildThatExits(Machine machine, Process process, CowSelftestRegion region)
    {
        process.Fork().Dispose();
        return null;
    }

    /// <summary>
    /// mprotect R/O then R/W on memory never shared. cow.c clears the soft-dirty bits in between so that the second
    /// mprotect leaves the entry read-only; the engine has no soft-dirty tracking, so in the AnonExclusive generation
    /// (Linux 6.0's <c>can_change_pte_writable</c>) the entry is writable again and the store does not fault.
    /// </summary>
    private static Process? MapReadOnly(Machine machine, Process process, CowSelftestRegion region)
    {
        MprotectReadOnlyThenReadWrite(machine, process, region);
        return null;
    }

    /// <summary>
    /// The end of every anonymous scenario: the partially shared folio's child, which shares the folio's first page
    /// with the parent throughout, must still read the old contents there (whoever stored, it was not that child);
    /// then the invariants.
    /// </summary>
    private static CowSelftestOutcome Checked(Machine machine, CowSelftestOutcome outcome, CowSelftestRegion region)
    {
        if (region.Sharer is { } sharer)
        {
            ExpectPages(outcome, 1, (p, w) => machine.Cpus[1].Read(sharer, Word(region.Mem, p, w)), Old, CowSelftestCheck.NoLeakFromParentIntoChild,
                "the child sharing the folio's first page", "a store by another process");
        }

        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// Non-anonymous "Basic COW" on the shared zero page: two private anonymous mappings, one R/W and one R/O, both
    /// read (so both map the zero page); a store through the first must not reach the second.
    /// </summary>
    private static CowSelftestOutcome CowOfZeroPage(Machine machine)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var smem = process.Mmap(Page, Prot.Read, MapFlags.Private | MapFlags.Anonymous);
        ReadZeroPage(machine, cpu, process, mem);
        ReadZeroPage(machine, cpu, process, smem);
        Fill(cpu, process, mem, 1, New);
        ExpectPage(outcome, w => cpu.Read(process, Word(smem, w)), 0, CowSelftestCheck.OtherMappingUnmodified,
            "the other mapping of the zero page", "the store through the private mapping");
        machine.CheckInvariants();
        return outcome;
    }

    /// <summary>
    /// Non-anonymous "Basic COW" on a page-cache page (cow.c's memfd and tmpfile: both are a
    /// <see cref="Machine.CreateFile"/> file here): a private R/W and a shared R/O mapping of the file, both
    /// read; a store through the private one must reach neither the shared mapping nor the file.
    /// </summary>
    private static CowSelftestOutcome CowOfFilePage(Machine machine)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        var file = machine.CreateFile("memfd", (long)Page);
        using var process = machine.CreateProcess();
        var (mem, smem) = MapFileTwice(machine, cpu, process, file);
        Fill(cpu, process, mem, 1, New);
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
    private static CowSelftestOutcome ReadOnlyPinOfZeroPage(Machine machine, bool fast)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        using var process = machine.CreateProcess();
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        ReadZeroPage(machine, cpu, process, mem);
        using (var pin = cpu.PinUserPages(process, mem, 1, ReadOnlyLongTerm(fast)))
        {
            Fill(cpu, process, mem, 1, New);
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
    private static CowSelftestOutcome ReadOnlyPinOfFilePage(Machine machine, bool fast)
    {
        var outcome = new CowSelftestOutcome();
        var cpu = machine.Cpus[0];
        var file = machine.CreateFile("memfd", (long)Page);
        using var process = machine.CreateProcess();
        var (mem, smem) = MapFileTwice(machine, cpu, process, file);
        using (var pin = cpu.PinUserPages(process, mem, 1, ReadOnlyLongTerm(fast)))
        {
            Fill(cpu, process, mem, 1, New);
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
    /// The memory <paramref name="memory"/> names, populated with <see cref="Old"/> and prepared as cow.c's runner for
    /// it does. A large-folio variant maps one folio, folio-aligned, and writes it whole (cow.c's memset), so that the
    /// first write fault maps a large folio; then it prepares it. Where cow.c would skip the test because its
    /// preparation did not leave what it wanted (a page not swapped out, a THP not populated), an assertion fails here:
    /// no row passes on memory other than the one it names.
    /// </summary>
    private static CowSelftestRegion Populate(Machine machine, Cpu cpu, Process process, CowSelftestMemory memory)
    {
        if (memory is CowSelftestMemory.BasePage or CowSelftestMemory.SwappedOutBasePage)
        {
            var page = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            Fill(cpu, process, page, 1, Old);
            if (memory == CowSelftestMemory.SwappedOutBasePage)
            {
                PageOut(machine, process, page);
            }

            return new(page, 1, null, InsideFolio: false);
        }

        var pages = 1 << machine.Options.AnonFolioOrder;
        Require.That(pages > 1, $"{memory} needs a machine with large anonymous folios");
        var folio = (ulong)pages * Page;
        var mem = process.Mmap(folio, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Require.Equal(0UL, mem & (folio - 1), $"the offset of the mapping at 0x{mem:x} in a folio-sized block");
        Fill(cpu, process, mem, pages, Old);
        var populated = FolioAt(machine, process, mem);
        Require.That(
            (populated.Pages, populated.Page, populated.RefCount) == (pages, 0, pages) && MapCountIs(machine, populated, pages)
                && FolioAt(machine, process, mem + folio - Page).Head == populated.Head,
            $"the writes did not map one large folio of {pages} pages at 0x{mem:x}: {populated}");
        switch (memory)
        {
            case CowSelftestMemory.PteMappedFolio:
                return new(mem, pages, null, InsideFolio: false);
            case CowSelftestMemory.SinglePteOfFolio:
                ZapAllButHeld(machine, cpu, process, mem, kept: 1, () => process.MadviseDontNeed(mem + Page, folio - Page));
                return new(mem, 1, null, InsideFolio: true);
            case CowSelftestMemory.PartiallyUnmappedFolio:
                ZapAllButHeld(machine, cpu, process, mem, kept: pages / 2, () => process.Munmap(mem + (folio / 2), folio / 2));
                return new(mem, pages / 2, null, InsideFolio: true);
            default:
                Require.Equal(CowSelftestMemory.PartiallySharedFolio, memory, "the large-folio variant");
                return ShareFirstPage(machine, process, mem, pages);
        }
    }

    /// <summary>
    /// Zaps, with <paramref name="zap"/>, every page of the folio at <paramref name="mem"/> but the first
    /// <paramref name="kept"/>, and checks that the folio is left large and partially mapped. That is what the kernel
    /// leaves: a munmap or <c>MADV_DONTNEED</c> through an mTHP only queues it for a deferred split, which a shrinker
    /// performs later, under memory pressure, if ever. The engine has no deferred split; it splits at once a folio that
    /// nothing but its mappings holds. So a reference (a FOLL_GET of the first page, taken before the zap and dropped
    /// after it) holds the folio over the zap: the split is refused and the scenario starts from the kernel's state.
    /// </summary>
    private static void ZapAllButHeld(Machine machine, Cpu cpu, Process process, ulong mem, int kept, Action zap)
    {
        var refused = machine.Stats.FolioSplitsRefused;
        using (cpu.GetUserPages(process, mem, 1, GupFlags.None))
        {
            zap();
        }

        var folio = FolioAt(machine, process, mem);
        Require.That(
            (machine.Stats.FolioSplits, machine.Stats.FolioSplitsRefused - refused) == (0, 1)
                && folio.Pages > kept && (folio.RefCount, folio.PinCount) == (kept, 0) && MapCountIs(machine, folio, kept),
            $"the zap did not leave the folio large with {kept} page(s) mapped: {folio}, {machine.Stats.FolioSplits} split(s)");
        Require.Equal(-1L, PfnAt(machine, process, mem + ((ulong)kept * Page)), $"the frame mapped at 0x{mem + ((ulong)kept * Page):x} after the zap");
    }

    /// <summary>
    /// cow.c's partially shared THP, adapted: fork, and the child unmaps every page of the folio but the first. The
    /// split is refused (the folio is mapped through two mms' page tables), so both map the one large folio, which
    /// says so ("maybe mapped shared" under either scheme: five mappings of four pages, or two mm ids). The child stays
    /// alive until the region ends. cow.c's child exits at once, after fork copied only the first page's entry (it
    /// marks the rest MADV_DONTFORK, which the engine does not have), so that only the first page was ever shared.
    /// </summary>
    private static CowSelftestRegion ShareFirstPage(Machine machine, Process process, ulong mem, int pages)
    {
        var sharer = process.Fork();
        var refused = machine.Stats.FolioSplitsRefused;
        sharer.Munmap(mem + Page, ((ulong)pages - 1) * Page);
        var folio = FolioAt(machine, process, mem);
        var shared = FolioAt(machine, sharer, mem);
        Require.That(
            (machine.Stats.FolioSplits, machine.Stats.FolioSplitsRefused - refused) == (0, 1)
                && folio.Pages == pages && shared.Head == folio.Head && shared.Page == 0
                && (folio.RefCount, folio.MaybeMappedShared) == (pages + 1, true) && MapCountIs(machine, folio, pages + 1),
            $"the child's munmap did not leave one large folio that both map: {folio}, the child's {shared}");
        Require.Equal(-1L, PfnAt(machine, sharer, mem + Page), $"the frame the child maps at 0x{mem + Page:x} after its munmap");
        return new(mem, pages, sharer, InsideFolio: false);
    }

    /// <summary>
    /// Whether <paramref name="folio"/>'s <c>folio_mapcount</c> is <paramref name="mapped"/>, under a scheme that
    /// counts mappings; seed 002's proposals (<see cref="MapcountScheme.TriState"/>, <see cref="MapcountScheme.None"/>)
    /// keep no count, and the view says −1: the references (one per entry here) say the same.
    /// </summary>
    private static bool MapCountIs(Machine machine, FolioView folio, int mapped)
        => folio.MapCount == (machine.Options.Mapcount is MapcountScheme.TriState or MapcountScheme.None ? -1 : mapped);

    private static long PfnAt(Machine machine, Process process, ulong address) => machine.Inspect().PfnAt(process, address);

    private static FolioView FolioAt(Machine machine, Process process, ulong address)
        => machine.Inspect().FolioAt(process, address) ?? throw new ConformanceException($"no page is mapped at 0x{address:x}");

    /// <summary>
    /// <c>madvise(MADV_PAGEOUT)</c> of the page at <paramref name="mem"/>, and a check that it went: the page was
    /// freed and the process's entry is now a swap entry. cow.c reads the entry's pagemap bit and skips the test when
    /// the page was not swapped; here that fails the scenario.
    /// </summary>
    private static void PageOut(Machine machine, Process process, ulong mem)
    {
        Require.Equal(1, process.MadvisePageOut(mem, Page), $"pages MADV_PAGEOUT paged out at 0x{mem:x}");
        var entry = machine.Inspect().EntryAt(process, mem);
        Require.That(entry.IsSwap, $"MADV_PAGEOUT left {entry} at 0x{mem:x}, not a swap entry");
    }

    /// <summary>
    /// mprotect R/O then R/W of the region. When the region is part of a large folio, the kernel changes its entries
    /// and leaves the folio whole (mprotect never splits a PTE-mapped folio), while the engine splits a folio that an
    /// mprotect cuts through if nothing but its mappings holds it; so, as <see cref="ZapAllButHeld"/> does, a
    /// reference held across the two calls keeps the folio large, and the scenario on it.
    /// </summary>
    private static void MprotectReadOnlyThenReadWrite(Machine machine, Process process, CowSelftestRegion region)
    {
        using var hold = region.InsideFolio ? machine.Cpus[0].GetUserPages(process, region.Mem, 1, GupFlags.None) : null;
        process.Mprotect(region.Mem, region.Length, Prot.Read);
        process.Mprotect(region.Mem, region.Length, Prot.ReadWrite);
    }

    /// <summary>Reads <paramref name="mem"/> and checks that the read mapped the shared zero page (a special entry).</summary>
    private static void ReadZeroPage(Machine machine, Cpu cpu, Process process, ulong mem)
    {
        Require.Equal(0UL, cpu.Read(process, mem), $"the first word read at 0x{mem:x}");
        Require.Equal(-1L, PfnAt(machine, process, mem), $"the frame mapped at 0x{mem:x} after the read (the zero page is none)");
    }

    /// <summary>Maps <paramref name="file"/> private R/W and shared R/O, reads both, and checks they map one page-cache page.</summary>
    private static (ulong Mem, ulong Smem) MapFileTwice(Machine machine, Cpu cpu, Process process, BackingFile file)
    {
        var mem = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        var smem = process.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        Require.Equal(0UL, cpu.Read(process, mem) + cpu.Read(process, smem), "the first words of the two new file mappings, added");
        var cached = PfnAt(machine, process, mem);
        Require.That(cached != -1, $"the read left no page-cache page mapped at 0x{mem:x}");
        Require.Equal(cached, PfnAt(machine, process, smem), $"the frame the shared mapping maps at 0x{smem:x} (the private one maps {cached})");
        return (mem, smem);
    }

    /// <summary>
    /// Stores <paramref name="value"/> into every word of the <paramref name="pages"/> pages at <paramref name="mem"/>
    /// (cow.c's memset), and checks that each page reads it back.
    /// </summary>
    private static void Fill(Cpu cpu, Process process, ulong mem, int pages, ulong value)
    {
        for (var page = 0; page < pages; page++)
        {
            for (var word = 0; word < Words; word++)
            {
                cpu.Write(process, Word(mem, page, word), value);
            }

            Require.Equal(value, cpu.Read(process, Word(mem, page, 0)), $"the first word of page {page} at 0x{mem:x} after the fill");
        }
    }

    private static ulong Word(ulong mem, int word) => mem + (8UL * (ulong)word);

    private static ulong Word(ulong mem, int page, int word) => mem + ((ulong)page * Page) + (8UL * (ulong)word);

    /// <summary>cow.c's memcmp of one page: <see cref="ExpectPages"/> with <paramref name="read"/> taking the word.</summary>
    private static void ExpectPage(CowSelftestOutcome outcome, Func<int, ulong> read, ulong expected, CowSelftestCheck check, string who, string why)
        => ExpectPages(outcome, 1, (_, word) => read(word), expected, check, who, why);

    /// <summary>
    /// cow.c's memcmp: every word of the <paramref name="pages"/> pages <paramref name="read"/> (page, word) returns
    /// must be <paramref name="expected"/>; the first that is not fails <paramref name="check"/>, naming
    /// <paramref name="who"/> and <paramref name="why"/>.
    /// </summary>
    private static void ExpectPages(CowSelftestOutcome outcome, int pages, Func<int, int, ulong> read, ulong expected, CowSelftestCheck check, string who, string why)
    {
        for (var page = 0; page < pages; page++)
        {
            for (var word = 0; word < Words; word++)
            {
                var value = read(page, word);
                if (value != expected)
                {
                    var where = pages == 1 ? $"word {word}" : $"page {page}, word {word}";
                    outcome.Fail(check, $"{who} reads 0x{value:x} at {where}, not 0x{expected:x}: {why}");
                    return;
                }
            }
        }
    }
}
