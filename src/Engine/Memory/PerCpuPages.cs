using System.Runtime.InteropServices;
using Engine.Sync;

namespace Engine.Memory;

/// <summary>
/// One CPU's cache of free frames (the kernel's <c>per_cpu_pages</c>), worked on by the thread driving that CPU with
/// no lock and no atomic read-modify-write. A ring used as a deque: allocation and free work at the hot end (LIFO, so a frame freed a moment ago,
/// still in the cache, is the next one handed out), and a drain to the global list takes the cold end. Its fields sit
/// on a cache line of their own: the caches of all CPUs are allocated together, and the owner writes <c>_count</c>
/// on every allocation and free.
/// <para>
/// Another CPU may empty the cache when the machine runs out of frames (<see cref="FrameAllocator"/>'s
/// <c>drain_all_pages</c>). The kernel does that by running the drain on the owning CPU, where it cannot interleave
/// with the owner's own list operations. The model gets the same exclusion with an asymmetric handshake that keeps
/// the owner's fast path free of fences: the owner marks itself busy (a plain release store) and then checks for a
/// drain request; the drainer posts the request, runs a process-wide barrier (<see cref="Atomic.MemoryBarrierProcessWide"/>),
/// and waits until the owner is not busy. The barrier stands in for the fence the owner does not execute between its
/// store and its load: after it, either the drainer sees the owner busy, or the owner sees the request and steps
/// back until the drain is over.
/// </para>
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

    [FieldOffset(80)]
    private int _busy;

    [FieldOffset(84)]
    private int _drainRequest;

    /// <summary>Frames cached. Written only by the owner; read by anyone (exact at quiescence).</summary>
    public int Count => Atomic.Read(ref _count);

    /// <summary>
    /// The owner enters its cache (the kernel's <c>pcp</c> critical section). Enter with no lock held and not already
    /// inside; if a drain is in progress, waits for it. Returns inside: the list operations may be used until
    /// <see cref="ExitOwner"/>.
    /// </summary>
    public void EnterOwner()
    {
        while (true)
        {
            Atomic.Write(ref _busy, 1);
            if (Atomic.Read(ref _drainRequest) == 0)
            {
                return;
            }

            Atomic.Write(ref _busy, 0);
            Wait.Until(this, static cache => Atomic.Read(ref cache._drainRequest) == 0);
        }
    }

    /// <summary>The owner leaves its cache (a release store).</summary>
    public void ExitOwner() => Atomic.Write(ref _busy, 0);

    /// <summary>
    /// Another CPU claims the cache to drain it. Enter holding the allocator's drain lock (one drainer at a time) and
    /// not the zone lock (the owner may need it to leave). Returns with the owner outside and held out until
    /// <see cref="EndRemoteDrain"/>; returns whether the owner was inside when the request was posted (for tests).
    /// <paramref name="handshake"/> false skips the barrier and the wait: a test knob that lets the drain race the
    /// owner's list operations.
    /// </summary>
    public bool BeginRemoteDrain(bool handshake)
    {
        Atomic.Write(ref _drainRequest, 1);
        if (!handshake)
        {
            return Atomic.Read(ref _busy) != 0;
        }

        Atomic.MemoryBarrierProcessWide();
        var ownerInside = Atomic.Read(ref _busy) != 0;
        Wait.Until(this, static cache => Atomic.Read(ref cache._busy) == 0);
        return ownerInside;
    }

    /// <summary>Ends a remote drain and lets the owner back in (a release store).</summary>
    public void EndRemoteDrain() => Atomic.Write(ref _drainRequest, 0);

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
