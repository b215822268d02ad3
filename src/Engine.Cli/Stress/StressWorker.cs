using System.Globalization;

namespace Engine.Cli.Stress;

/// <summary>
/// One real thread driving one <see cref="Cpu"/>. It owns one word (at its own offset) in each of the
/// <c>pages</c> anonymous pages of the shared process (<see cref="DefaultPages"/>, or the region a working set larger
/// than memory needs) and in each of the <see cref="FilePages"/> pages of the shared file mapping, and remembers what
/// it last stored in each, so every read has a known expected value. Around that it faults fresh
/// regions in and out, mprotects and madvises its own pages, maps the file privately and copies its pages, zaps
/// pages of the shared file mapping (their contents survive: a zap of a dirty entry dirties the page), writes the
/// file back (checking that the backing store then holds its last stores, as fsync promises), evicts clean pages
/// (a later read refills them from the backing store), and forks the shared process, checking both views.
/// <para>
/// GUP. It pins its pages for a moment (read-only or for write, through GUP-fast or not) and checks its words through
/// the pin; takes FOLL_GET references and checks through them; pokes its words as ptrace does; and holds at most one
/// long-term pin (of one to four of its anonymous pages) across operations. The oracle for that pin: while it is
/// held, every process store to those words (a write, a poke, the parent's store after a fork) must be read back
/// through the pin, and every device store through it (a write pin) must be read back by the process. Forks by any
/// worker must keep this true (fork copies a maybe-pinned exclusive page for the child), and so must mprotect R/O and
/// back, which the Mprotect operation checks on a pinned scratch page.
/// </para>
/// <para>
/// Zaps break the promise legitimately: after madvise(DONTNEED) or munmap the process faults in a fresh page while
/// the pin keeps the old frame. So nothing in the mix zaps the shared anonymous region: Madvise zaps a scratch page of
/// its own (and, with a pin on it, checks that the pin and the process have parted), FreshRegion and Mprotect unmap
/// their own mappings, FileZap and Evict zap the file mapping, and a forked child's exit zaps only the child's
/// entries. A long-term pin of the region stays coherent with the process for as long as it is held.
/// </para>
/// </summary>
/// <para>
/// Swap. Reclaim (a kswapd thread, and direct reclaim inside any allocation) may swap any unpinned page of the region
/// out under all of this, so every read above may fault the page back in. With a region larger than memory
/// (<c>--working-set</c>) the worker first stores its word in every page (<see cref="PopulateAll"/>), so the whole
/// region is anonymous memory to be swapped, not the shared zero page.
/// </para>
/// <para>
/// Large folios (<paramref name="folioPages"/> above 1). The runner populates the region too, so that its aligned
/// folio-sized ranges start as large folios, which every operation above then meets: stores and reads, forks and their
/// copies on write (reuse of a folio's page under <c>MmId</c>), short and long-term pins and references, and reclaim,
/// which splits a folio before it swaps its pages out. Nothing in the mix cuts through the region, though, so the
/// <see cref="StressOperation.FolioRegion"/> operation maps folios of the worker's own, one to three at a time, and
/// cuts through them (<see cref="DoFolioRegion"/>).
/// </para>
/// </summary>
internal sealed class StressWorker(Machine machine, Process shared, ulong region, int pages, BackingFile file, ulong fileRegion, int id, int seed, Func<bool> stopping,
    int folioPages = 1, bool swap = false)
{
    /// <summary>
    /// With large folios, the operations in 1,000 that are <see cref="StressOperation.FolioRegion"/>, taken from the
    /// reads: about as many as FreshRegion's 15 (each maps, faults and unmaps one to three folios).
    /// </summary>
    private const int FolioRegionShare = 20;

    /// <summary>Pages of the shared anonymous region without a working set: each worker has a word in each.</summary>
    public const int DefaultPages = 64;

    /// <summary>Pages of the shared file mapping (and of the file): each worker has a word in each.</summary>
    public const int FilePages = 64;

    /// <summary>How many pages of the region a fork's child reads back, spread evenly (every 7th of the default 64).</summary>
    private const int ChildChecks = 10;

    private const ulong Page = 4096;

    private readonly ulong[] _expected = new ulong[pages];
    private readonly ulong[] _fileExpected = new ulong[FilePages];
    private readonly long[] _counts = new long[Enum.GetValues<StressOperation>().Length];
    private readonly long[] _pinEvents = new long[Enum.GetValues<StressPinEvent>().Length];
    private readonly long[] _folioEvents = new long[Enum.GetValues<StressFolioEvent>().Length];

    // The folio region of the operation in progress: the worker's last store to each page (0 for a page it zapped) and
    // which pages are still mapped (a partial munmap leaves a hole that another worker's mmap may take, so the final
    // munmap covers only what is left).
    private readonly ulong[] _folioExpected = new ulong[3 * folioPages];
    private readonly bool[] _folioMapped = new bool[3 * folioPages];

    // Pages in which this worker has stored at least once. Such a page is a real anonymous page for the rest of the
    // run (nothing zaps the region; swapped out, its entry names the slot that holds it), never the shared zero page;
    // see Populate.
    private readonly bool[] _populated = new bool[pages];
    private LongTermPin? _held;
    private ulong _serial;

    public long Count(StressOperation operation) => Interlocked.Read(ref _counts[(int)operation]);

    public long Count(StressPinEvent pinEvent) => Interlocked.Read(ref _pinEvents[(int)pinEvent]);

    public long Count(StressFolioEvent folioEvent) => Interlocked.Read(ref _folioEvents[(int)folioEvent]);

    public string? Failure { get; private set; }

    /// <summary>When the worker failed for want of a frame: the swap slots in use at that moment; else null.</summary>
    public int? SwapSlotsInUseWhenOutOfFrames { get; private set; }

    /// <summary>The word this worker last stored in file page <paramref name="page"/> (read once the worker has stopped).</summary>
    public ulong FileExpected(int page) => _fileExpected[page];

    /// <summary>This worker's word in page <paramref name="page"/> of the file, as a byte offset.</summary>
    public long FileOffset(int page) => (page * (long)Page) + (id * 8L);

    /// <summary>
    /// The worker's loop, until the runner stops it; with <paramref name="perturb"/>, its thread is perturbed
    /// (<see cref="PerturbationHook"/>); with <paramref name="populate"/>, it first stores its word in every page of
    /// the region.
    /// </summary>
    public void Run(bool perturb, bool populate)
    {
        if (perturb)
        {
            PerturbationHook.Attach(seed, id);
        }

        var cpu = machine.Cpus[id];
        var random = new Random(seed);
        try
        {
            if (populate)
            {
                PopulateAll(cpu);
            }

            while (!stopping())
            {
                var roll = random.Next(1000);

                // While a long-term pin is held, one pick in four falls in its pages, so that the process's reads,
                // stores and pokes meet the pin often. The file operations use the page modulo the file's size.
                var page = _held is { } held && random.Next(4) == 0 ? held.First + random.Next(held.Pages) : random.Next(pages);
                var operation = folioPages > 1 && roll < FolioRegionShare ? StressOperation.FolioRegion : roll switch
                {
                    < 360 => StressOperation.Read,
                    < 720 => StressOperation.Write,
                    < 800 => StressOperation.FileRead,
                    < 880 => StressOperation.FileWrite,
                    < 892 => StressOperation.PinShort,
                    < 904 => StressOperation.PinLongTerm,
                    < 914 => StressOperation.GupReference,
                    < 920 => StressOperation.Poke,
                    < 935 => StressOperation.FreshRegion,
                    < 943 => StressOperation.Madvise,
                    < 950 => StressOperation.Mprotect,
                    < 968 => StressOperation.FilePrivate,
                    < 982 => StressOperation.FileZap,
                    < 990 => StressOperation.FileSync,
                    < 996 => StressOperation.Evict,
                    _ => StressOperation.Fork,
                };
                Do(cpu, operation, page, random);
                Interlocked.Increment(ref _counts[(int)operation]);
            }

            // Unpin before stopping: the runner's final checks follow, and a pin still held would keep its frames
            // after the process has exited, which the leak check reports.
            ReleaseLongTermPin("at the end of the run");
        }
        catch (Exception e)
        {
            Failure = $"CPU {id}: {e.GetType().Name}: {e.Message}";
            if (e is OutOfFramesException)
            {
                // Memory and swap may both be full (the settings' fault, not the machine's): the runner decides, from
                // how many slots were in use the moment the allocation failed.
                SwapSlotsInUseWhenOutOfFrames = machine.Stats.SwapSlotsInUse;
                Failure += string.Create(CultureInfo.InvariantCulture, $" ({SwapSlotsInUseWhenOutOfFrames:N0} swap slots in use)");
            }

            var held = _held;
            _held = null;
            held?.Pin.Dispose();
        }
        finally
        {
            if (perturb)
            {
                PerturbationHook.Detach();
            }
        }
    }

    /// <summary>
    /// One store of the worker's word in every page of the region, each worker starting at its own share of the region
    /// so that the CPUs fault different pages at first. Counted as writes. Stops early when the runner stops.
    /// </summary>
    private void PopulateAll(Cpu cpu)
    {
        var start = (int)((long)pages * id / machine.Cpus.Count);
        for (var i = 0; i < pages && !stopping(); i++)
        {
            var page = (start + i) % pages;
            var value = NextValue();
            cpu.Write(shared, Address(page), value);
            Stored(page, value, "a first store");
            Interlocked.Increment(ref _counts[(int)StressOperation.Write]);
        }
    }

    private ulong Address(int page) => region + ((ulong)page * Page) + ((ulong)id * 8);

    private ulong FileAddress(int page) => fileRegion + ((ulong)page * Page) + ((ulong)id * 8);

    private ulong NextValue() => ((ulong)(id + 1) << 48) | ++_serial;

    private void Do(Cpu cpu, StressOperation operation, int page, Random random)
    {
        var filePage = page % FilePages;
        switch (operation)
        {
            case StressOperation.Read:
                Check(cpu.Read(shared, Address(page)), _expected[page], "read");
                CheckHeldPin(page, "a read");
                break;
            case StressOperation.Write:
                var value = NextValue();
                cpu.Write(shared, Address(page), value);
                Stored(page, value, "a store");
                break;
            case StressOperation.FreshRegion:
                var freshPages = 1 + random.Next(16);
                var fresh = shared.Mmap((ulong)freshPages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
                for (var i = 0; i < freshPages; i++)
                {
                    Check(cpu.Read(shared, fresh + ((ulong)i * Page)), 0, "fresh page");
                    cpu.Write(shared, fresh + ((ulong)i * Page), (ulong)i + 1);
                }

                for (var i = 0; i < freshPages; i++)
                {
                    Check(cpu.Read(shared, fresh + ((ulong)i * Page)), (ulong)i + 1, "fresh page after write");
                }

                shared.Munmap(fresh, (ulong)freshPages * Page);
                break;
            case StressOperation.Madvise:
                DoMadvise(cpu, random);
                break;
            case StressOperation.Mprotect:
                DoMprotect(cpu, random);
                break;
            case StressOperation.Fork:
                using (var child = shared.Fork())
                {
                    // The child sees this worker's words as they were (nobody else writes them): a sample of pages spread
                    // over the region (every 7th of the default 64), where a swap entry is read through the slot fork
                    // duplicated.
                    var stride = Math.Max(7, pages / ChildChecks);
                    for (var i = page % Math.Min(stride, 7); i < pages; i += stride)
                    {
                        Check(cpu.Read(child, Address(i)), _expected[i], "child view after fork");
                    }

                    // Pages this worker holds pinned were copied for the child (they are exclusive and may be pinned):
                    // the child has the values, the parent kept its pages, and the pin still sees what the parent does.
                    if (_held is { } held)
                    {
                        for (var i = held.First; i < held.First + held.Pages; i++)
                        {
                            Check(cpu.Read(child, Address(i)), _expected[i], $"child view of long-term pinned page {i} after fork");
                            CheckHeldPin(i, "fork");
                        }
                    }

                    var marker = NextValue();
                    cpu.Write(child, Address(page), marker);
                    Check(cpu.Read(shared, Address(page)), _expected[page], "parent view after the child's store");
                    CheckHeldPin(page, "the child's store");
                    cpu.Write(shared, Address(page), marker + 1);
                    Stored(page, marker + 1, "the parent's store after fork");
                    Check(cpu.Read(child, Address(page)), marker, "child view after the parent's store");

                    // The shared file mapping is inherited, not copied: the child sees the file, and its stores reach it.
                    Check(cpu.Read(child, FileAddress(filePage)), _fileExpected[filePage], "child view of the shared file mapping");
                    var fileMarker = NextValue();
                    cpu.Write(child, FileAddress(filePage), fileMarker);
                    _fileExpected[filePage] = fileMarker;
                    Check(cpu.Read(shared, FileAddress(filePage)), fileMarker, "parent view of the child's store to the shared file mapping");
                }

                break;
            case StressOperation.FileRead:
                Check(cpu.Read(shared, FileAddress(filePage)), _fileExpected[filePage], "shared file mapping");
                break;
            case StressOperation.FileWrite:
                var stored = NextValue();
                cpu.Write(shared, FileAddress(filePage), stored);
                _fileExpected[filePage] = stored;
                break;
            case StressOperation.FilePrivate:
                DoFilePrivate(cpu, filePage, random);
                break;
            case StressOperation.FileZap:
                // Every worker's word of the page is zapped; the contents survive in the page cache.
                shared.MadviseDontNeed(fileRegion + ((ulong)filePage * Page), Page);
                Check(cpu.Read(shared, FileAddress(filePage)), _fileExpected[filePage], "shared file page after MADV_DONTNEED");
                break;
            case StressOperation.FileSync:
                if (random.Next(2) == 0)
                {
                    machine.Writeback(file);
                    for (var i = 0; i < FilePages; i++)
                    {
                        Check(file.ReadStored(FileOffset(i)), _fileExpected[i], "backing store after Writeback");
                    }
                }
                else
                {
                    shared.Msync(fileRegion + ((ulong)filePage * Page), Page);
                    Check(file.ReadStored(FileOffset(filePage)), _fileExpected[filePage], "backing store after msync");
                }

                break;
            case StressOperation.Evict:
                // Unmap, clean and drop the page (unless another CPU faults it back or dirties it first): the read
                // below then refills it from the backing store.
                shared.MadviseDontNeed(fileRegion + ((ulong)filePage * Page), Page);
                shared.Msync(fileRegion + ((ulong)filePage * Page), Page);
                machine.EvictCleanPages(file);
                Check(cpu.Read(shared, FileAddress(filePage)), _fileExpected[filePage], "shared file page after eviction");
                break;
            case StressOperation.PinShort:
                if (random.Next(5) == 0)
                {
                    DoPinFile(cpu, filePage, random);
                }
                else
                {
                    DoPinShort(cpu, page, random);
                }

                break;
            case StressOperation.PinLongTerm:
                DoPinLongTerm(cpu, page, random);
                break;
            case StressOperation.GupReference:
                DoGupReference(cpu, page, filePage, random);
                break;
            case StressOperation.Poke:
                var poked = NextValue();
                cpu.PokeData(shared, Address(page), poked);
                Stored(page, poked, "PokeData");
                Check(cpu.Read(shared, Address(page)), poked, "read after PokeData");
                break;
            case StressOperation.FolioRegion:
                DoFolioRegion(cpu, random);
                break;
        }
    }

    /// <summary>
    /// A region of the worker's own in the shared process: one or two whole folios and 0 to folio − 1 pages more (the
    /// mmap is folio-aligned, so the whole folios' ranges can be large folios and the extra pages, whose range leaves
    /// the region, fall back to order 0). The first touch is a store to every page, except that one time in four one
    /// page is read first, which maps the zero page there and makes its range fall back too. Then one of: a munmap,
    /// madvise(DONTNEED) or mprotect that cuts through a folio (a split; refused, and the folio left partially mapped,
    /// while another worker's fork child maps it too); a fork with stores on both sides and after the child's exit;
    /// a pin or reference of a page of a folio held across a munmap that cuts through that folio (the split is
    /// refused); or, with swap, madvise(PAGEOUT) of part of it. Every page still mapped is read back after each step,
    /// and the region is unmapped at the end.
    /// </summary>
    private void DoFolioRegion(Cpu cpu, Random random)
    {
        var folio = folioPages;
        var count = (folio * (1 + random.Next(2))) + random.Next(folio);
        var at = shared.Mmap((ulong)count * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Array.Fill(_folioMapped, true, 0, count);
        Array.Fill(_folioExpected, 0UL, 0, count);
        if (random.Next(4) == 0)
        {
            var first = random.Next(count);
            Check(cpu.Read(shared, FolioAddress(at, first)), 0, $"fresh folio-region page {first}");
        }

        for (var i = 0; i < count; i++)
        {
            FolioStore(cpu, at, i);
        }

        CheckFolioRegion(cpu, at, count, "after the first stores");
        switch (random.Next(swap ? 6 : 5))
        {
            case 0:
                // A munmap of the head or the tail of the region, the cut inside a folio.
                var cut = FolioCut(random, count);
                if (random.Next(2) == 0)
                {
                    FolioMunmap(at, 0, cut);
                }
                else
                {
                    FolioMunmap(at, cut, count);
                }

                NoteFolio(StressFolioEvent.PartialMunmap);
                CheckFolioRegion(cpu, at, count, "after a munmap through a folio");
                FolioStoreMapped(cpu, at, count);
                CheckFolioRegion(cpu, at, count, "after stores to what a munmap through a folio left");
                break;
            case 1:
                var (from, to) = FolioRange(random, count);
                shared.MadviseDontNeed(FolioAddress(at, from) - ((ulong)id * 8), (ulong)(to - from) * Page);
                Array.Fill(_folioExpected, 0UL, from, to - from);
                NoteFolio(StressFolioEvent.PartialDontNeed);
                CheckFolioRegion(cpu, at, count, "after madvise(DONTNEED) through a folio");
                FolioStoreMapped(cpu, at, count);
                CheckFolioRegion(cpu, at, count, "after stores to pages madvise(DONTNEED) zapped");
                break;
            case 2:
                DoFolioMprotect(cpu, at, count, random);
                break;
            case 3:
                DoFolioFork(cpu, at, count, random);
                break;
            case 4:
                DoFolioPin(cpu, at, count, random);
                break;
            default:
                var (out0, out1) = FolioRange(random, count);
                shared.MadvisePageOut(FolioAddress(at, out0) - ((ulong)id * 8), (ulong)(out1 - out0) * Page);
                NoteFolio(StressFolioEvent.PageOut);
                CheckFolioRegion(cpu, at, count, "after madvise(PAGEOUT) of part of it");
                FolioStore(cpu, at, out0 + random.Next(out1 - out0));
                CheckFolioRegion(cpu, at, count, "after a store to a page madvise(PAGEOUT) paged out");
                break;
        }

        FolioMunmap(at, 0, count);
    }

    /// <summary>
    /// mprotect(PROT_READ) of a range that cuts through a folio: every page still reads as stored, a store inside
    /// faults, a store just outside (in the same folio when the range does not start at a folio boundary) does not;
    /// then PROT_READ|PROT_WRITE again and a store inside.
    /// </summary>
    private void DoFolioMprotect(Cpu cpu, ulong at, int count, Random random)
    {
        var (from, to) = FolioRange(random, count);
        var start = FolioAddress(at, from) - ((ulong)id * 8);
        shared.Mprotect(start, (ulong)(to - from) * Page, Prot.Read);
        NoteFolio(StressFolioEvent.PartialMprotect);
        CheckFolioRegion(cpu, at, count, "after mprotect(PROT_READ) through a folio");
        try
        {
            cpu.Write(shared, FolioAddress(at, from), NextValue());
            throw new InvalidOperationException($"a store to folio-region page {from} succeeded after mprotect(PROT_READ) of pages [{from}, {to})");
        }
        catch (SegmentationFault fault) when (fault.Reason == SegmentationFaultReason.Protection)
        {
        }

        if (from > 0)
        {
            FolioStore(cpu, at, from - 1);
        }

        if (to < count)
        {
            FolioStore(cpu, at, to);
        }

        shared.Mprotect(start, (ulong)(to - from) * Page, Prot.ReadWrite);
        FolioStore(cpu, at, from);
        CheckFolioRegion(cpu, at, count, "after mprotect back to PROT_READ|PROT_WRITE and stores");
    }

    /// <summary>
    /// A fork over the region: the child reads every page; the parent's store to a page of a folio copies it (the child
    /// keeps the old value), the child's store to another copies it for the child; after the child has exited, a store
    /// to a third page of the folio (reused under <c>MmId</c> when the folio is the parent's alone, copied under
    /// <c>PerPage</c>), and a munmap through the folio, which can split it now.
    /// </summary>
    private void DoFolioFork(Cpu cpu, ulong at, int count, Random random)
    {
        var parentPage = random.Next(count);
        var childPage = random.Next(count);
        using (var child = shared.Fork())
        {
            for (var i = 0; i < count; i++)
            {
                Check(cpu.Read(child, FolioAddress(at, i)), _folioExpected[i], $"child view of folio-region page {i} after fork");
            }

            var before = _folioExpected[parentPage];
            FolioStore(cpu, at, parentPage);
            Check(cpu.Read(child, FolioAddress(at, parentPage)), before, $"child view of folio-region page {parentPage} after the parent's store");
            var marker = NextValue();
            cpu.Write(child, FolioAddress(at, childPage), marker);
            Check(cpu.Read(child, FolioAddress(at, childPage)), marker, $"child view of folio-region page {childPage} after its own store");
            CheckFolioRegion(cpu, at, count, "after the child's store");
        }

        NoteFolio(StressFolioEvent.Fork);
        var folioStart = parentPage / folioPages * folioPages;
        FolioStore(cpu, at, Math.Min(count - 1, folioStart + random.Next(folioPages)));
        CheckFolioRegion(cpu, at, count, "after the child exited and a store");
        FolioMunmap(at, FolioCut(random, count), count);
        NoteFolio(StressFolioEvent.PartialMunmap);
        CheckFolioRegion(cpu, at, count, "after the child exited and a munmap through a folio");
    }

    /// <summary>
    /// A page of a whole folio held, by a pin for write (long-term or not, one time in four through GUP-fast only) or
    /// by a FOLL_GET reference, while a munmap takes the rest of the folio on one side of it: the folio cannot be split
    /// while held, and stays large and partially mapped. With a pin, one time in three a fork first (which copies the
    /// pinned page for the child); a device store through the pin reaches the process, and a process store the pin,
    /// before and after the munmap. The handle is dropped at the end, and the munmap at the end of the operation frees
    /// the folio.
    /// </summary>
    private void DoFolioPin(Cpu cpu, ulong at, int count, Random random)
    {
        var folio = folioPages;
        var first = random.Next(count / folio) * folio;
        var held = first + random.Next(folio);
        var reference = random.Next(3) == 0;
        var flags = reference ? (random.Next(2) == 0 ? GupFlags.NoFast : GupFlags.None)
            : GupFlags.Write | (random.Next(2) == 0 ? GupFlags.LongTerm : GupFlags.None) | (random.Next(4) == 0 ? GupFlags.FastOnly : GupFlags.None);
        var address = FolioAddress(at, held) - ((ulong)id * 8);
        using var references = reference ? cpu.GetUserPages(shared, address, 1, flags) : null;
        using var pin = reference ? null : cpu.PinUserPages(shared, address, 1, flags);
        var handleCount = pin?.Count ?? references!.Count;
        if (handleCount == 0)
        {
            // GUP-fast only may pin nothing (an entry it cannot use without faulting).
            return;
        }

        NoteFolio(StressFolioEvent.PinAcrossSplit);
        ulong Through() => pin?.Read(0, id) ?? references!.Read(0, id);
        CheckThrough(Through(), _folioExpected[held], $"{(reference ? "reference" : "pin")} ({flags}) of folio-region page {held}");
        if (pin is not null)
        {
            if (random.Next(3) == 0)
            {
                using var child = shared.Fork();
                var before = _folioExpected[held];
                Check(cpu.Read(child, FolioAddress(at, held)), before, $"child view of pinned folio-region page {held} after fork");
                FolioStore(cpu, at, held);
                CheckThrough(Through(), _folioExpected[held], $"pin ({flags}) of folio-region page {held} after fork and a parent store");
                Check(cpu.Read(child, FolioAddress(at, held)), before, $"child view of pinned folio-region page {held} after the parent's store");
            }

            var device = NextValue();
            pin.Write(0, id, device);
            _folioExpected[held] = device;
            Check(cpu.Read(shared, FolioAddress(at, held)), device, $"process read of pinned folio-region page {held} after a device store");
        }

        // The rest of the folio on one side of the held page: a boundary inside the folio, whose split the handle refuses.
        if (held > first)
        {
            FolioMunmap(at, first, held);
        }
        else
        {
            FolioMunmap(at, held + 1, first + folio);
        }

        NoteFolio(StressFolioEvent.PartialMunmap);
        CheckFolioRegion(cpu, at, count, $"after a munmap through the folio of held page {held}");
        CheckThrough(Through(), _folioExpected[held], $"{(reference ? "reference" : "pin")} ({flags}) of folio-region page {held} after a munmap through its folio");
        if (pin is not null)
        {
            FolioStore(cpu, at, held);
            CheckThrough(Through(), _folioExpected[held], $"pin ({flags}) of folio-region page {held} after a munmap through its folio and a process store");
            var device = NextValue();
            pin.Write(0, id, device);
            _folioExpected[held] = device;
            Check(cpu.Read(shared, FolioAddress(at, held)), device, $"process read of pinned folio-region page {held} after a munmap through its folio and a device store");
        }
    }

    /// <summary>A page boundary inside one of the region's whole folios (never a folio boundary): where a cut splits a folio.</summary>
    private int FolioCut(Random random, int count) => (random.Next(count / folioPages) * folioPages) + 1 + random.Next(folioPages - 1);

    /// <summary>Pages [from, to) of the region, starting inside a whole folio and one page to a folio long: a range that cuts through at least one folio.</summary>
    private (int From, int To) FolioRange(Random random, int count)
    {
        var from = FolioCut(random, count);
        return (from, Math.Min(count, from + 1 + random.Next(folioPages)));
    }

    private ulong FolioAddress(ulong at, int page) => at + ((ulong)page * Page) + ((ulong)id * 8);

    private void FolioStore(Cpu cpu, ulong at, int page)
    {
        var value = NextValue();
        cpu.Write(shared, FolioAddress(at, page), value);
        _folioExpected[page] = value;
    }

    /// <summary>One store to every page of the region still mapped.</summary>
    private void FolioStoreMapped(Cpu cpu, ulong at, int count)
    {
        for (var i = 0; i < count; i++)
        {
            if (_folioMapped[i])
            {
                FolioStore(cpu, at, i);
            }
        }
    }

    /// <summary>Every page of the region still mapped reads as the worker last stored (0 after a zap).</summary>
    private void CheckFolioRegion(Cpu cpu, ulong at, int count, string when)
    {
        for (var i = 0; i < count; i++)
        {
            if (_folioMapped[i])
            {
                Check(cpu.Read(shared, FolioAddress(at, i)), _folioExpected[i], $"folio-region page {i} of {count} {when}");
            }
        }
    }

    /// <summary>Unmaps the pages of [from, to) still mapped, one munmap per run of them (a hole may be another worker's mapping by now).</summary>
    private void FolioMunmap(ulong at, int from, int to)
    {
        for (var i = from; i < to;)
        {
            if (!_folioMapped[i])
            {
                i++;
                continue;
            }

            var end = i;
            while (end < to && _folioMapped[end])
            {
                _folioMapped[end++] = false;
            }

            shared.Munmap(at + ((ulong)i * Page), (ulong)(end - i) * Page);
            i = end;
        }
    }

    private void NoteFolio(StressFolioEvent folioEvent) => Interlocked.Increment(ref _folioEvents[(int)folioEvent]);

    /// <summary>
    /// Madvise(DONTNEED) of a scratch page of its own (each word of the shared region shares its page with the other
    /// workers' words). Half the time the page is pinned first, and then the zap parts the pin from the process: the
    /// process reads a fresh zero page, the pin keeps the old frame and its value, and a device store through the pin
    /// no longer reaches the process. This is the split that keeps zaps away from the pinned region.
    /// </summary>
    private void DoMadvise(Cpu cpu, Random random)
    {
        var scratch = shared.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        cpu.Write(shared, scratch, 7);
        using var pin = random.Next(2) == 0 ? cpu.PinUserPages(shared, scratch, 1, GupFlags.Write | GupFlags.LongTerm) : null;
        shared.MadviseDontNeed(scratch, Page);
        Check(cpu.Read(shared, scratch), 0, "page after MADV_DONTNEED");
        if (pin is not null)
        {
            Note(StressPinEvent.ScratchPin);
            CheckThrough(pin.Read(0, 0), 7, "pin of a page MADV_DONTNEED took from the process");
            pin.Write(0, 0, 8);
            Check(cpu.Read(shared, scratch), 0, "process after a device store to a pinned page it no longer maps");
        }

        // The pin outlives the mapping: its frame is freed at the unpin.
        shared.Munmap(scratch, Page);
    }

    /// <summary>
    /// Mprotect R/O and back on a private mapping of its own. Half the time the first page is pinned for write
    /// (long-term) across both changes, as an io_uring fixed buffer is: a device store while the mapping is read-only
    /// reaches the process, and the process's store after it is writable again reaches the pin (the store must reuse
    /// the pinned page, not copy it away).
    /// </summary>
    private void DoMprotect(Cpu cpu, Random random)
    {
        var guarded = shared.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        cpu.Write(shared, guarded, 11);
        using var pin = random.Next(2) == 0 ? cpu.PinUserPages(shared, guarded, 1, GupFlags.Write | GupFlags.LongTerm) : null;
        shared.Mprotect(guarded, 2 * Page, Prot.Read);
        Check(cpu.Read(shared, guarded), 11, "read-only page");
        if (pin is not null)
        {
            Note(StressPinEvent.ScratchPin);
            pin.Write(0, 0, 21);
            Check(cpu.Read(shared, guarded), 21, "read-only page after a device store through a pin");
            Note(StressPinEvent.DeviceStoreSeenByProcess);
        }

        try
        {
            cpu.Write(shared, guarded, 12);
            throw new InvalidOperationException("a store to a read-only mapping succeeded");
        }
        catch (SegmentationFault fault) when (fault.Reason == SegmentationFaultReason.Protection)
        {
        }

        shared.Mprotect(guarded, 2 * Page, Prot.ReadWrite);
        cpu.Write(shared, guarded, 13);
        Check(cpu.Read(shared, guarded), 13, "page made writable again");
        if (pin is not null)
        {
            CheckThrough(pin.Read(0, 0), 13, "pin after mprotect R/O, R/W and a process store");
            Note(StressPinEvent.ProcessStoreSeenByPin);
        }

        shared.Munmap(guarded, 2 * Page);
    }

    /// <summary>
    /// A short pin of one to four of the worker's anonymous pages: read-only or for write; through GUP-fast, the slow
    /// path only, or GUP-fast only (which may pin fewer pages, or none). The words read through the pin are the
    /// expected ones; a device store through a write pin reaches the process; a process store reaches the pin (a write
    /// pin holds the exclusive page; a read-only pin was given one by unsharing).
    /// </summary>
    private void DoPinShort(Cpu cpu, int page, Random random)
    {
        var count = 1 + random.Next(Math.Min(4, pages - page));
        var write = random.Next(2) == 0;
        var flags = (write ? GupFlags.Write : GupFlags.None) | random.Next(4) switch
        {
            0 => GupFlags.NoFast,
            1 => GupFlags.FastOnly,
            _ => GupFlags.None,
        };
        if (!write)
        {
            Populate(cpu, page, count);
        }

        using var pin = cpu.PinUserPages(shared, region + ((ulong)page * Page), count, flags);
        Note(StressPinEvent.ShortPin);
        for (var i = 0; i < pin.Count; i++)
        {
            CheckThrough(pin.Read(i, id), _expected[page + i], $"short pin ({flags}) of page {page + i}");
        }

        if (pin.Count == 0)
        {
            return;
        }

        var target = random.Next(pin.Count);
        if (write)
        {
            var device = NextValue();
            pin.Write(target, id, device);
            _expected[page + target] = device;
            CheckHeldPin(page + target, "a device store through a short pin");
            Check(cpu.Read(shared, Address(page + target)), device, $"process read after a device store through a short pin ({flags})");
            Note(StressPinEvent.DeviceStoreSeenByProcess);
        }

        var value = NextValue();
        cpu.Write(shared, Address(page + target), value);
        Stored(page + target, value, "a store");
        CheckThrough(pin.Read(target, id), value, $"short pin ({flags}) after a process store");
        Note(StressPinEvent.ProcessStoreSeenByPin);
    }

    /// <summary>
    /// A short write pin of one or two pages of the shared file mapping, with a device store into the worker's word:
    /// the process reads it through the mapping at once (a pinned page cannot be evicted, and a zap leaves it in the
    /// cache), and the unpin marks the page dirty, so the backing-store checks (FileSync and the final one) see it.
    /// </summary>
    private void DoPinFile(Cpu cpu, int page, Random random)
    {
        var count = 1 + random.Next(Math.Min(2, FilePages - page));
        var flags = GupFlags.Write | (random.Next(4) == 0 ? GupFlags.NoFast : GupFlags.None);
        using var pin = cpu.PinUserPages(shared, fileRegion + ((ulong)page * Page), count, flags);
        Note(StressPinEvent.FilePin);
        for (var i = 0; i < pin.Count; i++)
        {
            CheckThrough(pin.Read(i, id), _fileExpected[page + i], $"write pin of file page {page + i}");
        }

        var device = NextValue();
        pin.Write(0, id, device);
        _fileExpected[page] = device;
        Check(cpu.Read(shared, FileAddress(page)), device, "shared file mapping after a device store through a pin");
        Note(StressPinEvent.DeviceStoreSeenByProcess);
    }

    /// <summary>
    /// With no long-term pin held, takes one; with one held, exercises it (for each page a process store the pin must
    /// read, then for a write pin a device store the process must read) and releases it when its rounds are up.
    /// </summary>
    private void DoPinLongTerm(Cpu cpu, int page, Random random)
    {
        if (_held is not { } held)
        {
            TakeLongTermPin(cpu, page, random);
            return;
        }

        for (var i = 0; i < held.Pages; i++)
        {
            var pinned = held.First + i;
            var value = NextValue();
            cpu.Write(shared, Address(pinned), value);
            Stored(pinned, value, "a store");
            if (held.Writable)
            {
                var device = NextValue();
                held.Pin.Write(i, id, device);
                _expected[pinned] = device;
                Check(cpu.Read(shared, Address(pinned)), device, $"process read of long-term pinned page {pinned} after a device store");
                Note(StressPinEvent.DeviceStoreSeenByProcess);
            }
        }

        if (--held.RoundsLeft == 0)
        {
            ReleaseLongTermPin("before the unpin");
        }
    }

    /// <summary>
    /// Pins one to four pages long-term, for write two times in three: few pages and one pin per worker, so pins never
    /// hold enough frames to matter to the machine's budget. Held for 2–9 more PinLongTerm operations.
    /// </summary>
    private void TakeLongTermPin(Cpu cpu, int page, Random random)
    {
        var count = 1 + random.Next(Math.Min(4, pages - page));
        var writable = random.Next(3) != 0;
        // A read-only long-term pin of a page never stored to (still the shared zero page) is unshared into a page of
        // its own first (6.2's reliable R/O long-term pins), so it needs no Populate.
        var flags = GupFlags.LongTerm | (writable ? GupFlags.Write : GupFlags.None) | (random.Next(4) == 0 ? GupFlags.NoFast : GupFlags.None);

        var pin = cpu.PinUserPages(shared, region + ((ulong)page * Page), count, flags);
        _held = new LongTermPin(pin, page, count, writable, 2 + random.Next(8));
        Note(writable ? StressPinEvent.LongTermWritePin : StressPinEvent.LongTermReadOnlyPin);
        for (var i = page; i < page + count; i++)
        {
            CheckHeldPin(i, "the pin was taken");
        }
    }

    /// <summary>Checks every page of the held long-term pin once more, then unpins it. Nothing when none is held.</summary>
    private void ReleaseLongTermPin(string when)
    {
        if (_held is not { } held)
        {
            return;
        }

        for (var i = held.First; i < held.First + held.Pages; i++)
        {
            CheckHeldPin(i, when);
        }

        _held = null;
        held.Pin.Dispose();
    }

    /// <summary>
    /// FOLL_GET references to one to four pages, anonymous or (one time in four) of the shared file mapping, sometimes
    /// taken for write. A reference promises no coherence (a fork may share the page and the next store copy it away
    /// from the reference), so the words are checked at once and the references dropped.
    /// </summary>
    private void DoGupReference(Cpu cpu, int page, int filePage, Random random)
    {
        var file = random.Next(4) == 0;
        if (file)
        {
            page = filePage;
        }

        var count = 1 + random.Next(Math.Min(4, (file ? FilePages : pages) - page));
        var flags = (random.Next(4) == 0 ? GupFlags.Write : GupFlags.None) | (random.Next(4) == 0 ? GupFlags.NoFast : GupFlags.None);
        using var references = cpu.GetUserPages(shared, (file ? fileRegion : region) + ((ulong)page * Page), count, flags);
        Note(StressPinEvent.Reference);
        for (var i = 0; i < references.Count; i++)
        {
            CheckThrough(references.Read(i, id), file ? _fileExpected[page + i] : _expected[page + i], $"reference ({flags}) to {(file ? "file" : "anonymous")} page {page + i}");
        }
    }

    /// <summary>
    /// Makes sure the worker's pages [<paramref name="first"/>, +<paramref name="count"/>) are real anonymous pages
    /// before a short-term read-only pin, by storing once where it never has. Such a pin of a page still mapped to
    /// the shared zero page holds the zero page as it is (only long-term pins are unshared, since 6.2's "mm/gup:
    /// reliable R/O long-term pinning in COW mappings"), and the process's first store then maps a new page the pin
    /// never sees: not what this oracle checks.
    /// </summary>
    private void Populate(Cpu cpu, int first, int count)
    {
        for (var page = first; page < first + count; page++)
        {
            if (!_populated[page])
            {
                var value = NextValue();
                cpu.Write(shared, Address(page), value);
                Stored(page, value, "a first store");
            }
        }
    }

    /// <summary>Records a store of <paramref name="value"/> to the worker's word of <paramref name="page"/> and checks that a long-term pin of the page sees it.</summary>
    private void Stored(int page, ulong value, string what)
    {
        _expected[page] = value;
        _populated[page] = true;
        if (_held is { } held && held.Covers(page))
        {
            CheckHeldPin(page, what);
            Note(StressPinEvent.ProcessStoreSeenByPin);
        }
    }

    /// <summary>When <paramref name="page"/> is long-term pinned, checks that the pin reads the worker's expected word.</summary>
    private void CheckHeldPin(int page, string after)
    {
        if (_held is { } held && held.Covers(page))
        {
            var kind = held.Writable ? "write" : "read-only";
            CheckThrough(held.Pin.Read(page - held.First, id), _expected[page], $"long-term {kind} pin of page {page} after {after}");
        }
    }

    private void CheckThrough(ulong actual, ulong expected, string what)
    {
        Check(actual, expected, what);
        Note(StressPinEvent.HandleRead);
    }

    private void Note(StressPinEvent pinEvent) => Interlocked.Increment(ref _pinEvents[(int)pinEvent]);

    /// <summary>Maps a few pages of the file privately: they read as the file does, and stores to them stay private.</summary>
    private void DoFilePrivate(Cpu cpu, int page, Random random)
    {
        var count = 1 + random.Next(Math.Min(4, FilePages - page));
        var mapped = shared.Mmap((ulong)count * Page, Prot.ReadWrite, MapFlags.Private, file, page * (long)Page);
        var own = (ulong)id * 8;
        if (random.Next(2) == 0)
        {
            // A store before any read: do_cow_fault copies the file page straight into a private page (no read fault
            // maps the cache page first). The copy holds the file's words as they were: this worker's is its last.
            var first = NextValue();
            cpu.Write(shared, mapped + own, first);
            Check(cpu.Read(shared, mapped + own), first, "private copy made by a first store");
            Check(cpu.Read(shared, FileAddress(page)), _fileExpected[page], "shared file mapping after a first private store");
            shared.Munmap(mapped, (ulong)count * Page);
            return;
        }

        Check(cpu.Read(shared, mapped + own), _fileExpected[page], "private file mapping");
        var copy = NextValue();
        cpu.Write(shared, mapped + own, copy);
        Check(cpu.Read(shared, mapped + own), copy, "private copy after the store");
        Check(cpu.Read(shared, FileAddress(page)), _fileExpected[page], "shared file mapping after a private store");
        if (count > 1)
        {
            Check(cpu.Read(shared, mapped + Page + own), _fileExpected[page + 1], "private file mapping, second page");
        }

        shared.Munmap(mapped, (ulong)count * Page);
    }

    private void Check(ulong actual, ulong expected, string what)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"{what}: read 0x{actual:x}, expected 0x{expected:x}");
        }
    }
}
