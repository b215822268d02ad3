using System.Globalization;

namespace Engine.Benchmarks;

/// <summary>
/// The <c>gup-alloc</c> mode: managed bytes allocated by one <see cref="Cpu.PinUserPages(Process, ulong, int, GupFlags)"/> or
/// <see cref="Cpu.GetUserPages"/> call alone and by its <c>Dispose</c> (the unpin) alone, for 1 to 512 pages that are
/// mapped and writable, measured as <see cref="ForkAllocationProbe"/> does
/// (<see cref="GC.GetAllocatedBytesForCurrentThread"/> around the call, last of several rounds, one CPU, hook off);
/// then the types named by the runtime's allocation ticks over many one-page pin/unpin cycles.
/// <see cref="GupBenchmarks"/> reports the same bytes per page, rounded.
/// </summary>
public static class GupAllocationProbe
{
    private const ulong PageBytes = 4096;
    private const int RegionPages = 512;
    private const int Rounds = 5;

    /// <summary>Runs the probe; returns the process exit code.</summary>
    public static int Run()
    {
        using var machine = new Machine(new MachineOptions
        {
            Cpus = 1,
            Frames = 4_096,
            PteLayout = PteLayout.Native64,
        });
        using var process = machine.CreateProcess();
        var cpu = machine.Cpus[0];
        var region = process.Mmap(RegionPages * PageBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (ulong page = 0; page < RegionPages * PageBytes; page += PageBytes)
        {
            cpu.Write(process, region + page, page);
        }

        var faultsBefore = machine.Stats.WriteProtectFaults + machine.Stats.AnonymousFaults;
        Console.WriteLine($"Managed bytes allocated by the call alone (round {Rounds} of {Rounds}; 1 CPU, hook off, .NET {Environment.Version}):");
        Console.WriteLine();
        Console.WriteLine("| call | pages | take | release (Dispose) | per page |");
        Console.WriteLine("|---|---:|---:|---:|---:|");
        var calls = new (string Name, Func<int, IDisposable> Take)[]
        {
            ("PinUserPages, Write + FastOnly", pages => cpu.PinUserPages(process, region, pages, GupFlags.Write | GupFlags.FastOnly)),
            ("PinUserPages, Write + NoFast", pages => cpu.PinUserPages(process, region, pages, GupFlags.Write | GupFlags.NoFast)),
            ("GetUserPages, Write + FastOnly", pages => cpu.GetUserPages(process, region, pages, GupFlags.Write | GupFlags.FastOnly)),
        };
        foreach (var (name, take) in calls)
        {
            foreach (var pages in new[] { 1, 2, 16, 512 })
            {
                var (taking, releasing) = Measure(take, pages);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"| {name} | {pages} | {taking:N0} | {releasing:N0} | {(double)(taking + releasing) / pages:N2} |"));
            }
        }

        const int cycles = 200_000;
        using (var listener = new AllocationTickListener())
        {
            for (var i = 0; i < cycles; i++)
            {
                cpu.PinUserPages(process, region, 1, GupFlags.Write | GupFlags.FastOnly).Dispose();
            }

            listener.PrintTable($"{cycles:N0} one-page pin/unpin cycles");
        }

        var faults = machine.Stats.WriteProtectFaults + machine.Stats.AnonymousFaults - faultsBefore;
        if (faults != 0)
        {
            Console.WriteLine($"Unexpected: {faults} faults during the probe; the pages were mapped and writable.");
            return 1;
        }

        machine.CheckInvariants();
        return 0;
    }

    /// <summary>Bytes allocated by the last round's take and release.</summary>
    private static (long Take, long Release) Measure(Func<int, IDisposable> take, int pages)
    {
        long taking = 0;
        long releasing = 0;
        for (var round = 0; round < Rounds; round++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var handle = take(pages);
            var between = GC.GetAllocatedBytesForCurrentThread();
            handle.Dispose();
            var after = GC.GetAllocatedBytesForCurrentThread();
            taking = between - before;
            releasing = after - between;
        }

        return (taking, releasing);
    }
}
