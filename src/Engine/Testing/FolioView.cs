namespace Engine.Testing;

/// <summary>
/// A test surface: a folio as <see cref="MachineInspector.FolioAt"/> read it.
/// </summary>
/// <param name="Head">The pfn of the folio's first page.</param>
/// <param name="Page">Which page of the folio the entry maps (0 for an order-0 page).</param>
/// <param name="Pages">Pages in the folio: 1, or 2^<see cref="MachineOptions.AnonFolioOrder"/>.</param>
/// <param name="MapCount"><c>folio_mapcount</c>: entries mapping any page of the folio; −1 under <see cref="MapcountScheme.TriState"/> and <see cref="MapcountScheme.None"/>, which keep no count.</param>
/// <param name="RefCount"><c>folio_ref_count</c>.</param>
/// <param name="PinCount"><c>_pincount</c> of a large folio (pins on an order-0 page are counted in its references).</param>
/// <param name="MaybeMappedShared">"Is it mapped by more than one mm?" as the machine's <see cref="MapcountScheme"/> answers it.</param>
/// <param name="PageAnonExclusive">The mapped page's AnonExclusive flag.</param>
public readonly record struct FolioView(long Head, int Page, int Pages, int MapCount, int RefCount, int PinCount, bool MaybeMappedShared, bool PageAnonExclusive);
