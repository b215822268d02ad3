using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>Explicit scheduling points, for code that wants the scheduler to consider a switch where no primitive is.</summary>
public static class SchedulingPoint
{
    /// <summary>A point at which the scheduler may run another thread. A no-op when not testing.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Interleave([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Interleave, file, line);
        }
    }

    /// <summary>
    /// Like <see cref="Interleave"/>, but the caller asks to step aside: priority-based strategies lower its
    /// priority. A no-op when not testing.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Yield([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            SchedulingHook.Point(OperationKind.Yield, file, line);
        }
    }
}
