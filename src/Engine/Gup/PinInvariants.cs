using Engine.Invariants;
using Engine.Memory;

namespace Engine.Gup;

/// <summary>
/// The pins' invariant, checked at quiescence for <c>Machine.CheckInvariants</c>: <c>folio_maybe_dma_pinned</c> never
/// misses a pin (false positives are allowed). Whether a pinned anonymous page must also be exclusive depends on the
/// kernel generation (<c>GenerationInvariants</c>). Nothing here is a scheduling point.
/// </summary>
internal sealed class PinInvariants(Memmap memmap)
{
    /// <summary>A live frame that GUP handles pin is reported pinned.</summary>
    public void CheckPinnedFrame(long pfn, List<InvariantViolation> violations)
    {
        var (_, pins) = memmap.GupHeld(pfn);
        if (pins > 0 && memmap.PageCount(pfn) != 0 && !memmap.MaybeDmaPinned(pfn))
        {
            violations.Add(InvariantViolation.Of(ViolationKind.PinNotDetected, $"pfn 0x{pfn:x} is pinned {pins} time(s) but folio_maybe_dma_pinned is false")
                with { Pfn = pfn });
        }
    }
}
