namespace Engine.Sync;

/// <summary>
/// The real-execution back-off used by every spin-wait in <c>Engine.Sync</c>: a few exponentially growing busy spins,
/// then yields of the time slice. It never sleeps a whole millisecond: the engine's waits (a spinlock, a shootdown
/// acknowledgement) are short, but on a machine with fewer cores than runnable threads the waiter must give the
/// holder a chance to run. Mutable struct: do not make readonly, do not copy.
/// </summary>
internal struct Backoff
{
    private SpinWait _spinner;

    /// <summary>Waits a little longer than the previous call did.</summary>
    public void Spin() => _spinner.SpinOnce(sleep1Threshold: -1);
}
