using Engine.Sync;
using Engine.Systematic;

namespace Engine.Coyote;

/// <summary>
/// A controlled thread of a Coyote iteration: a Coyote operation (made with <c>Operation.CreateFrom</c>) run on an OS
/// thread of its own. Thread 0 is the test body, run by Coyote on its own controlled thread. Fields other than
/// <see cref="IsCompleted"/> and <see cref="HasExited"/> are touched only by the thread Coyote has scheduled (one at a
/// time), or by the iteration's driver once every other thread of it has stopped.
/// </summary>
internal sealed class CoyoteThread(CoyoteIteration iteration, int id, string name, Action? body) : IExternalThread
{
    private volatile bool _completed;
    private volatile bool _exited;

    public CoyoteIteration Iteration { get; } = iteration;

    /// <inheritdoc/>
    public int Id { get; } = id;

    public string Name { get; } = name;

    /// <summary>The body of a started thread; null for thread 0, whose body Coyote runs.</summary>
    public Action? Body { get; } = body;

    /// <summary>Coyote's id of the operation (for a started thread).</summary>
    public ulong OperationId { get; set; }

    /// <summary>The OS thread of a started thread.</summary>
    public Thread? OsThread { get; set; }

    /// <summary>How many times the scheduler has chosen this thread in the iteration (as the built-in scheduler counts).</summary>
    public int TimesChosen { get; set; }

    /// <summary>The operation announced at the thread's last scheduling point: it runs when the thread is chosen.</summary>
    public OperationKind PendingKind { get; private set; } = OperationKind.ThreadStart;

    public string PendingFile { get; private set; } = "";

    public int PendingLine { get; private set; }

    /// <inheritdoc/>
    public bool IsCompleted => _completed;

    /// <summary>True once the thread's OS thread has left the body for good (returned, failed or unwound).</summary>
    public bool HasExited => _exited;

    /// <inheritdoc/>
    public void Join(string file, int line) => CoyoteBridge.Join(this, file, line);

    public void SetPending(OperationKind kind, string file, int line)
    {
        PendingKind = kind;
        PendingFile = file;
        PendingLine = line;
    }

    public void MarkCompleted() => _completed = true;

    public void MarkExited() => _exited = true;

    public string Describe() => $"T{Id} '{Name}'";

    public string DescribePending() => PendingLine == 0
        ? PendingKind.ToString()
        : $"{PendingKind} at {Path.GetFileName(PendingFile)}:{PendingLine}";
}
