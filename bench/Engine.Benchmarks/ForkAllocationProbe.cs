using System.Globalization;

namespace Engine.Benchmarks;

/// <summary>
/// The <c>fork-alloc</c> mode: managed bytes allocated by <c>Fork()</c> alone and by the child's exit
/// (<c>Dispose()</c>) alone, for a fully written region of 1, 4 and 16 MiB, measured as <see cref="AllocationProbe"/>
/// does (<see cref="GC.GetAllocatedBytesForCurrentThread"/> around the call, last of several rounds, one CPU, hook
/// off); then the types named by the runtime's allocation ticks over many fork/exit cycles. The issue requires fork's
/// allocation not to depend on the region's size.
/// </summary>
public static class ForkAllocationProbe
{
    private const ulong PageBytes = 4096;
    private const int Rounds = 5;

    /// <summary>Runs the probe; returns the process exit code.</summary>
    public static int Run()
    {
        Console.WriteLine($"Managed bytes allocated by the call alone (round {Rounds} of {Rounds}; 1 CPU, hook off, .NET {Environment.Version}):");
        Console.WriteLine();
        Console.WriteLine("| region | child tables | Fork() | child.Dispose() | both |");
        Console.WriteLine("|---:|---:|---:|---:|---:|");
        foreach (var mib in new[] { 1, 2, 4, 8, 16, 64 })
        {
            var (fork, exit, tables) = Measure((ulong)mib << 20);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {mib} MiB | {tables} | {fork:N0} | {exit:N0} | {fork + exit:N0} |"));
        }

        const int cycles = 5_000;
        const ulong tickRegion = 16UL << 20;
        using var machine = NewMachine(tickRegion);
        using var parent = machine.CreateProcess();
        WriteRegion(machine, parent, parent.Mmap(tickRegion, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous), tickRegion);
        using (var listener = new AllocationTickListener())
        {
            for (var i = 0; i < cycles; i++)
            {
                parent.Fork().Dispose();
            }

            listener.PrintTable($"{cycles:N0} fork/exit cycles of a 16 MiB region");
        }

        machine.CheckInvariants();
        return 0;
    }

    /// <summary>Bytes allocated by fork and by the child's exit on the last round, and the page tables fork allocated for the child.</summary>
    private static (long Fork, long Exit, long ChildTables) Measure(ulong regionBytes)
    {
        using var machine = NewMachine(regionBytes);
        using var parent = machine.CreateProcess();
        var region = parent.Mmap(regionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        long fork = 0;
        long exit = 0;
        long tables = 0;
        for (var round = 0; round < Rounds; round++)
        {
            // Every entry writable and exclusive again, as for a first fork.
            WriteRegion(machine, parent, region, regionBytes);
            var tablesBefore = machine.Stats.PageTablesAllocated;
            var before = GC.GetAllocatedBytesForCurrentThread();
            var child = parent.Fork();
            var between = GC.GetAllocatedBytesForCurrentThread();
            child.Dispose();
            var after = GC.GetAllocatedBytesForCurrentThread();
            tables = machine.Stats.PageTablesAllocated - tablesBefore;
            fork = between - before;
            exit = after - between;
        }

        machine.CheckInvariants();
        return (fork, exit, tables);
    }

    private static Machine NewMachine(ulong regionBytes) => new(new MachineOptions
    {
        Cpus = 1,
        Frames = (int)(regionBytes / PageBytes) + 4_096,
        PteLayout = PteLayout.Native64,
    });

    private static void WriteRegion(Machine machine, Process process, ulong region, ulong regionBytes)
    {
        var cpu = machine.Cpus[0];
        for (ulong page = 0; page < regionBytes; page += PageBytes)
        {
            cpu.Write(process, region + page, page);
        }
    }
}
