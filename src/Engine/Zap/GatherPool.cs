using Engine.Sync;

namespace Engine.Zap;

/// <summary>
/// Preallocated <see cref="MmuGather"/>s, one per CPU and a few for callers that are not CPUs, so a zap allocates
/// nothing; a gather is allocated only when more zaps run at once than the pool holds.
/// </summary>
internal sealed class GatherPool
{
    private readonly MmuGather[] _gathers;
    private readonly int[] _inUse;
    private readonly Func<MmuGather> _create;

    public GatherPool(int size, Func<MmuGather> create)
    {
        _create = create;
        _gathers = new MmuGather[size];
        _inUse = new int[size];
        for (var i = 0; i < size; i++)
        {
            _gathers[i] = create();
        }
    }

    /// <summary>A free gather, claimed with a compare-and-swap.</summary>
    public MmuGather Rent()
    {
        for (var i = 0; i < _gathers.Length; i++)
        {
            if (Atomic.Read(ref _inUse[i]) == 0 && Atomic.CompareExchange(ref _inUse[i], 1, 0) == 0)
            {
                return _gathers[i];
            }
        }

        return _create();
    }

    /// <summary>Gives a rented gather back (one allocated beyond the pool is dropped).</summary>
    public void Return(MmuGather gather)
    {
        var index = Array.IndexOf(_gathers, gather);
        if (index >= 0)
        {
            Atomic.Write(ref _inUse[index], 0);
        }
    }
}
