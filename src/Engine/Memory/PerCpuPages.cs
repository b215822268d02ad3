using System.Runtime.InteropServices;
using Engine.Sync;

namespace Engine.Memory;

/// <summary>
/// One CPU's cache of free frames (the kernel's <c>per_cpu_pages</c>), touched only by the thread driving that CPU:
/// no lock. A ring used as a deque: allocation and free work at the hot end (LIFO, so a frame freed a moment ago,
/// still in the cache, is the next one handed out), and a drain to the global list takes the cold end. Its fields sit
/// on a cache line of their own: the caches of all CPUs are allocated together, and the owner writes <c>_count</c>
/// on every allocation and free.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 192)]
internal sealed class PerCpuPages
{
    private const int Capacity = 256;

    [FieldOffset(64)]
    private readonly long[] _ring = new long[Capacity];

    [FieldOffset(72)]
    private int _cold;

    [FieldOffset(76)]
    private int _count;

    /// <summary>Frames cached. Written only by the owner; read by anyone (exact at quiescence).</summary>
    public int Count => Atomic.Read(ref _count);

    public void PushHot(long pfn)
    {
        _ring[(_cold + _count) & (Capacity - 1)] = pfn;
        Atomic.Write(ref _count, _count + 1);
    }

    public long PopHot()
    {
        var count = _count - 1;
        Atomic.Write(ref _count, count);
        return _ring[(_cold + count) & (Capacity - 1)];
    }

    public long PopCold()
    {
        var pfn = _ring[_cold];
        _cold = (_cold + 1) & (Capacity - 1);
        Atomic.Write(ref _count, _count - 1);
        return pfn;
    }

    /// <summary>Copies the cached pfns (for invariant checks at quiescence).</summary>
    public IEnumerable<long> Snapshot()
    {
        for (var i = 0; i < _count; i++)
        {
            yield return _ring[(_cold + i) & (Capacity - 1)];
        }
    }
}
