namespace BugZoo;

/// <summary>
/// Counts how often a scenario met each of the interleavings its entry names (<see cref="ZooEntry.Events"/>), across
/// the schedules of a run (lanes may run in parallel). A fixed run that never met one proved nothing about it.
/// </summary>
public sealed class ZooProbe(int events)
{
    private readonly long[] _counts = new long[events];

    /// <summary>Records one schedule that met event <paramref name="index"/>.</summary>
    public void Saw(int index) => Interlocked.Increment(ref _counts[index]);

    /// <summary>How many schedules met event <paramref name="index"/>.</summary>
    public long Count(int index) => Interlocked.Read(ref _counts[index]);
}
