using Engine.Invariants;
using Engine.Memory;

namespace Engine.Policy;

/// <summary>
/// The invariants that hold only in some kernel generations, checked at quiescence for <c>Machine.CheckInvariants</c>:
/// each asks the machine's <see cref="KernelGeneration"/> whether it holds (<see cref="KernelGeneration.WritableAnonImpliesExclusive"/>,
/// <see cref="KernelGeneration.PinnedAnonImpliesExclusive"/>) and, where it does, checks it. Nothing here is a
/// scheduling point: the caller runs at quiescence with scheduling points suppressed.
/// </summary>
internal sealed class GenerationInvariants(KernelGeneration generation, Memmap memmap)
{
    /// <summary>A writable entry of process <paramref name="pid"/> at <paramref name="address"/> that maps an anonymous page maps an AnonExclusive one.</summary>
    public void CheckWritableEntry(int pid, ulong address, long pfn, bool writable, List<InvariantViolation> violations)
    {
        if (writable && memmap.TestFlags(pfn, PageFlags.Anon) && !memmap.TestFlags(pfn, PageFlags.AnonExclusive) && generation.WritableAnonImpliesExclusive)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.WritableNotExclusive, $"pid {pid}: writable entry at 0x{address:x} maps anon page 0x{pfn:x} that is not AnonExclusive")
                with { Pid = pid, Address = address, Pfn = pfn });
        }
    }

    /// <summary>A pinned anonymous page (a live frame GUP handles pin) is AnonExclusive.</summary>
    public void CheckPinnedFrame(long pfn, List<InvariantViolation> violations)
    {
        var (_, pins) = memmap.GupHeld(pfn);
        if (pins > 0 && memmap.PageCount(pfn) != 0 && memmap.TestFlags(pfn, PageFlags.Anon) && !memmap.TestFlags(pfn, PageFlags.AnonExclusive)
            && generation.PinnedAnonImpliesExclusive)
        {
            violations.Add(InvariantViolation.Of(ViolationKind.PinnedNotExclusive, $"pinned anon pfn 0x{pfn:x} is not AnonExclusive") with { Pfn = pfn });
        }
    }
}
