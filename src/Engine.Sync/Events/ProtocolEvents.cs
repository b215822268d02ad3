using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>
/// Marks protocol steps in kernel terms for the scheduler that runs the code (see <see cref="ProtocolEvent"/>).
/// <para>
/// An event is not a scheduling point: it adds no decision, so marking a step never changes which schedules a
/// strategy explores or how a recorded schedule replays. When systematic testing is off for the process
/// (<see cref="SchedulingHook.IsEnabled"/> false) the JIT removes every call, as it removes the primitives' hook
/// calls; when it is on but no test runs, a call costs the thread-static lookup of <see cref="SchedulingHook.Current"/>.
/// </para>
/// </summary>
public static class ProtocolEvents
{
    /// <summary>
    /// Records that <paramref name="function"/> did <paramref name="what"/> (a format string over
    /// <paramref name="pfn"/>, <paramref name="address"/>, <paramref name="value"/> and <paramref name="value2"/>).
    /// Pass string literals: they are stored, not copied.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Mark(string function, string what, long pfn = -1, ulong address = 0, long value = 0, long value2 = 0)
    {
        if (SchedulingHook.IsEnabled)
        {
            Record(function, what, pfn, address, value, value2);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void Record(string function, string what, long pfn, ulong address, long value, long value2)
        => SchedulingHook.Current?.OnEvent(new ProtocolEvent(function, what, pfn, address, value, value2));
}
