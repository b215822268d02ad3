using Engine.Sync;

namespace Engine.Cpus;

/// <summary>
/// What the CPUs know of an address space (the architecture's <c>mm-&gt;context</c> with <c>mm_cpumask</c>): its ASID,
/// which tags TLB entries, the top-level table a CPU loads to switch to it (CR3), and the CPUs that may cache its
/// translations. The rest of the mm (VMAs, locks) lives above, in <c>Engine.Mm.MmStruct</c>.
/// </summary>
internal sealed class MmContext(int id, long pgd)
{
    private ulong _cpuMask;

    /// <summary>The ASID: TLB entries are tagged with it; never reused.</summary>
    public int Id { get; } = id;

    /// <summary>The pfn of the top-level table (what a CPU loads into CR3).</summary>
    public long Pgd { get; } = pgd;

    /// <summary>CPUs that may cache this mm's translations (<c>mm_cpumask</c>); bits are only ever added.</summary>
    public ulong CpuMask => Atomic.Read(ref _cpuMask);

    /// <summary><c>switch_mm</c>: CPU <paramref name="cpu"/> may cache this mm's translations from now on.</summary>
    public void AddCpu(int cpu)
    {
        var bit = 1UL << cpu;
        if ((Atomic.Read(ref _cpuMask) & bit) == 0)
        {
            Atomic.Or(ref _cpuMask, bit);
        }
    }
}
