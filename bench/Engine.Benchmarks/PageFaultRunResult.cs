namespace Engine.Benchmarks;

/// <summary>
/// What one engine run of a <see cref="PageFaultTest"/> measured. Rates are over the measured window; the per-phase
/// figures are summed over every worker and every region completed in that window (a region's three phases: mmap,
/// touch every page, munmap).
/// </summary>
/// <param name="FaultsPerSecond">Pages touched per second, all workers together.</param>
/// <param name="Regions">Regions completed (mmap, touch, munmap) in the window, all workers.</param>
/// <param name="TouchNsPerPage">Wall time of the touch phase per page (the faults), averaged over workers.</param>
/// <param name="MunmapNsPerPage">Wall time of munmap per page unmapped (zap, shootdown, free, table teardown).</param>
/// <param name="MmapNsPerRegion">Wall time of one mmap.</param>
/// <param name="TouchBytesAllocatedPerPage">Managed bytes the workers allocated in the touch phase, per page.</param>
/// <param name="MunmapBytesAllocatedPerRegion">Managed bytes allocated by one munmap.</param>
/// <param name="MmapBytesAllocatedPerRegion">Managed bytes allocated by one mmap.</param>
/// <param name="FaultsPerPage">The machine's counter of the test's fault (<see cref="PageFaultTest.Faults"/>) over pages touched (1.0 expected).</param>
/// <param name="PageCacheFillsPerPage">Page-cache fills over pages touched: 0 once every file is cached (the warm-up's first pass fills it).</param>
/// <param name="ShootdownsPerRegion">The machine's TlbShootdowns per region.</param>
/// <param name="ShootdownTargetsPerShootdown">CPUs targeted per shootdown.</param>
/// <param name="FaultRetries">Faults that found the entry changed under the PTL.</param>
/// <param name="SwapOutsPerPage">Pages written to swap over pages touched (0 unless the working set exceeds memory).</param>
/// <param name="FileDropsPerPage">Page-cache pages reclaim dropped over pages touched.</param>
public sealed record PageFaultRunResult(
    double FaultsPerSecond,
    long Regions,
    double TouchNsPerPage,
    double MunmapNsPerPage,
    double MmapNsPerRegion,
    double TouchBytesAllocatedPerPage,
    double MunmapBytesAllocatedPerRegion,
    double MmapBytesAllocatedPerRegion,
    double FaultsPerPage,
    double PageCacheFillsPerPage,
    double ShootdownsPerRegion,
    double ShootdownTargetsPerShootdown,
    long FaultRetries,
    double SwapOutsPerPage = 0,
    double FileDropsPerPage = 0);
