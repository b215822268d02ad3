using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>
/// Every spin-wait in the engine goes through here, so that a controlled scheduler can see it.
/// <para>
/// Real execution spins with back-off until the condition holds. Under systematic testing the waiting thread is
/// <em>disabled</em> instead: it takes no scheduling steps until a write may have made the condition true, so a
/// spin loop never burns the step budget, and a wait that can never end is reported as a deadlock.
/// </para>
/// <para>
/// A condition must only read shared state (through <see cref="Atomic"/> or plain fields); under the tester it is
/// evaluated with scheduling points suppressed, possibly on another controlled thread.
/// </para>
/// </summary>
public static class Wait
{
    /// <summary>Waits until <paramref name="condition"/> returns true.</summary>
    public static void Until(Func<bool> condition, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        ArgumentNullException.ThrowIfNull(condition);
        if (SchedulingHook.IsEnabled && WaitControlled(ParameterlessCondition.Evaluate, condition, file, line))
        {
            return;
        }

        var backoff = new Backoff();
        while (!condition())
        {
            backoff.Spin();
        }
    }

    /// <summary>
    /// Waits until <paramref name="condition"/>(<paramref name="state"/>) returns true. Allocation-free in real
    /// execution when <paramref name="condition"/> is a static lambda: use this overload on hot paths.
    /// </summary>
    public static void Until<TState>(TState state, Func<TState, bool> condition, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        ArgumentNullException.ThrowIfNull(condition);
        if (SchedulingHook.IsEnabled && WaitControlled(StateCondition<TState>.Evaluate, new StateCondition<TState>(state, condition), file, line))
        {
            return;
        }

        var backoff = new Backoff();
        while (!condition(state))
        {
            backoff.Spin();
        }
    }

    /// <summary>
    /// Under a controlled scheduler: one scheduling point for the check, then the hook disables the thread until
    /// the condition holds. Returns false when the thread is not controlled.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static bool WaitControlled(Func<object?, bool> evaluate, object state, string file, int line)
    {
        var hook = SchedulingHook.Current;
        if (hook is null)
        {
            return false;
        }

        hook.OnSchedulingPoint(OperationKind.WaitCheck, file, line);
        return hook.WaitUntil(OperationKind.WaitCheck, evaluate, state, file, line);
    }

    private static class ParameterlessCondition
    {
        public static readonly Func<object?, bool> Evaluate = static s => ((Func<bool>)s!)();
    }

    private sealed class StateCondition<TState>(TState state, Func<TState, bool> condition)
    {
        public static readonly Func<object?, bool> Evaluate = static s => ((StateCondition<TState>)s!).Holds();

        private bool Holds() => condition(state);
    }
}
