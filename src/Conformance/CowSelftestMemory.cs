using Engine;

namespace Conformance;

/// <summary>
/// The anonymous memory a cow.c scenario runs on: cow.c's base page and swapped-out base page, and its THP runners
/// adapted to the engine's large anonymous folios (mTHP, <see cref="MachineOptions.AnonFolioOrder"/>), which cow.c has
/// run at every mTHP size since Linux 6.8. Every large variant starts from one folio-aligned mapping of one folio,
/// written with cow.c's ones so that the write fault maps it as a large folio; the variant then prepares it as its
/// cow.c runner does, and the scenario runs on the part the runner hands on.
/// </summary>
public enum CowSelftestMemory
{
    /// <summary>cow.c's base page: one page, written.</summary>
    BasePage,

    /// <summary>cow.c's swapped-out base page: one page, written, then paged out (<c>MADV_PAGEOUT</c>).</summary>
    SwappedOutBasePage,

    /// <summary>
    /// "PTE-mapped THP": the whole folio, mapped by its PTEs as the fault mapped it. cow.c PTE-maps a PMD-mapped THP
    /// by an mprotect of one of its pages; an mTHP is PTE-mapped already, and the engine would split it there.
    /// </summary>
    PteMappedFolio,

    /// <summary>"single PTE-mapped THP": <c>MADV_DONTNEED</c> of every page but the first; the scenario runs on that page.</summary>
    SinglePteOfFolio,

    /// <summary>
    /// "partially mremap()'ed THP", adapted (the engine has no mremap): munmap of the folio's second half; the scenario
    /// runs on the first half.
    /// </summary>
    PartiallyUnmappedFolio,

    /// <summary>
    /// "partially shared THP", adapted: fork; the child unmaps every page but the first (the split is refused: two mms
    /// map the folio) and stays alive; the scenario runs on the whole folio, in the parent.
    /// </summary>
    PartiallySharedFolio,
}
