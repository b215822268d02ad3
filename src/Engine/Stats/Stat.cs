namespace Engine.Stats;

/// <summary>The machine's event counters (see <see cref="MachineStats"/> for their meaning).</summary>
internal enum Stat
{
    Reads,
    Writes,
    TlbMisses,
    AnonymousFaults,
    ZeroPageFaults,
    WriteProtectFaults,
    CowCopies,
    CowReuses,
    FaultRetries,
    SpuriousFaults,
    TlbShootdowns,
    ShootdownTargets,
    PagesAllocated,
    PagesFreed,
    PageTablesAllocated,
    PageTablesFreed,
    UseAfterFree,
    FileReadFaults,
    FileSharedWriteFaults,
    FilePrivateWriteFaults,
    PageCacheFills,
    PagesWrittenBack,
    PagesEvicted,
    AnonVmaPrepareRaces,
    ForkPinnedCopies,
    GupFastPages,
    GupSlowPages,
    GupFastRecheckDrops,
}
