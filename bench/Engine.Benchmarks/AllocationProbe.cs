using System.Globalization;

namespace Engine.Benchmarks;

/// <summary>
/// The <c>pagefault-alloc</c> mode: managed bytes allocated by each engine call of the page_fault1, page_fault2 and
/// page_fault3 loops, measured exactly with <see cref="GC.GetAllocatedBytesForCurrentThread"/> around the call alone
/// (set-up and clean-up outside) on a one-CPU machine with the hook off, on the last of several rounds so the JIT has
/// settled; then loops of mmap/munmap cycles under an <see cref="AllocationTickListener"/> to name the types
/// allocated. The issue requires 0 B per fault and per zap.
/// </summary>
public static class AllocationProbe
{
    private const ulong PageBytes = 4096;
    private const ulong ChunkBytes = 2UL << 20;
    private const ulong RegionBytes = EnginePageFault.RegionBytes;
    private const int Rounds = 5;
    private const MapFlags PrivateAnonymous = MapFlags.Private | MapFlags.Anonymous;

    /// <summary>Runs the probe; returns the process exit code.</summary>
    public static int Run()
    {
        using var machine = new Machine(new MachineOptions { Cpus = 1, Frames = 40_000, PteLayout = PteLayout.Native64 });
        using var process = machine.CreateProcess();
        var cpu = machine.Cpus[0];

        void Touch(ulong start, ulong length, bool readFirst)
        {
            for (var page = 0UL; page < length; page += PageBytes)
            {
                if (readFirst)
                {
                    _ = cpu.Read(process, start + page);
                }

                cpu.Write(process, start + page, page);
            }
        }

        var rows = new List<(string Operation, long Bytes)>();
        var region = 0UL;

        // A region with its page tables in place and no page mapped: the state the fault rows start from.
        void FreshRegion()
        {
            region = process.Mmap(RegionBytes, Prot.ReadWrite, PrivateAnonymous);
            Touch(region, RegionBytes, readFirst: false);
            process.MadviseDontNeed(region, RegionBytes);
        }

        void DropRegion() => process.Munmap(region, RegionBytes);

        rows.Add(("32,768 write faults (do_anonymous_page), page tables present",
            Measure(FreshRegion, () => Touch(region, RegionBytes, readFirst: false), DropRegion)));
        rows.Add(("32,768 read faults (zero page) + 32,768 write-protect faults (copy from the zero page)",
            Measure(FreshRegion, () => Touch(region, RegionBytes, readFirst: true), DropRegion)));
        rows.Add(("MadviseDontNeed of 128 MiB, 32,768 pages written (the zap)",
            Measure(() => { FreshRegion(); Touch(region, RegionBytes, readFirst: false); }, () => process.MadviseDontNeed(region, RegionBytes), DropRegion)));
        rows.Add(("MadviseDontNeed of 2 MiB, 512 pages written",
            Measure(() => { FreshRegion(); Touch(region, ChunkBytes, readFirst: false); }, () => process.MadviseDontNeed(region, ChunkBytes), DropRegion)));
        rows.Add(("the first write fault in a fresh 128 MiB anonymous mapping (page tables created; anon_vma_prepare where modelled)",
            Measure(() => region = process.Mmap(RegionBytes, Prot.ReadWrite, PrivateAnonymous), () => Touch(region, PageBytes, readFirst: false), DropRegion)));
        rows.Add(("mmap 128 MiB (empty address space)",
            Measure(() => { }, () => region = process.Mmap(RegionBytes, Prot.ReadWrite, PrivateAnonymous), DropRegion)));
        rows.Add(("munmap 128 MiB, never touched (no page table to free)",
            Measure(() => region = process.Mmap(RegionBytes, Prot.ReadWrite, PrivateAnonymous), DropRegion, () => { })));
        foreach (var (pages, tables) in new[] { (1UL, "1 PTE table, PMD, PUD"), (512UL, "1 PTE table, PMD, PUD"), (32_768UL, "64 PTE tables, PMD, PUD") })
        {
            rows.Add(($"munmap 128 MiB, {pages:N0} page(s) written ({tables} freed)",
                Measure(() => { region = process.Mmap(RegionBytes, Prot.ReadWrite, PrivateAnonymous); Touch(region, pages * PageBytes, readFirst: false); }, DropRegion, () => { })));
        }

        rows.AddRange(FileRows());

        Console.WriteLine($"Managed bytes allocated by the call alone (round {Rounds} of {Rounds}; 1 CPU, hook off, .NET {Environment.Version}):");
        Console.WriteLine();
        Console.WriteLine("| call | bytes |");
        Console.WriteLine("|---|---:|");
        foreach (var (operation, bytes) in rows)
        {
            Console.WriteLine($"| {operation} | {bytes.ToString("N0", CultureInfo.InvariantCulture)} |");
        }

        // Name the types: enough mmap/munmap cycles to cross the ~100 KB allocation tick many times.
        const int cycles = 20_000;
        using (var listener = new AllocationTickListener())
        {
            for (var i = 0; i < cycles; i++)
            {
                var r = process.Mmap(ChunkBytes, Prot.ReadWrite, PrivateAnonymous);
                cpu.Write(process, r, 1);
                process.Munmap(r, ChunkBytes);
            }

            listener.PrintTable($"{cycles:N0} cycles of mmap 2 MiB, one write fault, munmap");
        }

        machine.CheckInvariants();
        PrintFileTicks(cycles);
        return 0;
    }

    /// <summary>
    /// The rows of the file tests, on a machine of their own with room for a cached 128 MiB file and a 128 MiB region
    /// of private copies: each fault kind with the page tables present, page-cache fills, the zaps of dirty shared
    /// file pages (the deferred-rmap path), and mmap and munmap of file mappings.
    /// </summary>
    private static List<(string Operation, long Bytes)> FileRows()
    {
        using var machine = new Machine(new MachineOptions { Cpus = 1, Frames = 80_000, PteLayout = PteLayout.Native64 });
        using var process = machine.CreateProcess();
        var cpu = machine.Cpus[0];
        var file = machine.CreateFile("pagefault-alloc", (long)RegionBytes);
        var region = 0UL;

        void Touch(ulong length)
        {
            for (var page = 0UL; page < length; page += PageBytes)
            {
                cpu.Write(process, region + page, page + 1);
            }
        }

        // Mapped, every page table present, no page mapped; the file cached (and, once written shared, dirty).
        void FreshMapping(MapFlags flags)
        {
            region = process.Mmap(RegionBytes, Prot.ReadWrite, flags, file, 0);
            Touch(RegionBytes);
            process.MadviseDontNeed(region, RegionBytes);
        }

        void DropMapping() => process.Munmap(region, RegionBytes);

        var rows = new List<(string Operation, long Bytes)>
        {
            ("page_fault2: 32,768 private file write faults (do_cow_fault), file cached, page tables present",
                Measure(() => FreshMapping(MapFlags.Private), () => Touch(RegionBytes), DropMapping)),
            ("page_fault3: 32,768 shared file write faults (do_shared_fault), file cached and dirty, page tables present",
                Measure(() => FreshMapping(MapFlags.Shared), () => Touch(RegionBytes), DropMapping)),
            ("32,768 private file write faults that fill the page cache (file written back and evicted first)",
                Measure(
                    () =>
                    {
                        FreshMapping(MapFlags.Private);
                        machine.Writeback(file);
                        machine.EvictCleanPages(file);
                    },
                    () => Touch(RegionBytes),
                    DropMapping)),
            ("MadviseDontNeed of a 128 MiB shared file mapping, 32,768 dirty pages (DelayRmap on)",
                Measure(() => { FreshMapping(MapFlags.Shared); Touch(RegionBytes); }, () => process.MadviseDontNeed(region, RegionBytes), DropMapping)),
            ("MadviseDontNeed of 2 MiB of a shared file mapping, 512 dirty pages (DelayRmap on)",
                Measure(() => { FreshMapping(MapFlags.Shared); Touch(ChunkBytes); }, () => process.MadviseDontNeed(region, ChunkBytes), DropMapping)),
            ("MadviseDontNeed of a 128 MiB private file mapping, 32,768 private copies",
                Measure(() => { FreshMapping(MapFlags.Private); Touch(RegionBytes); }, () => process.MadviseDontNeed(region, RegionBytes), DropMapping)),
            ("the first write fault in a fresh private file mapping (page tables created; anon_vma_prepare where modelled)",
                Measure(() => region = process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private, file, 0), () => Touch(PageBytes), DropMapping)),
            ("the first write fault in a fresh shared file mapping (page tables created)",
                Measure(() => region = process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Shared, file, 0), () => Touch(PageBytes), DropMapping)),
            ("mmap 128 MiB of a file, shared",
                Measure(() => { }, () => region = process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Shared, file, 0), DropMapping)),
            ("munmap 128 MiB shared file mapping, 32,768 pages written (64 PTE tables, PMD, PUD freed)",
                Measure(() => { region = process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Shared, file, 0); Touch(RegionBytes); }, DropMapping, () => { })),
            ("munmap 128 MiB private file mapping, 32,768 pages written (64 PTE tables, PMD, PUD freed)",
                Measure(() => { region = process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private, file, 0); Touch(RegionBytes); }, DropMapping, () => { })),
        };
        machine.CheckInvariants();
        return rows;
    }

    /// <summary>Names the types allocated by <paramref name="cycles"/> mmap/write/munmap cycles of each file mapping kind.</summary>
    private static void PrintFileTicks(int cycles)
    {
        using var machine = new Machine(new MachineOptions { Cpus = 1, Frames = 40_000, PteLayout = PteLayout.Native64 });
        using var process = machine.CreateProcess();
        var cpu = machine.Cpus[0];
        var file = machine.CreateFile("pagefault-alloc ticks", (long)ChunkBytes);
        foreach (var (flags, name) in new[] { (MapFlags.Private, "private"), (MapFlags.Shared, "shared") })
        {
            using var listener = new AllocationTickListener();
            for (var i = 0; i < cycles; i++)
            {
                var r = process.Mmap(ChunkBytes, Prot.ReadWrite, flags, file, 0);
                cpu.Write(process, r, 1);
                process.Munmap(r, ChunkBytes);
            }

            listener.PrintTable($"{cycles:N0} cycles of mmap 2 MiB of a file ({name}), one write fault, munmap");
        }

        machine.CheckInvariants();
    }

    /// <summary>Bytes allocated on this thread by <paramref name="action"/> alone, on the last of <see cref="Rounds"/> rounds.</summary>
    private static long Measure(Action setup, Action action, Action cleanup)
    {
        long bytes = 0;
        for (var round = 0; round < Rounds; round++)
        {
            setup();
            var before = GC.GetAllocatedBytesForCurrentThread();
            action();
            bytes = GC.GetAllocatedBytesForCurrentThread() - before;
            cleanup();
        }

        return bytes;
    }
}
