using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>
/// A test-and-test-and-set spinlock, the model of the kernel's <c>spinlock_t</c> (page-table locks, the free-list
/// lock). Not reentrant; no owner is recorded (the kernel records none either), so <see cref="IsHeld"/> says only
/// that somebody holds it, which is what lock-contract assertions need.
/// <para>
/// Real execution: one compare-and-swap when free; when held, spin on plain reads (so the cache line stays shared)
/// with back-off, and retry the compare-and-swap only when it reads free. Release is a release store, as
/// <c>spin_unlock</c> is. Under the tester a thread that finds the lock held is disabled until it is released.
/// </para>
/// </summary>
public sealed class Spinlock
{
    private static readonly Func<object?, bool> s_isFree = static s => Volatile.Read(ref ((Spinlock)s!)._state) == 0;

    // 0 = free, 1 = held.
    private int _state;

    /// <summary>True while some thread holds the lock. For assertions; racy by nature for anyone else.</summary>
    public bool IsHeld => Volatile.Read(ref _state) != 0;

    /// <summary>Acquires the lock, waiting as long as it takes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            EnterObserved(file, line);
            return;
        }

        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            EnterContended();
        }
    }

    /// <summary>Acquires the lock if it is free; never waits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnter([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.LockTryAcquire, file, line);
        }

        return Volatile.Read(ref _state) == 0 && Interlocked.CompareExchange(ref _state, 1, 0) == 0;
    }

    /// <summary>Releases the lock. The caller must hold it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.LockRelease, file, line);
        }

        Debug.Assert(Volatile.Read(ref _state) == 1, "Spinlock.Exit on a lock that is not held");
        Volatile.Write(ref _state, 0);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterObserved(string file, int line)
    {
        SchedulingHook.Point(OperationKind.LockAcquire, file, line);
        while (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            // A controlled thread comes back only once the lock reads free, and nobody else ran since: the retry
            // succeeds. An uncontrolled thread (no test running) spins for real.
            var hook = SchedulingHook.Current;
            if (hook is null || !hook.WaitUntil(OperationKind.LockAcquire, s_isFree, this, file, line))
            {
                EnterContended();
                return;
            }
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        var backoff = new Backoff();
        do
        {
            while (Volatile.Read(ref _state) != 0)
            {
                backoff.Spin();
            }
        }
        while (Interlocked.CompareExchange(ref _state, 1, 0) != 0);
    }
}
