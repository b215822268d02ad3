namespace Engine.Systematic.Runtime;

/// <summary>
/// A binary semaphore for handing control between OS threads: <see cref="Unpark"/> leaves one permit (a second
/// unpark before a park is absorbed), <see cref="Park()"/> takes it, waiting if there is none.
/// <para>
/// The hand-off is the tester's hot path (every switch between logical threads is one unpark and one park), so a
/// parker first spins, re-reading the permit, for about as long as a hand-off to a running thread takes; only then
/// does it sleep on a monitor. Spinning keeps a switch between two threads on two cores well under a microsecond;
/// sleeping keeps threads that are not about to run from stealing the cores (docs/systematic-testing.md has the
/// measurements). Wake-ups are not lost: the parker publishes <c>_sleeping</c> and re-checks the permit with full
/// barriers on both sides (a Dekker pair), and the unparker pulses under the same monitor the sleeper waits on.
/// </para>
/// </summary>
internal sealed class Parker
{
    /// <summary>
    /// Permit polls before sleeping. Each poll yields the core, so a poll takes from well under a microsecond (nobody
    /// else wants the core) to a scheduler time slice (others do); 100 polls catch a thread that is chosen again
    /// within a few dozen switches, and a thread left waiting longer soon stops competing for a core.
    /// </summary>
    private const int SpinIterations = 100;

    private readonly object _gate = new();
    private int _permit;
    private int _sleeping;

    /// <summary>Leaves a permit and wakes the parked thread, if it sleeps.</summary>
    public void Unpark()
    {
        Interlocked.Exchange(ref _permit, 1);
        if (Volatile.Read(ref _sleeping) != 0)
        {
            lock (_gate)
            {
                Monitor.Pulse(_gate);
            }
        }
    }

    /// <summary>Takes the permit, waiting for it as long as it takes.</summary>
    public void Park() => Park(Timeout.Infinite);

    /// <summary>Takes the permit, waiting at most <paramref name="timeoutMilliseconds"/>; false on time-out.</summary>
    public bool Park(int timeoutMilliseconds)
    {
        for (var i = 0; i < SpinIterations; i++)
        {
            if (Volatile.Read(ref _permit) != 0 && Interlocked.Exchange(ref _permit, 0) != 0)
            {
                return true;
            }

            Thread.Yield();
        }

        lock (_gate)
        {
            Interlocked.Exchange(ref _sleeping, 1);
            try
            {
                while (Interlocked.Exchange(ref _permit, 0) == 0)
                {
                    if (!Monitor.Wait(_gate, timeoutMilliseconds) && timeoutMilliseconds != Timeout.Infinite)
                    {
                        return Interlocked.Exchange(ref _permit, 0) != 0;
                    }
                }

                return true;
            }
            finally
            {
                Volatile.Write(ref _sleeping, 0);
            }
        }
    }
}
