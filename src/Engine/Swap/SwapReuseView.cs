using Engine.Memory;
using Engine.Policy;
using Engine.Sync;

namespace Engine.Swap;

/// <summary>The swap cache as <c>reuse_swap_page</c> (Linux ≤ 5.17) sees it, for the generation policy and the swap-in.</summary>
internal sealed class SwapReuseView(Memmap memmap, SwapCache swap, PageRelease release) : ISwapCounts
{
    /// <inheritdoc/>
    public int SwapCount(long pfn) => memmap.TestFlags(pfn, PageFlags.SwapCache) ? swap.Device.Count(swap.SlotOf(pfn)) : 0;

    /// <inheritdoc/>
    public void LeaveForReuse(long pfn, int cpu)
    {
        if ((memmap.GetFlags(pfn) & (PageFlags.SwapCache | PageFlags.Writeback)) != PageFlags.SwapCache)
        {
            return;
        }

        var slot = swap.Delete(pfn);
        swap.Device.ClearCache(slot);
        memmap.SetFlags(pfn, PageFlags.Dirty);
        release.PutPage(cpu, pfn);
        ProtocolEvents.Mark("reuse_swap_page", "pfn 0x{0:x} reused: deleted from the swap cache (slot {2}), marked dirty", pfn, value: slot);
    }
}
