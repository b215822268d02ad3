namespace Engine.Cli.Stress;

/// <summary>The kinds of operation a stress worker performs.</summary>
internal enum StressOperation
{
    Read,
    Write,
    FreshRegion,
    Mprotect,
    Madvise,
    Fork,
    FileRead,
    FileWrite,
    FilePrivate,
    FileZap,
    FileSync,
    Evict,

    /// <summary>Pin a few pages (read-only or for write), check the words through the pin, and unpin.</summary>
    PinShort,

    /// <summary>Take a long-term pin that stays held across operations, or exercise and in time release the one held.</summary>
    PinLongTerm,

    /// <summary>Take FOLL_GET references, check the words through them, and drop them.</summary>
    GupReference,

    /// <summary>ptrace's POKEDATA into the worker's own word.</summary>
    Poke,

    /// <summary>
    /// With large folios only: map a region of one to three folios of the worker's own, fault it in, and cut through
    /// its folios (a partial munmap, madvise or mprotect), fork over them, pin a page of one, or page part of it out
    /// (<see cref="StressFolioEvent"/>).
    /// </summary>
    FolioRegion,
}
