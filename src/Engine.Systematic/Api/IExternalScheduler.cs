using System.Diagnostics.CodeAnalysis;

namespace Engine.Systematic;

/// <summary>
/// A scheduler other than the built-in one that runs test bodies under its own control: the Coyote backend
/// (<c>Engine.Coyote</c>). On the threads it controls, <see cref="ControlledThread"/>, <see cref="Specification"/> and
/// <see cref="ControlledRandom"/> route to it, so one test body runs unchanged under either scheduler. It receives the
/// <c>Engine.Sync</c> operations through its own <c>ISchedulingHook</c>.
/// </summary>
public interface IExternalScheduler
{
    /// <summary>True when the calling thread is one of the scheduler's controlled threads, in an iteration that runs.</summary>
    bool ControlsCurrentThread { get; }

    /// <summary>Creates a controlled thread running <paramref name="body"/> and offers the scheduler a switch to it.</summary>
    IExternalThread StartThread(Action body, string? name, string file, int line);

    /// <summary>A data choice in [0, <paramref name="maxValue"/>), made by the scheduler and recorded in its trace.</summary>
    int NextInteger(int maxValue, DecisionKind kind, string file, int line);

    /// <summary>
    /// Fails the iteration with <paramref name="message"/> and the kind of bug the assertion stated
    /// (<paramref name="category"/>, null when none), which the report carries as <see cref="BugReport.Category"/>;
    /// unwinds the calling thread.
    /// </summary>
    [DoesNotReturn]
    void Fail(string message, string? category);
}

/// <summary>A controlled thread of an <see cref="IExternalScheduler"/>.</summary>
public interface IExternalThread
{
    /// <summary>The thread's id in its iteration (0 is the test body).</summary>
    int Id { get; }

    /// <summary>True once the thread's body has returned or thrown.</summary>
    bool IsCompleted { get; }

    /// <summary>Waits, as a wait the scheduler controls, until the thread has finished.</summary>
    void Join(string file, int line);
}

/// <summary>Where an <see cref="IExternalScheduler"/> makes itself known to the test API.</summary>
public static class ExternalScheduler
{
    private static IExternalScheduler? s_installed;

    /// <summary>
    /// Installs <paramref name="scheduler"/>. It is consulted only on threads it says it controls, so it may stay
    /// installed while the built-in scheduler runs other tests.
    /// </summary>
    public static void Install(IExternalScheduler scheduler)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        Volatile.Write(ref s_installed, scheduler);
    }

    /// <summary>The installed scheduler if it controls the calling thread, else null.</summary>
    internal static IExternalScheduler? Controlling
        => Volatile.Read(ref s_installed) is { ControlsCurrentThread: true } scheduler ? scheduler : null;
}
