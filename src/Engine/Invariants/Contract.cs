using System.Runtime.CompilerServices;
using Engine.Sync;

namespace Engine.Invariants;

/// <summary>
/// Lock contracts as checks: a function's "enter with … held" comment, stated once more as a call at its top. Each
/// check costs nothing with <see cref="Checks.Enabled"/> off (the caller tests it first, so the JIT drops the call and
/// its arguments); on, it reads the lock's word plainly (no scheduling point, so schedules are unchanged) and, when
/// the lock is not held, records a <see cref="ViolationKind.LockContract"/> violation naming the function and the
/// lock. The check is the kernel's <c>assert_spin_locked</c>/<c>mmap_assert_locked</c>: someone holds the lock, not
/// necessarily the caller (the model's locks do not record owners).
/// </summary>
internal static class Contract
{
    /// <summary>Records a violation unless <paramref name="lock"/> is held.</summary>
    public static void Held(ViolationLog log, Spinlock @lock, string what, [CallerMemberName] string function = "")
    {
        if (!@lock.IsHeld)
        {
            Fail(log, function, what);
        }
    }

    /// <summary>Records a violation unless <paramref name="lock"/> is held for read or write.</summary>
    public static void Held(ViolationLog log, ReaderWriterSemaphore @lock, string what, [CallerMemberName] string function = "")
    {
        if (!@lock.IsReadHeld && !@lock.IsWriteHeld)
        {
            Fail(log, function, what);
        }
    }

    /// <summary>Records a violation unless <paramref name="lock"/> is held for write.</summary>
    public static void HeldForWrite(ViolationLog log, ReaderWriterSemaphore @lock, string what, [CallerMemberName] string function = "")
    {
        if (!@lock.IsWriteHeld)
        {
            Fail(log, function, what + " for write");
        }
    }

    /// <summary>Records a violation unless <paramref name="condition"/> holds (a lock that is a bit, such as the page lock, read by the caller without a scheduling point).</summary>
    public static void That(ViolationLog log, bool condition, string what, [CallerMemberName] string function = "")
    {
        if (!condition)
        {
            Fail(log, function, what);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Fail(ViolationLog log, string function, string what)
        => log.Record(new InvariantViolation(ViolationKind.LockContract, $"{function} entered without {what} held"));
}
