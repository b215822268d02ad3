using System.Diagnostics;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Memory;

/// <summary>
/// The mapcount word under each <see cref="MapcountScheme"/> (docs/mapcount.md). The word is the descriptor's
/// <c>_mapcount</c>, biased by −1 as the kernel's: under <see cref="MapcountScheme.PerPage"/> and
/// <see cref="MapcountScheme.MmId"/> a count; under <see cref="MapcountScheme.TriState"/> a state, −1 not mapped, 0
/// mapped once, 1 maybe more (in a large folio's head, for the folio: once is "by one mm"); under
/// <see cref="MapcountScheme.None"/> the sticky "ever mapped" bit, −1 never, 0 since the page was last allocated. The
/// two proposals' words go back to −1 when the frame is freed.
/// </summary>
internal sealed partial class Memmap
{
    /// <summary>
    /// Whether the scheme counts mappings (<see cref="MapcountScheme.PerPage"/>, <see cref="MapcountScheme.MmId"/>),
    /// so that <see cref="MapCount"/> is exact; false for seed 002's proposals, whose callers use
    /// <see cref="MaybeMapped"/> and, where they need the exact answer, an rmap walk.
    /// </summary>
    public bool CountsMappings => _scheme is MapcountScheme.PerPage or MapcountScheme.MmId;

    /// <summary>
    /// <c>folio_mapped</c> where a false positive is acceptable (the caller then walks the rmap, or gives up on the
    /// page): false only when no entry maps the page. Exact under the counting schemes; under
    /// <see cref="MapcountScheme.TriState"/> true for "once" and "maybe more" (which may be none any more); under
    /// <see cref="MapcountScheme.None"/> the "ever mapped" bit.
    /// </summary>
    public bool MaybeMapped(long pfn) => CountsMappings ? MapCount(pfn) != 0 : Atomic.Read(ref Page(Head(pfn)).MapCount) >= 0;

    /// <summary>
    /// <c>folio_mapped</c> for a caller that knows of <paramref name="heldRefs"/> references to the page besides its
    /// mappings (its own, the swap cache's): as <see cref="MaybeMapped"/>, except that under the proposals a count no
    /// higher than those references proves nothing maps the page, since every mapping holds one (Torvalds's point:
    /// mapped references are references). A GUP reference makes it a false positive. With <paramref name="orSwapCache"/>
    /// the swap cache's reference counts too if the page is in it.
    /// </summary>
    public bool MaybeMappedBesides(long pfn, int heldRefs, bool orSwapCache = false)
        => CountsMappings
            ? MapCount(pfn) != 0
            : MaybeMapped(pfn) && PageCount(pfn) > heldRefs + (orSwapCache && TestFlags(pfn, PageFlags.SwapCache) ? 1 : 0);

    /// <summary>
    /// The tri-state of <paramref name="pfn"/>'s folio (−1 not mapped, 0 once, 1 maybe more) or the "ever mapped" bit
    /// (−1, 0): the raw word, for the invariants and the test surface.
    /// </summary>
    public int MapcountWord(long pfn) => Volatile.Read(ref Page(Head(pfn)).MapCount);

    /// <summary>
    /// An rmap walk made under the folio lock found no entry mapping <paramref name="pfn"/>: under
    /// <see cref="MapcountScheme.TriState"/> the state falls to "not mapped" (the only way "maybe more" comes down
    /// while the folio lives). Nothing can map a locked page meanwhile: a fault maps a cached page only under its lock,
    /// and fork copies only an entry the walk would have found. Other schemes: nothing to do.
    /// </summary>
    public void WalkFoundUnmapped(long pfn)
    {
        if (_scheme != MapcountScheme.TriState)
        {
            return;
        }

        if (Checks.Enabled)
        {
            Contract.That((PeekFlags(Head(pfn)) & PageFlags.Locked) != 0, "the page lock");
        }

        ref var word = ref Page(Head(pfn)).MapCount;
        var seen = Atomic.Read(ref word);
        if (seen >= 0 && Atomic.CompareExchange(ref word, -1, seen) == seen)
        {
            ProtocolEvents.Mark("rmap_walk", "pfn 0x{0:x}: the walk found no mapping: tri-state {2} → not mapped", pfn, value: seen);
        }
    }

    /// <summary>
    /// The word of a page a split leaves with <paramref name="mappings"/> entries: the count (biased), the exact
    /// tri-state, or the "ever mapped" bit of a page still mapped.
    /// </summary>
    private int SplitPageWord(int mappings) => _scheme switch
    {
        MapcountScheme.TriState => Math.Min(mappings, 2) - 1,
        MapcountScheme.None => mappings > 0 ? 0 : -1,
        _ => mappings - 1,
    };

    /// <summary>
    /// Resets the word of a frame being freed (the last reference is gone, so nothing maps it): the proposals' words
    /// may still say "maybe more" or "ever mapped". The counting schemes' word is −1 already.
    /// </summary>
    internal void ResetFreedMapcount(long pfn)
    {
        if (!CountsMappings)
        {
            Volatile.Write(ref Page(pfn).MapCount, -1);
        }

        Debug.Assert(Volatile.Read(ref Page(pfn).MapCount) == -1, "freeing a page that is still mapped");
    }

    /// <summary>
    /// Whether the word of order-0 page <paramref name="pfn"/> is consistent with <paramref name="entries"/> entries
    /// mapping it at quiescence: the count equal; the tri-state "not" with none, "once" with exactly one, "maybe more"
    /// with any number; the "ever mapped" bit set when any maps it. Null when consistent, else what is wrong.
    /// </summary>
    public string? MapcountDisagreement(long pfn, int entries)
    {
        var word = Volatile.Read(ref Page(pfn).MapCount);
        return _scheme switch
        {
            MapcountScheme.TriState => word switch
            {
                -1 when entries != 0 => $"tri-state 'not mapped' but {entries} entries map it",
                0 when entries != 1 => $"tri-state 'mapped once' but {entries} entries map it",
                < -1 or > 1 => $"tri-state word {word} is no state",
                _ => null,
            },
            MapcountScheme.None => word switch
            {
                -1 when entries != 0 => $"'never mapped' but {entries} entries map it",
                < -1 or > 0 => $"'ever mapped' word {word} is no bit",
                _ => null,
            },
            _ => word + 1 != entries ? $"mapcount {word + 1} but {entries} entries map it" : null,
        };
    }

    /// <summary>
    /// The tri-state rises on a mapping: not → once → maybe more, one compare-and-swap; at "maybe more" only a read.
    /// True when it was "not mapped".
    /// </summary>
    private static bool RaiseTriState(ref int word)
    {
        while (true)
        {
            var seen = Atomic.Read(ref word);
            if (seen > 0)
            {
                return false;
            }

            if (Atomic.CompareExchange(ref word, seen + 1, seen) == seen)
            {
                return seen < 0;
            }
        }
    }

    /// <summary>
    /// An unmapping of an order-0 page: "once" falls to "not mapped" (true: that was the one mapping); "maybe more"
    /// stays, and so does "not mapped" (a walk found it so already). A mapping raising "once" to "maybe more"
    /// meanwhile wins the race: the state stays "maybe more", a false positive.
    /// </summary>
    private static bool LowerTriState(ref int word)
        => Atomic.Read(ref word) == 0 && Atomic.CompareExchange(ref word, -1, 0) == 0;

    /// <summary>The "ever mapped" bit: set once per allocation (a plain read after that); true when this call set it.</summary>
    private static bool MarkEverMapped(ref int word)
        => Volatile.Read(ref word) < 0 && Atomic.CompareExchange(ref word, 0, -1) == -1;
}
