using Engine.Sync;

namespace Engine.Systematic.Runtime;

/// <summary>
/// The tester's implementation of <see cref="ISchedulingHook"/>: routes each operation of a controlled thread to
/// its runtime, ignores operations inside condition evaluation, and reports operations of uncontrolled threads while
/// a test runs.
/// </summary>
internal sealed class RuntimeHook : ISchedulingHook
{
    public static readonly RuntimeHook Instance = new();

    private RuntimeHook()
    {
    }

    public void OnSchedulingPoint(OperationKind kind, string file, int line)
    {
        if (ControlledRuntime.Suppressed)
        {
            return;
        }

        var current = ControlledRuntime.Current;
        if (current is null)
        {
            if (ControlledRuntime.AnyActive)
            {
                ControlledRuntime.ReportUncontrolled(kind, file, line);
            }

            return;
        }

        current.Runtime.OnSchedulingPoint(current, kind, file, line);
    }

    public void OnEvent(in ProtocolEvent protocolEvent)
    {
        if (ControlledRuntime.Suppressed)
        {
            return;
        }

        // An uncontrolled thread's events are not reported: its scheduling points are, which is enough.
        var current = ControlledRuntime.Current;
        current?.Runtime.OnEvent(current, protocolEvent);
    }

    public bool WaitUntil(OperationKind kind, Func<object?, bool> condition, object? state, string file, int line)
    {
        if (ControlledRuntime.Suppressed)
        {
            return false;
        }

        var current = ControlledRuntime.Current;
        if (current is null)
        {
            if (ControlledRuntime.AnyActive)
            {
                ControlledRuntime.ReportUncontrolled(kind, file, line);
            }

            return false;
        }

        return current.Runtime.WaitUntil(current, kind, condition, state, file, line);
    }
}
