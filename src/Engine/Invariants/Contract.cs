using System.Runtime.CompilerServices;
using Engine.Sync;

namespace Engine.Invariants;

/// <summary>
/// Lock contracts as checks: a function's "enter with … held" comment, stated once more as a call at its top. A caller
/// tests <see cref="Checks.Enabled"/> first, so with checks off the JIT drops the call and its arguments. On, a check
/// reads the lock's word plainly (no scheduling point, so the tester's schedules are the same either way) and throws
/// <see cref="LockContractException"/> naming the function and the lock when the lock is not held: a broken contract
/// is a bug in the engine, and under the systematic tester it becomes a bug report whose trace shows the caller. The
/// check is the kernel's <c>assert_spin_locked</c> / <c>mmap_assert_locked</c>: someone holds the lock, not
/// necessarily the caller (the model's locks do not record owners).
/// </summary>
internal static class Contract
{
    /// <summary>Throws unless <paramref name="lock"/> is held.</summary>
    public static void Held(Spinlock @lock, string what, [CallerMemberName] string function = "")
    {
        if (!@lock.IsHeld)
        {
            Fail(function, what);
        }
    }

    /// <summary>Throws unless <paramref name="lock"/> is held for read or write.</summary>
    public static void Held(ReaderWriterSemaphore @lock, string what, [CallerMemberName] string function = "")
    {
        if (!@lock.IsReadHeld && !@lock.IsWriteHeld)
        {
            Fail(function, what);
        }
    }

    /// <summary>Throws unless <paramref name="lock"/> is held for write.</summary>
    public static void HeldForWrite(ReaderWriterSemaphore @lock, string what, [CallerMemberName] string function = "")
    {
        if (!@lock.IsWriteHeld)
        {
            Fail(function, what + " (for write)");
        }
    }

    /// <summary>
    /// Throws unless <paramref name="held"/>: for a lock that is a bit (the page lock), read by the caller without a
    /// scheduling point (<c>Memmap.PeekFlags</c>).
    /// </summary>
    public static void That(bool held, string what, [CallerMemberName] string function = "")
    {
        if (!held)
        {
            Fail(function, what);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Fail(string function, string what) => throw new LockContractException(function, what);
}
