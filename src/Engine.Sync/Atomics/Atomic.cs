using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>
/// The atomics facade: every shared word in the engine is read and written through these methods.
/// <para>
/// Each method is the corresponding <see cref="Volatile"/> or <see cref="Interlocked"/> call preceded by a scheduling
/// point. When <see cref="SchedulingHook.IsEnabled"/> is false (any process that is not a systematic test) the JIT
/// folds the check away and the caller-location arguments are dead constants, so a call costs exactly the bare
/// instruction. Ordering follows the .NET memory model: <c>Read</c> is an acquire load, <c>Write</c> a release store,
/// and every read-modify-write is a full barrier.
/// </para>
/// </summary>
public static class Atomic
{
    // ---- int ----

    /// <summary>Acquire load.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Read(ref int location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Read, file, line);
        }

        return Volatile.Read(ref location);
    }

    /// <summary>Release store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(ref int location, int value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Write, file, line);
        }

        Volatile.Write(ref location, value);
    }

    /// <summary>Compare-and-swap; returns the value seen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int CompareExchange(ref int location, int value, int comparand, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.CompareExchange, file, line);
        }

        return Interlocked.CompareExchange(ref location, value, comparand);
    }

    /// <summary>Atomic exchange; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Exchange(ref int location, int value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Exchange, file, line);
        }

        return Interlocked.Exchange(ref location, value);
    }

    /// <summary>Atomic increment; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Increment(ref int location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Increment, file, line);
        }

        return Interlocked.Increment(ref location);
    }

    /// <summary>Atomic decrement; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Decrement(ref int location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Decrement, file, line);
        }

        return Interlocked.Decrement(ref location);
    }

    /// <summary>Atomic add; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Add(ref int location, int value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Add, file, line);
        }

        return Interlocked.Add(ref location, value);
    }

    /// <summary>Atomic bitwise or; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Or(ref int location, int value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Or, file, line);
        }

        return Interlocked.Or(ref location, value);
    }

    /// <summary>Atomic bitwise and; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int And(ref int location, int value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.And, file, line);
        }

        return Interlocked.And(ref location, value);
    }

    // ---- long ----

    /// <summary>Acquire load.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Read(ref long location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Read, file, line);
        }

        return Volatile.Read(ref location);
    }

    /// <summary>Release store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(ref long location, long value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Write, file, line);
        }

        Volatile.Write(ref location, value);
    }

    /// <summary>Compare-and-swap; returns the value seen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long CompareExchange(ref long location, long value, long comparand, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.CompareExchange, file, line);
        }

        return Interlocked.CompareExchange(ref location, value, comparand);
    }

    /// <summary>Atomic exchange; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Exchange(ref long location, long value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Exchange, file, line);
        }

        return Interlocked.Exchange(ref location, value);
    }

    /// <summary>Atomic increment; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Increment(ref long location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Increment, file, line);
        }

        return Interlocked.Increment(ref location);
    }

    /// <summary>Atomic decrement; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Decrement(ref long location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Decrement, file, line);
        }

        return Interlocked.Decrement(ref location);
    }

    /// <summary>Atomic add; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Add(ref long location, long value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Add, file, line);
        }

        return Interlocked.Add(ref location, value);
    }

    /// <summary>Atomic bitwise or; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long Or(ref long location, long value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Or, file, line);
        }

        return Interlocked.Or(ref location, value);
    }

    /// <summary>Atomic bitwise and; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static long And(ref long location, long value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.And, file, line);
        }

        return Interlocked.And(ref location, value);
    }

    // ---- uint ----

    /// <summary>Acquire load.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Read(ref uint location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Read, file, line);
        }

        return Volatile.Read(ref location);
    }

    /// <summary>Release store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(ref uint location, uint value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Write, file, line);
        }

        Volatile.Write(ref location, value);
    }

    /// <summary>Compare-and-swap; returns the value seen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint CompareExchange(ref uint location, uint value, uint comparand, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.CompareExchange, file, line);
        }

        return Interlocked.CompareExchange(ref location, value, comparand);
    }

    /// <summary>Atomic exchange; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Exchange(ref uint location, uint value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Exchange, file, line);
        }

        return Interlocked.Exchange(ref location, value);
    }

    /// <summary>Atomic increment; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Increment(ref uint location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Increment, file, line);
        }

        return Interlocked.Increment(ref location);
    }

    /// <summary>Atomic decrement; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Decrement(ref uint location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Decrement, file, line);
        }

        return Interlocked.Decrement(ref location);
    }

    /// <summary>Atomic add; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Add(ref uint location, uint value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Add, file, line);
        }

        return Interlocked.Add(ref location, value);
    }

    /// <summary>Atomic bitwise or; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Or(ref uint location, uint value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Or, file, line);
        }

        return Interlocked.Or(ref location, value);
    }

    /// <summary>Atomic bitwise and; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint And(ref uint location, uint value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.And, file, line);
        }

        return Interlocked.And(ref location, value);
    }

    // ---- ulong ----

    /// <summary>Acquire load.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Read(ref ulong location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Read, file, line);
        }

        return Volatile.Read(ref location);
    }

    /// <summary>Release store.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write(ref ulong location, ulong value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Write, file, line);
        }

        Volatile.Write(ref location, value);
    }

    /// <summary>Compare-and-swap; returns the value seen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong CompareExchange(ref ulong location, ulong value, ulong comparand, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.CompareExchange, file, line);
        }

        return Interlocked.CompareExchange(ref location, value, comparand);
    }

    /// <summary>Atomic exchange; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Exchange(ref ulong location, ulong value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Exchange, file, line);
        }

        return Interlocked.Exchange(ref location, value);
    }

    /// <summary>Atomic increment; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Increment(ref ulong location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Increment, file, line);
        }

        return Interlocked.Increment(ref location);
    }

    /// <summary>Atomic decrement; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Decrement(ref ulong location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Decrement, file, line);
        }

        return Interlocked.Decrement(ref location);
    }

    /// <summary>Atomic add; returns the new value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Add(ref ulong location, ulong value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Add, file, line);
        }

        return Interlocked.Add(ref location, value);
    }

    /// <summary>Atomic bitwise or; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Or(ref ulong location, ulong value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Or, file, line);
        }

        return Interlocked.Or(ref location, value);
    }

    /// <summary>Atomic bitwise and; returns the previous value.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong And(ref ulong location, ulong value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.And, file, line);
        }

        return Interlocked.And(ref location, value);
    }

    // ---- references ----

    /// <summary>Acquire load of a reference.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Read<T>(ref T location, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0) where T : class?
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Read, file, line);
        }

        return Volatile.Read(ref location);
    }

    /// <summary>Release store of a reference.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Write<T>(ref T location, T value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0) where T : class?
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Write, file, line);
        }

        Volatile.Write(ref location, value);
    }

    /// <summary>Compare-and-swap of a reference; returns the reference seen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T CompareExchange<T>(ref T location, T value, T comparand, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0) where T : class?
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.CompareExchange, file, line);
        }

        return Interlocked.CompareExchange(ref location, value, comparand);
    }

    /// <summary>Atomic exchange of a reference; returns the previous one.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static T Exchange<T>(ref T location, T value, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0) where T : class?
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Exchange, file, line);
        }

        return Interlocked.Exchange(ref location, value);
    }

    /// <summary>A full memory barrier (<c>smp_mb</c>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MemoryBarrier([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.MemoryBarrier, file, line);
        }

        Interlocked.MemoryBarrier();
    }

    /// <summary>
    /// A full barrier executed on behalf of every running thread (the kernel's <c>membarrier</c>, or an IPI to every
    /// CPU): when it returns, each other thread's earlier stores are visible to the caller, and each other thread's
    /// later loads see the caller's earlier stores. It lets a rarely taken slow path pay for the fence a hot path
    /// would otherwise need between a store and a load. Costly (microseconds): slow paths only.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void MemoryBarrierProcessWide([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.MemoryBarrier, file, line);
        }

        Interlocked.MemoryBarrierProcessWide();
    }
}
