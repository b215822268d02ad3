using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Engine.Benchmarks;

/// <summary>
/// The page-fault loops of <see cref="PageFaultTest"/> on the engine: each worker thread drives its own
/// <see cref="Cpu"/> and repeatedly maps a 128 MiB region (private anonymous memory, or a private or shared mapping of
/// a 128 MiB file of its own), writes one word in each 4 KiB page (one fault each), and unmaps it. The main thread
/// lets the workers warm up, then counts the pages they touch during the measured window, exactly as
/// <c>bench/native/harness.c</c> does for the kernel. Each worker also times its three phases (mmap, touch, munmap)
/// and the managed bytes it allocates in each, for the regions that fall wholly inside the window. The word written
/// to a page is its offset in the region plus one, so a file page written is never left zero and the file tests can
/// check at the end what reached the file.
/// </summary>
public static class EnginePageFault
{
    /// <summary>Bytes per region: 128 MiB, as in will-it-scale's page_fault1.</summary>
    public const ulong RegionBytes = 128UL << 20;

    /// <summary>Bytes per page.</summary>
    public const ulong PageBytes = 4096;

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
    /// Runs one configuration of <paramref name="test"/>: <paramref name="workers"/> threads sharing address spaces
    /// as <paramref name="sharing"/> says, on a 2-CPU machine (or more if there are more workers) with
    /// <see cref="PageFaultTest.Frames(int)"/> frames, with or without poisoning of freed frames. In the file tests each
    /// worker maps a file of its own (will-it-scale's "separate file" tests), created before the workers start.
    /// Worker <c>i</c> drives CPU <c>i * cpuStride</c>: a stride of 2 leaves an idle CPU between two busy ones (a
    /// diagnostic for false sharing between neighbouring per-CPU objects). At the end, checks what reached each file
    /// (<see cref="CheckFiles"/>) and the machine's invariants. With <paramref name="workingSet"/> above 1 the machine
    /// has that much less memory than the workers' peak (<see cref="PageFaultTest.Frames(int, double)"/>) and swap
    /// for all of it, so the loops run on direct reclaim.
    /// </summary>
    public static PageFaultRunResult Measure(PageFaultTest test, EngineSharing sharing, int workers, bool poisonFreedFrames, TimeSpan warmup, TimeSpan duration, int cpuStride = 1, double workingSet = 1)
    {
        ArgumentNullException.ThrowIfNull(test);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(cpuStride);
        if (sharing == EngineSharing.SingleThread && workers != 1)
        {
            throw new ArgumentOutOfRangeException(nameof(workers), workers, "A single-thread run has one worker.");
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(workers);
        var options = new MachineOptions
        {
            Cpus = Math.Max(2, ((workers - 1) * cpuStride) + 1),
            Frames = test.Frames(sharing == EngineSharing.SeparateMachines ? 1 : workers, workingSet),
            SwapSlots = test.SwapSlotsFor(sharing == EngineSharing.SeparateMachines ? 1 : workers),
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

        var files = new BackingFile?[workers];
        if (test.MapsFile)
        {
            for (var i = 0; i < workers; i++)
            {
                files[i] = machines[Math.Min(i, machines.Length - 1)].CreateFile($"{test.Name}.{i}", (long)RegionBytes);
            }
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
            var file = files[worker];
            threads[i] = new Thread(() =>
            {
                try
                {
                    Work(cpu, process, test.Flags, file, slots, worker * Stride, phase);
                }
                catch (Exception e)
                {
                    failures[worker] = e;
                    Volatile.Write(ref phase[0], Stopping);
                }
            })
            {
                IsBackground = true,
                Name = $"{test.Name} worker {worker}",
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

        var touched = new long[workers];
        for (var i = 0; i < workers; i++)
        {
            touched[i] = slots[(i * Stride) + PagesSlot];
        }

        CheckFiles(test, machines, files, touched);
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
            FaultsPerPage: Delta(statsBefore, statsAfter, test.Faults) / (double)Math.Max(1, pages),
            PageCacheFillsPerPage: Delta(statsBefore, statsAfter, s => s.PageCacheFills) / (double)Math.Max(1, pages),
            ShootdownsPerRegion: shootdowns * (double)PagesPerRegion / Math.Max(1, pages),
            ShootdownTargetsPerShootdown: targets / (double)Math.Max(1, shootdowns),
            FaultRetries: Delta(statsBefore, statsAfter, s => s.FaultRetries),
            SwapOutsPerPage: Delta(statsBefore, statsAfter, s => s.SwapOuts) / (double)Math.Max(1, pages),
            FileDropsPerPage: Delta(statsBefore, statsAfter, s => s.ReclaimFileDrops) / (double)Math.Max(1, pages));
    }

    /// <summary>
    /// After a file test, at quiescence: writes every file back (worker <c>i</c>'s file is on machine <c>i</c>, or on
    /// the only machine) and checks its backing store. page_fault2's private stores must never reach the file (nothing
    /// to write back, every word still zero); page_fault3's must all have reached the page cache, so after the
    /// writeback the first word of every page the worker ever wrote (all of them once it completed a pass,
    /// <paramref name="touched"/> being its page count) is the value the loop stores there; every pass stores the
    /// same values. Throws <see cref="InvalidOperationException"/> on a mismatch.
    /// </summary>
    private static void CheckFiles(PageFaultTest test, Machine[] machines, BackingFile?[] files, long[] touched)
    {
        for (var i = 0; i < files.Length; i++)
        {
            if (files[i] is not { } file)
            {
                continue;
            }

            var machine = machines[Math.Min(i, machines.Length - 1)];
            var writtenBefore = machine.Stats.PagesWrittenBack;
            machine.Writeback(file);
            var writtenBack = machine.Stats.PagesWrittenBack - writtenBefore;
            var shared = (test.Flags & MapFlags.Shared) != 0;
            var written = (ulong)Math.Min(touched[i], PagesPerRegion) * PageBytes;
            for (ulong offset = 0; offset < RegionBytes; offset += PageBytes)
            {
                var expected = shared && offset < written ? offset + 1 : 0;
                var stored = file.ReadStored((long)offset);
                if (stored != expected)
                {
                    throw new InvalidOperationException(
                        $"{test.Name}: {file} holds {stored} at offset {offset} after writeback, expected {expected}.");
                }
            }

            if (!shared && writtenBack != 0)
            {
                throw new InvalidOperationException($"{test.Name}: {writtenBack} page(s) of {file} were written back; private stores must never dirty the file.");
            }
        }
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

    /// <summary>
    /// One worker's loop over anonymous regions (<paramref name="file"/> null) or mappings of
    /// <paramref name="file"/>; a region's phases are recorded only when the whole region ran inside the window.
    /// </summary>
    private static void Work(Cpu cpu, Process process, MapFlags flags, BackingFile? file, long[] slots, int b, int[] phase)
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
            var region = file is null
                ? process.Mmap(RegionBytes, Prot.ReadWrite, flags)
                : process.Mmap(RegionBytes, Prot.ReadWrite, flags, file, 0);
            var t1 = Stopwatch.GetTimestamp();
            var bytes1 = GC.GetAllocatedBytesForCurrentThread();
            var completed = true;
            for (ulong offset = 0; offset < RegionBytes; offset += PageBytes)
            {
                cpu.Write(process, region + offset, offset + 1);
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
