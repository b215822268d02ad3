namespace Conformance;

/// <summary>
/// What the large-folio race scenarios saw across the schedules of a run (lanes may run in parallel), for their vacuity
/// guards: a race test whose interesting interleaving never happened proved nothing.
/// </summary>
public sealed class FolioRaceCounters
{
    private long _lostRaces;
    private long _copied;
    private long _splits;
    private long _refusedSplits;
    private long _swapOuts;
    private long _cleared;

    /// <summary>Schedules in which a fault lost the race for a folio's range and retried.</summary>
    public long LostRaces => Interlocked.Read(ref _lostRaces);

    /// <summary>Schedules in which a store after fork copied a page of the shared folio.</summary>
    public long Copied => Interlocked.Read(ref _copied);

    /// <summary>Folio splits, over all schedules.</summary>
    public long Splits => Interlocked.Read(ref _splits);

    /// <summary>Folio splits refused (the folio was held by more than one page table's entries), over all schedules.</summary>
    public long RefusedSplits => Interlocked.Read(ref _refusedSplits);

    /// <summary>Pages swapped out, over all schedules.</summary>
    public long SwapOuts => Interlocked.Read(ref _swapOuts);

    /// <summary>Observations of the MM-id "maybe mapped shared" bit clear while the parent alone mapped the folio.</summary>
    public long Cleared => Interlocked.Read(ref _cleared);

    internal void LostRace() => Interlocked.Increment(ref _lostRaces);

    internal void Copy() => Interlocked.Increment(ref _copied);

    internal void Split(long splits, long refused)
    {
        Interlocked.Add(ref _splits, splits);
        Interlocked.Add(ref _refusedSplits, refused);
    }

    internal void SwappedOut(long pages) => Interlocked.Add(ref _swapOuts, pages);

    internal void SawCleared() => Interlocked.Increment(ref _cleared);

    private long _mappedAfterLowering;

    /// <summary>Schedules in which a read fault mapped a page after an rmap walk had brought its tri-state down to "not mapped".</summary>
    public long MappedAfterLowering => Interlocked.Read(ref _mappedAfterLowering);

    internal void MapAfterLowering() => Interlocked.Increment(ref _mappedAfterLowering);
}
