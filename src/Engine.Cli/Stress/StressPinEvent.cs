namespace Engine.Cli.Stress;

/// <summary>
/// What a stress worker counts about its GUP handles beside the operations themselves, so that a run shows the pin
/// oracle ran: how many pins and references were taken, and how many values were checked through them.
/// </summary>
internal enum StressPinEvent
{
    /// <summary>A pin of the worker's anonymous pages, released by the operation that took it.</summary>
    ShortPin,

    /// <summary>A short write pin of shared file pages, with a device store that the process then reads.</summary>
    FilePin,

    /// <summary>A long-term write pin of the worker's anonymous pages, held across operations.</summary>
    LongTermWritePin,

    /// <summary>A long-term read-only pin of the worker's anonymous pages, held across operations.</summary>
    LongTermReadOnlyPin,

    /// <summary>A long-term pin of a scratch page that madvise(DONTNEED) takes from the process, or that mprotect R/O and back leaves in place.</summary>
    ScratchPin,

    /// <summary>A FOLL_GET reference (one handle, one to four pages).</summary>
    Reference,

    /// <summary>A word read through a pin or a reference that held the value the worker expected.</summary>
    HandleRead,

    /// <summary>A process store (a write, a poke, the parent's store after fork) that a long-term pin then read.</summary>
    ProcessStoreSeenByPin,

    /// <summary>A device store through a write pin that the process then read.</summary>
    DeviceStoreSeenByProcess,
}
