namespace Engine.Sync;

/// <summary>
/// What a controlled scheduler plugs into <see cref="SchedulingHook"/>. <c>Engine.Sync</c> knows nothing of the
/// scheduler beyond this interface. Every member is called on the thread that performs the operation.
/// </summary>
public interface ISchedulingHook
{
    /// <summary>
    /// Called before a visible operation. A controlled thread may be descheduled here and resumed later; a thread
    /// the scheduler does not control returns at once (or, while a controlled test runs, is reported and stopped).
    /// </summary>
    void OnSchedulingPoint(OperationKind kind, string file, int line);

    /// <summary>
    /// Called when a thread must wait until <paramref name="condition"/>(<paramref name="state"/>) holds. A controlled
    /// thread is disabled until the condition may have become true and returns <see langword="true"/> once it holds.
    /// Returns <see langword="false"/> when the calling thread is not controlled: the caller then waits for real.
    /// The condition is evaluated with scheduling points suppressed and possibly on another controlled thread, so it
    /// must only read shared state.
    /// </summary>
    bool WaitUntil(OperationKind kind, Func<object?, bool> condition, object? state, string file, int line);

    /// <summary>
    /// A protocol step the running code marked (<see cref="ProtocolEvents.Mark"/>), on the calling thread. Not a
    /// scheduling point: the hook records it and returns. The default ignores it.
    /// </summary>
    void OnEvent(in ProtocolEvent protocolEvent)
    {
    }
}
