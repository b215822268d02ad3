using System.Runtime.InteropServices;

namespace Engine.Memory;

/// <summary>
/// One entry of the memmap (the kernel's <c>struct page</c>), indexed by pfn. Every field another thread can see is
/// read and written through <c>Engine.Sync.Atomic</c> by <see cref="Memmap"/>; nobody else touches it.
/// Mutable struct kept in an array and used by <c>ref</c>: do not make readonly, do not copy.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PageDescriptor
{
    /// <summary><c>_refcount</c>: 0 means the frame is free.</summary>
    public int RefCount;

    /// <summary><c>_mapcount</c>, biased by −1: −1 unmapped, 0 mapped once.</summary>
    public int MapCount;

    /// <summary><see cref="PageFlags"/>.</summary>
    public int Flags;

    /// <summary><c>folio-&gt;swap</c>: the swap slot of a page in the swap cache (<see cref="PageFlags.SwapCache"/>); meaningless otherwise.</summary>
    public int SwapSlot;

    /// <summary><c>mapping</c>: the anon_vma or address_space the page belongs to (0 = none).</summary>
    public long Mapping;

    /// <summary><c>index</c>: the page's offset in its mapping, in pages.</summary>
    public long Index;
}
