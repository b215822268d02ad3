namespace Engine.Memory;

/// <summary>
/// Direct reclaim, as the allocator sees it: declared here and implemented above (<c>Engine.Reclaim</c>), so the one
/// call up the layers still depends downwards. <see cref="FrameAllocator"/> calls it when no frame is free.
/// </summary>
internal interface IReclaim
{
    /// <summary>
    /// Frees up to <paramref name="frames"/> frames; returns how many. <paramref name="cpu"/> is the allocating CPU
    /// (−1: not a CPU). Called with no spinlock and no page lock held.
    /// </summary>
    int Reclaim(int frames, int cpu);
}
