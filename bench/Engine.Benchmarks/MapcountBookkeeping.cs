using System.Globalization;

namespace Engine.Benchmarks;

/// <summary>
/// Bytes of mapping bookkeeping per folio under each <see cref="MapcountScheme"/>: <b>computed</b> from the fields each
/// design keeps (64-bit Linux layouts, and the proposals as <see cref="MapcountScheme"/> describes them), not measured.
/// The fields every design keeps alike (<c>_refcount</c>, <c>flags</c>, <c>mapping</c>, <c>index</c>) are left out;
/// <c>_pincount</c>, which every design keeps for a large folio (pins on a small page are counted in its
/// <c>_refcount</c> with the 1024 bias), is listed so the totals are honest about what a large folio carries.
/// <list type="bullet">
/// <item><see cref="MapcountScheme.PerPage"/> (Linux ≤ 6.14): <c>_mapcount</c>, 4 B in every page's descriptor; a
/// large folio adds <c>_large_mapcount</c>, <c>_entire_mapcount</c> (PMD mappings), <c>_nr_pages_mapped</c> (the
/// mapped-page statistics) and <c>_pincount</c>, 4 B each.</item>
/// <item><see cref="MapcountScheme.MmId"/> (6.15, <c>CONFIG_MM_ID</c> + <c>CONFIG_NO_PAGE_MAPCOUNT</c>): a small folio
/// keeps its <c>_mapcount</c>; a large folio keeps no per-page mapcount but <c>_large_mapcount</c>,
/// <c>_entire_mapcount</c> and <c>_pincount</c>, 4 B each, one word (8 B) for the two mm ids with the lock and "maybe
/// mapped shared" bits, and two per-id mapcounts, 4 B each.</item>
/// <item><see cref="MapcountScheme.TriState"/> (seed 002, Wilcox): per folio, order 0 included, one word of three
/// states in the head's <c>_mapcount</c> (4 B, of which 2 bits carry information); a large folio adds
/// <c>_pincount</c>.</item>
/// <item><see cref="MapcountScheme.None"/> (seed 002, Torvalds): no counter; one "ever mapped" bit in the folio's flags
/// word (1/8 B); a large folio adds <c>_pincount</c>.</item>
/// </list>
/// The engine itself allocates the same for every scheme (a 4 B <c>MapCount</c> in every page descriptor and 28 B of
/// folio state per large folio), so these figures are about the designs, not the engine's memory.
/// </summary>
public static class MapcountBookkeeping
{
    /// <summary>One field: its name, its size in bits, and whether every page of the folio has one (else the folio has one).</summary>
    public readonly record struct Field(string Name, int Bits, bool PerPage);

    /// <summary>The fields <paramref name="scheme"/> keeps for a folio of order <paramref name="order"/>.</summary>
    public static IReadOnlyList<Field> Fields(MapcountScheme scheme, int order)
    {
        var large = order > 0;
        return scheme switch
        {
            MapcountScheme.PerPage when !large => [new("_mapcount", 32, PerPage: true)],
            MapcountScheme.PerPage =>
            [
                new("_mapcount", 32, PerPage: true),
                new("_large_mapcount", 32, PerPage: false),
                new("_entire_mapcount", 32, PerPage: false),
                new("_nr_pages_mapped", 32, PerPage: false),
                new("_pincount", 32, PerPage: false),
            ],
            MapcountScheme.MmId when !large => [new("_mapcount", 32, PerPage: true)],
            MapcountScheme.MmId =>
            [
                new("_large_mapcount", 32, PerPage: false),
                new("_entire_mapcount", 32, PerPage: false),
                new("_pincount", 32, PerPage: false),
                new("_mm_ids (2 ids, lock and shared bits)", 64, PerPage: false),
                new("_mm_id_mapcount[2]", 64, PerPage: false),
            ],
            MapcountScheme.TriState when !large => [new("tri-state (in _mapcount)", 32, PerPage: false)],
            MapcountScheme.TriState =>
            [
                new("tri-state (in the head's _mapcount)", 32, PerPage: false),
                new("_pincount", 32, PerPage: false),
            ],
            MapcountScheme.None when !large => [new("ever-mapped bit (in flags)", 1, PerPage: false)],
            MapcountScheme.None =>
            [
                new("ever-mapped bit (in flags)", 1, PerPage: false),
                new("_pincount", 32, PerPage: false),
            ],
            _ => throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "Unknown mapcount scheme."),
        };
    }

    /// <summary>Bits of bookkeeping a folio of order <paramref name="order"/> carries under <paramref name="scheme"/>.</summary>
    public static long BitsPerFolio(MapcountScheme scheme, int order)
        => Fields(scheme, order).Sum(f => f.PerPage ? (long)f.Bits << order : f.Bits);

    /// <summary>"bytes per folio (bytes per 4 KiB page)", bytes to one decimal or eighths for a lone bit.</summary>
    public static string Describe(MapcountScheme scheme, int order)
    {
        var bits = BitsPerFolio(scheme, order);
        var pages = 1L << order;
        return string.Create(CultureInfo.InvariantCulture, $"{Bytes(bits)} ({Bytes((double)bits / pages)}/page)");
    }

    private static string Bytes(double bits)
        => bits % 8 == 0 ? string.Create(CultureInfo.InvariantCulture, $"{bits / 8:0.##} B") : string.Create(CultureInfo.InvariantCulture, $"{bits / 8:0.###} B");
}
