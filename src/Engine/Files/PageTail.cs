using Engine.Memory;
using Engine.Sync;

namespace Engine.Files;

/// <summary>
/// Zeroing a page from a byte to its end (<c>folio_zero_range</c> of the straddling page at truncation): whole words
/// cleared, and the word the boundary falls in cleared above it only (the engine's words are little-endian 64-bit
/// stores, so byte <c>k</c> of a word is bits <c>8k</c>–<c>8k+7</c>).
/// </summary>
internal static class PageTail
{
    /// <summary>
    /// Zeroes <paramref name="page"/> from byte <paramref name="from"/> (1 to 4095) to its end, as one visible step.
    /// The boundary word is cleared with one atomic AND, so a CPU's concurrent 64-bit store to it is either before
    /// (its low bytes kept, its high bytes cleared) or after (kept whole); the whole words are cleared in bulk, each
    /// word as it was either before or after any one concurrent store (as the bulk copies of I/O).
    /// </summary>
    public static void Zero(Span<ulong> page, int from)
    {
        if (from <= 0 || from >= PhysicalMemory.PageSize)
        {
            throw new ArgumentOutOfRangeException(nameof(from), from, "The tail must start inside the page, after its first byte.");
        }

        var word = from / sizeof(ulong);
        var bytes = from % sizeof(ulong);
        SchedulingPoint.Interleave();
        if (bytes != 0)
        {
            // Keep the low `bytes` bytes of the boundary word.
            Atomic.And(ref page[word], (1UL << (bytes * 8)) - 1);
            word++;
        }

        page[word..].Clear();
    }
}
