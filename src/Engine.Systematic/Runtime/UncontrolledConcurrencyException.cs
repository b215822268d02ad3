using Engine.Sync;

namespace Engine.Systematic;

/// <summary>
/// Thrown in a thread the tester does not control when it performs an <c>Engine.Sync</c> operation while a
/// controlled test runs. The test reports it as a bug of kind <see cref="BugKind.Uncontrolled"/>.
/// </summary>
public sealed class UncontrolledConcurrencyException : Exception
{
    /// <summary>Creates the exception.</summary>
    public UncontrolledConcurrencyException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public UncontrolledConcurrencyException(string message)
        : base(message)
    {
    }

    /// <summary>
    /// The report of an <c>Engine.Sync</c> operation by the calling thread, which no scheduler controls, while a
    /// controlled test runs: names the thread and the operation's source line.
    /// </summary>
    internal static string Describe(OperationKind kind, string file, int line)
    {
        var thread = Thread.CurrentThread;
        var who = $"'{thread.Name ?? "(unnamed)"}' (managed thread {thread.ManagedThreadId}{(thread.IsThreadPoolThread ? ", a thread-pool thread" : "")})";
        var where = line == 0 ? kind.ToString() : $"{kind} at {Path.GetFileName(file)}:{line}";
        return $"Uncontrolled concurrency: thread {who} performed {where} while a controlled test was running. " +
               "Only threads started with ControlledThread.Start are scheduled; a Task, a thread-pool work item or a raw " +
               "Thread escapes the scheduler and makes the test nondeterministic.";
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public UncontrolledConcurrencyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
