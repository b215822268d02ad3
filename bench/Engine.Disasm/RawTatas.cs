using System.Runtime.CompilerServices;

namespace Engine.Disasm;

/// <summary>
/// A hand-written test-and-test-and-set lock with no scheduling hook: the raw counterpart of
/// <see cref="Engine.Sync.Spinlock"/> in the listings. Inlined fast paths, out-of-line contended path, as there.
/// </summary>
public sealed class RawTatas
{
    // 0 = free, 1 = held.
    private int _state;

    /// <summary>Acquires the lock.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0)
        {
            EnterContended();
        }
    }

    /// <summary>Releases the lock (release store).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit() => Volatile.Write(ref _state, 0);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        var spinner = new SpinWait();
        do
        {
            while (Volatile.Read(ref _state) != 0)
            {
                spinner.SpinOnce(sleep1Threshold: -1);
            }
        }
        while (Interlocked.CompareExchange(ref _state, 1, 0) != 0);
    }
}
