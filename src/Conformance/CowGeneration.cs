using Engine;

namespace Conformance;

/// <summary>
/// The kernels the cow.c scenarios are played against: the three COW reuse generations (<see cref="CowReuse"/>), the
/// page_count one split at Linux 5.18, where the swap-in stopped asking <c>reuse_swap_page</c>
/// (<see cref="MachineOptions.SwapReuse"/>), and the AnonExclusive one split at Linux 6.2, where R/O long-term pins in
/// private mappings became reliable for page-cache pages and the shared zero page
/// (<see cref="MachineOptions.ReliableLongTermReadOnlyPins"/>).
/// </summary>
public enum CowGeneration
{
    /// <summary>Linux ≤ 5.8: reuse on mapcount 1 (<see cref="CowReuse.MapCount"/>), swap-in by <see cref="SwapReuse.ReuseSwapPage"/>.</summary>
    MapCount,

    /// <summary>
    /// Linux 5.9–5.17: reuse on page_count 1 (<see cref="CowReuse.PageCount"/>), but the swap-in still reuses by
    /// <see cref="SwapReuse.ReuseSwapPage"/>.
    /// </summary>
    PageCountBefore518,

    /// <summary>Linux 5.18: reuse on page_count 1 (<see cref="CowReuse.PageCount"/>), in the swap-in too (<see cref="SwapReuse.PageCount"/>).</summary>
    PageCount,

    /// <summary>Linux 5.19–6.1: AnonExclusive and unshare, with <see cref="MachineOptions.ReliableLongTermReadOnlyPins"/> off.</summary>
    AnonExclusiveBefore62,

    /// <summary>Linux ≥ 6.2, the engine's default: AnonExclusive, unshare, and reliable R/O long-term pins.</summary>
    AnonExclusive,
}
