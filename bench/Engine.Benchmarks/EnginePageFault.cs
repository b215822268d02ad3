using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Engine.Benchmarks;

/// <summary>
/// The page_fault1 loop on the engine: each worker thread drives its own <see cref="Cpu"/> and repeatedly maps a
/// 128 MiB private anonymous region, writes one word in each 4 KiB page (one anonymous fault each), and unmaps it.
/// The main thread lets the workers warm up, then counts the pages they touch during the measured window, exactly as
/// <c>bench/native/page_fault1.c</c> does for the kernel. Each worker also times its three phases (mmap, touch,
/// munmap) and the managed bytes it allocates in each, for the regions that fall wholly inside the window.
/// </summary>
public static class EnginePageFault1
{
    /// <summary>Bytes per region: 128 MiB, as in will-it-scale's page_fault1.</summary>
    public const ulong RegionBytes = 128UL << 20;

    /// <summary>Bytes per page.</summary>
    public const ulong PageBytes = 4096;

    /// <summary>Frames of the machine: two regions in flight (2 x 32,768 pages) plus page tables and per-CPU caches.</summary>
    public const int Frames = 80_000;

    private const int PagesPerRegion = (int)(RegionBytes / PageBytes);

    // Per-worker slots, 16 longs (128 bytes) apart so that two workers never write the same cache line.
    private const int Stride = 16;
    private const int PagesSlot = 0;
    private const int RegionsSlot = 1;
    private const int TouchTicksSlot = 2;
    private const int MunmapTicksSlot = 3;
    private const int MmapTicksSlot = 4;
    private const int TouchBytesSlot = 5;
    private const int MunmapBytesSlot = 6;
    private const int MmapBytesSlot = 7;

    private const int Warming = 0;
    private const int Measuring = 1;
    private const int Stopping = 2;

    /// <summary>
    /// Runs one configuration: <paramref name="workers"/> threads sharing address spaces as <paramref name="sharing"/>
    /// says, on a 2-CPU machine (or more if there are more workers), with or without poisoning of freed frames.
    /// Worker <c>i</c> drives CPU <c>i * cpuStride</c>: a stride of 2 leaves an idle CPU between two busy ones (a
    /// diagnostic for false sharing between neighbouring per-CPU objects). Checks the machine's invariants at the end.
    /// </summary>
    public static PageFaultRunResult Measure(EngineSharing sharing, int workers, bool poisonFreedFrames, TimeSpan warmup, TimeSpan duration, int cpuStride = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cpuStride);
        if (sharing == EngineSharing.SingleThread && workers != 1)
        {
            throw new ArgumentOutOfRangeException(nameof(workers), workers, "A single-thread run has one worker.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(workers);
        var options = new MachineOptions
        {
            Cpus = Math.Max(2, ((workers - 1) * cpuStride) + 1),
            Frames = Frames,
            PteLayout = PteLayout.Native64,
            PoisonFreedFrames = poisonFreedFrames,
        };
        var machines = new Machine[sharing == EngineSharing.SeparateMachines ? workers : 1];
        for (var i = 0; i < machines.Length; i++)
        {
            machines[i] = new Machine(options);
        }

        var processes = new Process[sharing is EngineSharing.SeparateProcesses or EngineSharing.SeparateMachines ? workers : 1];
        for (var i = 0; i < processes.Length; i++)
        {
            processes[i] = machines[Math.Min(i, machines.Length - 1)].CreateProcess();
        }

        var slots = new long[workers * Stride];
        int[] phase = [Warming];
        var failures = new Exception?[workers];
        var threads = new Thread[workers];
        for (var i = 0; i < workers; i++)
        {
            var worker = i;
            var cpu = machines[Math.Min(worker, machines.Length - 1)].Cpus[worker * cpuStride];
            var process = processes[Math.Min(worker, processes.Length - 1)];
            threads[i] = new Thread(() =>
            {
                try
                {
                    Work(cpu, process, slots, worker * Stride, phase);
                }
                catch (Exception e)
                {
                    failures[worker] = e;
                    Volatile.Write(ref phase[0], Stopping);
                }
            })
            {
                IsBackground = true,
                Name = $"page_fault1 worker {worker}",
            };
        }

        foreach (var thread in threads)
        {
            thread.Start();
        }

        Thread.Sleep(warmup);
        var statsBefore = machines.Select(m => m.Stats).ToArray();
        var pagesBefore = SumPages(slots, workers);
        var start = Stopwatch.GetTimestamp();
        Volatile.Write(ref phase[0], Measuring);
        Thread.Sleep(duration);
        var pagesAfter = SumPages(slots, workers);
        var elapsed = Stopwatch.GetElapsedTime(start);
        var statsAfter = machines.Select(m => m.Stats).ToArray();
        Volatile.Write(ref phase[0], Stopping);
        foreach (var thread in threads)
        {
            thread.Join();
        }

        foreach (var failure in failures)
        {
            if (failure is not null)
            {
                ExceptionDispatchInfo.Capture(failure).Throw();
            }
        }

        foreach (var machine in machines)
        {
            machine.CheckInvariants();
            machine.Dispose();
        }

        long regions = 0, touchTicks = 0, munmapTicks = 0, mmapTicks = 0, touchBytes = 0, munmapBytes = 0, mmapBytes = 0;
        for (var i = 0; i < workers; i++)
        {
            var b = i * Stride;
            regions += slots[b + RegionsSlot];
            touchTicks += slots[b + TouchTicksSlot];
            munmapTicks += slots[b + MunmapTicksSlot];
            mmapTicks += slots[b + MmapTicksSlot];
            touchBytes += slots[b + TouchBytesSlot];
            munmapBytes += slots[b + MunmapBytesSlot];
            mmapBytes += slots[b + MmapBytesSlot];
        }

        var pages = pagesAfter - pagesBefore;
        var nsPerTick = 1e9 / Stopwatch.Frequency;
        var regionPages = Math.Max(1, regions) * (double)PagesPerRegion;
        var shootdowns = Delta(statsBefore, statsAfter, s => s.TlbShootdowns);
        var targets = Delta(statsBefore, statsAfter, s => s.ShootdownTargets);
        return new PageFaultRunResult(
            FaultsPerSecond: pages / elapsed.TotalSeconds,
            Regions: regions,
            TouchNsPerPage: touchTicks * nsPerTick / regionPages,
            MunmapNsPerPage: munmapTicks * nsPerTick / regionPages,
            MmapNsPerRegion: mmapTicks * nsPerTick / Math.Max(1, regions),
            TouchBytesAllocatedPerPage: touchBytes / regionPages,
            MunmapBytesAllocatedPerRegion: munmapBytes / (double)Math.Max(1, regions),
            MmapBytesAllocatedPerRegion: mmapBytes / (double)Math.Max(1, regions),
            AnonymousFaultsPerPage: Delta(statsBefore, statsAfter, s => s.AnonymousFaults) / (double)Math.Max(1, pages),
            ShootdownsPerRegion: shootdowns * (double)PagesPerRegion / Math.Max(1, pages),
            ShootdownTargetsPerShootdown: targets / (double)Math.Max(1, shootdowns),
            FaultRetries: Delta(statsBefore, statsAfter, s => s.FaultRetries));
    }

    private static long Delta(MachineStats[] before, MachineStats[] after, Func<MachineStats, long> counter)
    {
        long total = 0;
        for (var i = 0; i < before.Length; i++)
        {
            total += counter(after[i]) - counter(before[i]);
        }

        return total;
    }

    private static long SumPages(long[] slots, int workers)
    {
        long total = 0;
        for (var i = 0; i < workers; i++)
        {
            total += Volatile.Read(ref slots[(i * Stride) + PagesSlot]);
        }

        return total;
    }

    /// <summary>One worker's loop; a region's phases are recorded only when the whole region ran inside the window.</summary>
    private static void Work(Cpu cpu, Process process, long[] slots, int b, int[] phase)
    {
        long pages = 0;
        while (true)
        {
            var phaseAtStart = Volatile.Read(ref phase[0]);
            if (phaseAtStart == Stopping)
            {
                return;
            }

            var bytes0 = GC.GetAllocatedBytesForCurrentThread();
            var t0 = Stopwatch.GetTimestamp();
            var region = process.Mmap(RegionBytes, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            var t1 = Stopwatch.GetTimestamp();
            var bytes1 = GC.GetAllocatedBytesForCurrentThread();
            var completed = true;
            for (ulong offset = 0; offset < RegionBytes; offset += PageBytes)
            {
                cpu.Write(process, region + offset, offset);
                Volatile.Write(ref slots[b + PagesSlot], ++pages);
                if (Volatile.Read(ref phase[0]) == Stopping)
                {
                    completed = false;
                    break;
                }
            }

            var t2 = Stopwatch.GetTimestamp();
            var bytes2 = GC.GetAllocatedBytesForCurrentThread();
            process.Munmap(region, RegionBytes);
            var t3 = Stopwatch.GetTimestamp();
            var bytes3 = GC.GetAllocatedBytesForCurrentThread();
            if (completed && phaseAtStart == Measuring && Volatile.Read(ref phase[0]) == Measuring)
            {
                slots[b + RegionsSlot]++;
                slots[b + MmapTicksSlot] += t1 - t0;
                slots[b + TouchTicksSlot] += t2 - t1;
                slots[b + MunmapTicksSlot] += t3 - t2;
                slots[b + MmapBytesSlot] += bytes1 - bytes0;
                slots[b + TouchBytesSlot] += bytes2 - bytes1;
                slots[b + MunmapBytesSlot] += bytes3 - bytes2;
            }
        }
    }
}
