namespace Engine.Cli.Stress;

/// <summary>
/// kswapd for a stress run: one real thread, not a CPU, that calls <see cref="Machine.Reclaim"/> while the workers
/// run, as the kernel's kswapd reclaims beside the tasks that fault and, when it falls behind, reclaim directly.
/// <para>
/// Watermarks, as <c>balance_pgdat</c> has them: when the free frames fall below <see cref="LowWatermark"/> it
/// reclaims until <see cref="HighWatermark"/> are free, again and again while memory stays low; otherwise it sleeps a
/// millisecond (10 ms while four times the low watermark is free) and looks again (the kernel's kswapd sleeps until an
/// allocation below the low watermark wakes it; a poll of the free count stands in for that wake-up, so no engine
/// change is needed). A working set larger than
/// memory keeps it busy for the whole run, side by side with the workers' direct reclaim; a run whose memory never
/// runs low never wakes it, and runs as it did without it.
/// </para>
/// <para>
/// Relentless (<paramref name="relentless"/> pages, the <c>reclaim</c> targeted mix): no watermarks, it asks for that
/// many pages again and again, so that the few pages of the mix are taken from under the workers as often as the clock
/// allows (each page's second chance lasts one pass of the hand).
/// </para>
/// </summary>
internal sealed class Kswapd(Machine machine, int frames, Func<bool> stopping, int? relentless = null)
{
    private long _wakeups;
    private long _freed;
    private int _peakSlots;

    /// <summary>Below this many free frames kswapd reclaims: 1/32 of memory, at least 16 (32 of the 1,024 frames of a small run).</summary>
    public long LowWatermark { get; } = Math.Max(16, frames / 32);

    /// <summary>It reclaims until this many frames are free: twice <see cref="LowWatermark"/>.</summary>
    public long HighWatermark => 2 * LowWatermark;

    /// <summary>Times it reclaimed: found memory below the low watermark, or (relentless) went round its loop.</summary>
    public long Wakeups => Interlocked.Read(ref _wakeups);

    /// <summary>Frames its reclaim freed.</summary>
    public long Freed => Interlocked.Read(ref _freed);

    /// <summary>The most swap slots in use that its looks saw (every 1 or 10 ms, and after each reclaim).</summary>
    public int PeakSwapSlotsInUse => Volatile.Read(ref _peakSlots);

    /// <summary>Whether it reclaims without watermarks (the reclaim mix).</summary>
    public bool Relentless => relentless is not null;

    /// <summary>An exception reclaim threw (a failure of the run), or null.</summary>
    public string? Failure { get; private set; }

    /// <summary>
    /// The thread's loop until the runner stops it. With <paramref name="perturb"/>, perturbed from the stream of
    /// (<paramref name="seed"/>, <paramref name="index"/>) at its lock operations only, with more noise at each
    /// (<see cref="PerturbationHook.Attach"/>): its clock hand moves by an atomic add per frame, and noise there would
    /// make a sweep a hundred times slower, while the windows reclaim opens (the deferred flush after the unmap, the
    /// dirty test before the freeze) lie between its lock operations.
    /// </summary>
    public void Run(bool perturb, int seed, int index)
    {
        if (perturb)
        {
            PerturbationHook.Attach(seed, index, lockPointsOnly: true);
        }

        try
        {
            while (!stopping())
            {
                var inUse = machine.Stats.SwapSlotsInUse;
                if (inUse > _peakSlots)
                {
                    Volatile.Write(ref _peakSlots, inUse);
                }

                if (relentless is { } batch)
                {
                    Interlocked.Increment(ref _wakeups);
                    Interlocked.Add(ref _freed, machine.Reclaim(batch));
                    continue;
                }

                // Far above the low watermark, look again in 10 ms; near it, every millisecond. A run whose memory never
                // runs low then costs 100 wake-ups a second, not 1,000 (each a context switch on a machine whose cores
                // the workers already fill).
                var free = machine.FreeFrames;
                if (free >= LowWatermark)
                {
                    Thread.Sleep(free >= 4 * LowWatermark ? 10 : 1);
                    continue;
                }

                Interlocked.Increment(ref _wakeups);
                Interlocked.Add(ref _freed, machine.Reclaim((int)(HighWatermark - free)));
            }
        }
        catch (Exception e)
        {
            Failure = $"kswapd: {e.GetType().Name}: {e.Message}";
        }
        finally
        {
            if (perturb)
            {
                PerturbationHook.Detach();
            }
        }
    }
}
