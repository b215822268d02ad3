using Engine.Sync;

namespace Engine.Stats;

/// <summary>
/// Event counters, one row per CPU plus one shared row for callers that are not CPUs. A CPU's row is written only
/// by its own thread (a release store of the incremented value, no atomic read-modify-write, so counting adds no
/// shared cache-line traffic to faults); the shared row uses atomic increments. A snapshot sums the rows: exact at
/// quiescence.
/// </summary>
internal sealed class StatCounters(int cpus)
{
    private static readonly int s_kinds = Enum.GetValues<Stat>().Length;

    // Each CPU's row is padded by a cache line so two CPUs never write the same line, and the rows start a line
    // after the array's length field, which every bounds check reads.
    private static readonly int s_stride = (s_kinds + 7) / 8 * 8 + 8;
    private const int Leading = 8;

    private readonly long[] _counts = new long[Leading + ((cpus + 1) * s_stride)];

    public void Add(int cpu, Stat stat, long amount = 1)
    {
        if (cpu < 0)
        {
            Atomic.Add(ref _counts[Leading + (cpus * s_stride) + (int)stat], amount);
            return;
        }

        ref var slot = ref _counts[Leading + (cpu * s_stride) + (int)stat];
        Atomic.Write(ref slot, slot + amount);
    }

    public long Get(Stat stat)
    {
        long total = 0;
        for (var row = 0; row <= cpus; row++)
        {
            total += Atomic.Read(ref _counts[Leading + (row * s_stride) + (int)stat]);
        }

        return total;
    }
}
