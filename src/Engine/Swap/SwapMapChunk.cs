namespace Engine.Swap;

/// <summary>
/// The metadata of <see cref="SwapDevice.ChunkSlots"/> consecutive swap slots (the last chunk of a device may hold
/// fewer): their <c>swap_map</c> words, their stored pages' references, and how many of them are in use, as the
/// kernel's <c>swap_cluster_info</c> counts the slots of a cluster. Created the first time a slot of the chunk is
/// claimed and published with a compare-and-swap (<see cref="SwapDevice.Allocate"/>); never freed, so a device pays
/// only for the chunks it has used.
/// </summary>
internal sealed class SwapMapChunk(int slots)
{
    /// <summary>Each slot's word: its count of references and the has-cache flag (<see cref="SwapDevice.HasCacheBit"/>).</summary>
    public readonly int[] Map = new int[slots];

    /// <summary>Each slot's stored page, allocated the first time the slot is written (<see cref="SwapDevice.Page"/>).</summary>
    public readonly ulong[]?[] Pages = new ulong[]?[slots];

    /// <summary>
    /// The chunk's slots in use (a word not zero), changed through <c>Atomic</c> by whoever takes a word from or to
    /// zero. Mutable field: read and written by reference.
    /// </summary>
    public int Used;
}
