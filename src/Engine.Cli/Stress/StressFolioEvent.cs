namespace Engine.Cli.Stress;

/// <summary>
/// What a stress worker's <see cref="StressOperation.FolioRegion"/> did to its folios after faulting them in: each
/// operation does one of these, so a run shows which paths through large folios it checked. Every value the
/// process or a pin reads afterwards is checked against the worker's last store.
/// </summary>
internal enum StressFolioEvent
{
    /// <summary>A munmap whose range starts or ends inside a folio (the folio is split, or stays partially mapped).</summary>
    PartialMunmap,

    /// <summary>A madvise(DONTNEED) whose range cuts through a folio: the range reads as zero, the rest as stored.</summary>
    PartialDontNeed,

    /// <summary>An mprotect(PROT_READ) and back whose range cuts through a folio: stores inside fault, stores outside do not.</summary>
    PartialMprotect,

    /// <summary>A fork over the region, a store by each side (COW of a page of a folio), the child's exit, and stores after it (reuse or copy).</summary>
    Fork,

    /// <summary>
    /// A pin (or, one time in three, a FOLL_GET reference) of a page of a folio held across a munmap that cuts through
    /// the folio: the split is refused while the handle holds it.
    /// </summary>
    PinAcrossSplit,

    /// <summary>A madvise(PAGEOUT) of part of the region (folios split and swapped out), then every page read back.</summary>
    PageOut,
}
