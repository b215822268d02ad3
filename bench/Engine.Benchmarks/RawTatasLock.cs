using System.Runtime.CompilerServices;

namespace Engine.Benchmarks;

/// <summary>
/// The baseline for <see cref="Engine.Sync.Spinlock"/>: a test-and-test-and-set lock written directly on
/// <see cref="Interlocked.CompareExchange(ref int, int, int)"/> and <see cref="Volatile.Write(ref int, int)"/>, with
/// no scheduling hook. Same shape as the facade lock (a sealed class holding one int, an inlined fast path and an
/// out-of-line contended path) so that the benchmark compares the hook and nothing else.
/// </summary>
public sealed class RawTatasLock
{
    // 0 = free, 1 = held.
    private int _state;

    /// <summary>Acquires the lock: one compare-and-swap when it is free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            EnterContended();
        }
    }

    /// <summary>Releases the lock with a release store. The caller must hold it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit() => Volatile.Write(ref _state, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        var spinner = new SpinWait();
        do
        {
            // Test: wait on plain loads so the cache line stays shared, then retry the set.
            while (Volatile.Read(ref _state) != 0)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
            }
        }
        while (Interlocked.CompareExchange(ref _state, 1, 0) != 0);
    }
}
