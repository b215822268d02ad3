namespace Engine.Cli.Stress;

/// <summary>
/// One real thread driving one <see cref="Cpu"/>. It owns <see cref="PagesPerWorker"/> pages of the shared process
/// (one word per page at its own offset) and remembers what it last stored in each, so every read has a known
/// expected value; around that it faults fresh regions in and out, mprotects and madvises its own pages, and forks
/// the shared process, checking both views.
/// </summary>
internal sealed class StressWorker(Machine machine, Process shared, ulong region, int id, int seed, Func<bool> stopping)
{
    public const int PagesPerWorker = 64;
    private const ulong Page = 4096;

    private readonly ulong[] _expected = new ulong[PagesPerWorker];
    private readonly long[] _counts = new long[Enum.GetValues<StressOperation>().Length];
    private ulong _serial;

    public long Count(StressOperation operation) => Interlocked.Read(ref _counts[(int)operation]);

    public string? Failure { get; private set; }

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
                    < 480 => StressOperation.Read,
                    < 960 => StressOperation.Write,
                    < 980 => StressOperation.FreshRegion,
                    < 990 => StressOperation.Madvise,
                    < 997 => StressOperation.Mprotect,
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

    private void Do(Cpu cpu, StressOperation operation, int page, Random random)
    {
        switch (operation)
        {
            case StressOperation.Read:
                Check(cpu.Read(shared, Address(page)), _expected[page], "read");
                break;
            case StressOperation.Write:
                var value = ((ulong)(id + 1) << 48) | ++_serial;
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

                    var marker = ((ulong)(id + 1) << 48) | ++_serial;
                    cpu.Write(child, Address(page), marker);
                    Check(cpu.Read(shared, Address(page)), _expected[page], "parent view after the child's store");
                    cpu.Write(shared, Address(page), marker + 1);
                    _expected[page] = marker + 1;
                    Check(cpu.Read(child, Address(page)), marker, "child view after the parent's store");
                }

                break;
        }
    }

    private void Check(ulong actual, ulong expected, string what)
    {
        if (actual != expected)
        {
            throw new InvalidOperationException($"{what}: read 0x{actual:x}, expected 0x{expected:x}");
        }
    }
}
