namespace Engine.Benchmarks;

/// <summary>What one run of a native page-fault reference printed.</summary>
/// <param name="PagesPerSecond">Pages touched per second, all workers together (faults_per_sec).</param>
/// <param name="MinorFaultsPerPage">
/// The kernel's minor-fault count over the same window divided by the pages touched (minflt_per_page): 1.0 when every
/// store took one fault, less when a fault mapped several pages; null in processes mode, where it is not measured.
/// </param>
public sealed record NativeRunResult(double PagesPerSecond, double? MinorFaultsPerPage);
