namespace Engine.Policy;

/// <summary>
/// What <c>reuse_swap_page</c> (Linux ≤ 5.17) needs of the swap cache, as the generation policy sees it: declared here
/// and implemented above (<c>Engine.Swap</c>'s <c>SwapReuseView</c>), so the policy still depends downwards only.
/// </summary>
internal interface ISwapCounts
{
    /// <summary>
    /// The swap entries that still name the slot of <paramref name="pfn"/> while it is in the swap cache, else 0.
    /// Enter with the page locked.
    /// </summary>
    int SwapCount(long pfn);

    /// <summary>
    /// What <c>reuse_swap_page</c> does when it answers yes: a page in the swap cache and not under writeback leaves
    /// the cache (its slot keeps the swap entries that still name it, if any) and is marked dirty, its only copy now in
    /// memory. Enter with the page locked and a reference other than the cache's held.
    /// </summary>
    void LeaveForReuse(long pfn, int cpu);
}
