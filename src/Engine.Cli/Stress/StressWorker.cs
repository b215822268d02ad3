namespace Engine.Cli.Stress;

/// <summary>
/// One real thread driving one <see cref="Cpu"/>. It owns one word (at its own offset) in each of the
/// <see cref="PagesPerWorker"/> anonymous pages of the shared process and in each page of the shared file mapping,
/// and remembers what it last stored in each, so every read has a known expected value. Around that it faults fresh
/// regions in and out, mprotects and madvises its own pages, maps the file privately and copies its pages, zaps
/// pages of the shared file mapping (their contents survive: a zap of a dirty entry dirties the page), writes the
/// file back (checking that the backing store then holds its last stores, as fsync promises), evicts clean pages
/// (a later read refills them from the backing store), and forks the shared process, checking both views.
/// </summary>
internal sealed class StressWorker(Machine machine, Process shared, ulong region, BackingFile file, ulong fileRegion, int id, int seed, Func<bool> stopping)
{
    public const int PagesPerWorker = 64;
    private const ulong Page = 4096;

    private readonly ulong[] _expected = new ulong[PagesPerWorker];
    private readonly ulong[] _fileExpected = new ulong[PagesPerWorker];
    private readonly long[] _counts = new long[Enum.GetValues<StressOperation>().Length];
    private ulong _serial;

    public long Count(StressOperation operation) => Interlocked.Read(ref _counts[(int)operation]);

    public string? Failure { get; private set; }

    /// <summary>The word this worker last stored in file page <paramref name="page"/> (read once the worker has stopped).</summary>
    public ulong FileExpected(int page) => _fileExpected[page];

    /// <summary>This worker's word in page <paramref name="page"/> of the file, as a byte offset.</summary>
    public long FileOffset(int page) => (page * (long)Page) + (id * 8L);

    public void Run()
    {
        var cpu = machine.Cpus[id];
        var random = new Random(seed);
        try
        {
            while (!stopping())
            {
                var roll = random.Next(1000);
                var page = random.Next(PagesPerWorker);
                var operation = roll switch
                {
                    < 380 => StressOperation.Read,
                    < 760 => StressOperation.Write,
                    < 840 => StressOperation.FileRead,
                    < 920 => StressOperation.FileWrite,
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
        }
        catch (Exception e)
        {
            Failure = $"CPU {id}: {e.GetType().Name}: {e.Message}";
        }
    }

    private ulong Address(int page) => region + ((ulong)page * Page) + ((ulong)id * 8);

    private ulong FileAddress(int page) => fileRegion + ((ulong)page * Page) + ((ulong)id * 8);

    private ulong NextValue() => ((ulong)(id + 1) << 48) | ++_serial;

    private void Do(Cpu cpu, StressOperation operation, int page, Random random)
    {
        switch (operation)
        {
            case StressOperation.Read:
                Check(cpu.Read(shared, Address(page)), _expected[page], "read");
                break;
            case StressOperation.Write:
                var value = NextValue();
                cpu.Write(shared, Address(page), value);
                _expected[page] = value;
                break;
            case StressOperation.FreshRegion:
                var pages = 1 + random.Next(16);
                var fresh = shared.Mmap((ulong)pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
                for (var i = 0; i < pages; i++)
                {
                    Check(cpu.Read(shared, fresh + ((ulong)i * Page)), 0, "fresh page");
                    cpu.Write(shared, fresh + ((ulong)i * Page), (ulong)i + 1);
                }

                for (var i = 0; i < pages; i++)
                {
                    Check(cpu.Read(shared, fresh + ((ulong)i * Page)), (ulong)i + 1, "fresh page after write");
                }

                shared.Munmap(fresh, (ulong)pages * Page);
                break;
            case StressOperation.Madvise:
                // Each worker's word shares its page with the other workers' words: zap only a private scratch page.
                var scratch = shared.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
                cpu.Write(shared, scratch, 7);
                shared.MadviseDontNeed(scratch, Page);
                Check(cpu.Read(shared, scratch), 0, "page after MADV_DONTNEED");
                shared.Munmap(scratch, Page);
                break;
            case StressOperation.Mprotect:
                var guarded = shared.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
                cpu.Write(shared, guarded, 11);
                shared.Mprotect(guarded, 2 * Page, Prot.Read);
                Check(cpu.Read(shared, guarded), 11, "read-only page");
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
                shared.Munmap(guarded, 2 * Page);
                break;
            case StressOperation.Fork:
                using (var child = shared.Fork())
                {
                    // The child sees this worker's words as they were (nobody else writes them).
                    for (var i = 0; i < PagesPerWorker; i += 7)
                    {
                        Check(cpu.Read(child, Address(i)), _expected[i], "child view after fork");
                    }

                    var marker = NextValue();
                    cpu.Write(child, Address(page), marker);
                    Check(cpu.Read(shared, Address(page)), _expected[page], "parent view after the child's store");
                    cpu.Write(shared, Address(page), marker + 1);
                    _expected[page] = marker + 1;
                    Check(cpu.Read(child, Address(page)), marker, "child view after the parent's store");

                    // The shared file mapping is inherited, not copied: the child sees the file, and its stores reach it.
                    Check(cpu.Read(child, FileAddress(page)), _fileExpected[page], "child view of the shared file mapping");
                    var fileMarker = NextValue();
                    cpu.Write(child, FileAddress(page), fileMarker);
                    _fileExpected[page] = fileMarker;
                    Check(cpu.Read(shared, FileAddress(page)), fileMarker, "parent view of the child's store to the shared file mapping");
                }

                break;
            case StressOperation.FileRead:
                Check(cpu.Read(shared, FileAddress(page)), _fileExpected[page], "shared file mapping");
                break;
            case StressOperation.FileWrite:
                var stored = NextValue();
                cpu.Write(shared, FileAddress(page), stored);
                _fileExpected[page] = stored;
                break;
            case StressOperation.FilePrivate:
                DoFilePrivate(cpu, page, random);
                break;
            case StressOperation.FileZap:
                // Every worker's word of the page is zapped; the contents survive in the page cache.
                shared.MadviseDontNeed(fileRegion + ((ulong)page * Page), Page);
                Check(cpu.Read(shared, FileAddress(page)), _fileExpected[page], "shared file page after MADV_DONTNEED");
                break;
            case StressOperation.FileSync:
                if (random.Next(2) == 0)
                {
                    machine.Writeback(file);
                    for (var i = 0; i < PagesPerWorker; i++)
                    {
                        Check(file.ReadStored(FileOffset(i)), _fileExpected[i], "backing store after Writeback");
                    }
                }
                else
                {
                    shared.Msync(fileRegion + ((ulong)page * Page), Page);
                    Check(file.ReadStored(FileOffset(page)), _fileExpected[page], "backing store after msync");
                }

                break;
            case StressOperation.Evict:
                // Unmap, clean and drop the page (unless another CPU faults it back or dirties it first): the read
                // below then refills it from the backing store.
                shared.MadviseDontNeed(fileRegion + ((ulong)page * Page), Page);
                shared.Msync(fileRegion + ((ulong)page * Page), Page);
                machine.EvictCleanPages(file);
                Check(cpu.Read(shared, FileAddress(page)), _fileExpected[page], "shared file page after eviction");
                break;
        }
    }

    /// <summary>Maps a few pages of the file privately: they read as the file does, and stores to them stay private.</summary>
    private void DoFilePrivate(Cpu cpu, int page, Random random)
    {
        var pages = 1 + random.Next(Math.Min(4, PagesPerWorker - page));
        var mapped = shared.Mmap((ulong)pages * Page, Prot.ReadWrite, MapFlags.Private, file, page * (long)Page);
        var own = (ulong)id * 8;
        Check(cpu.Read(shared, mapped + own), _fileExpected[page], "private file mapping");
        var copy = NextValue();
        cpu.Write(shared, mapped + own, copy);
        Check(cpu.Read(shared, mapped + own), copy, "private copy after the store");
        Check(cpu.Read(shared, FileAddress(page)), _fileExpected[page], "shared file mapping after a private store");
        if (pages > 1)
        {
            Check(cpu.Read(shared, mapped + Page + own), _fileExpected[page + 1], "private file mapping, second page");
        }

        shared.Munmap(mapped, (ulong)pages * Page);
    }

    private void Check(ulong actual, ulong expected, string what)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"{what}: read 0x{actual:x}, expected 0x{expected:x}");
        }
    }
}
