using Engine.Sync;

namespace Engine.Systematic.Runtime;

/// <summary>
/// A logical thread of one iteration. Its fields are read and written only by the thread holding the scheduler's
/// baton (under <see cref="ControlledRuntime"/>'s gate), except <see cref="Worker"/>, which is fixed at creation.
/// </summary>
internal sealed class Operation(ControlledRuntime runtime, int id, string name, Action body, Worker worker)
{
    public ControlledRuntime Runtime { get; } = runtime;

    public int Id { get; } = id;

    public string Name { get; } = name;

    public Action Body { get; } = body;

    public Worker Worker { get; } = worker;

    public OperationStatus Status { get; set; } = OperationStatus.Enabled;

    /// <summary>True once its worker has begun running <see cref="Body"/>.</summary>
    public bool Started { get; set; }

    /// <summary>Number of times the scheduler has chosen this thread in the iteration.</summary>
    public int TimesChosen { get; set; }

    public Func<object?, bool>? Condition { get; set; }

    public object? ConditionState { get; set; }

    /// <summary>The write epoch at which <see cref="Condition"/> was last evaluated false.</summary>
    public long ConditionEpoch { get; set; }

    /// <summary>The operation the thread announced at its last scheduling point: it runs when the thread is chosen.</summary>
    public OperationKind PendingKind { get; private set; } = OperationKind.ThreadStart;

    public string PendingFile { get; private set; } = "";

    public int PendingLine { get; private set; }

    public void SetPending(OperationKind kind, string file, int line)
    {
        PendingKind = kind;
        PendingFile = file;
        PendingLine = line;
    }

    public string Describe() => $"T{Id} '{Name}'";

    public string DescribePending() => PendingLine == 0
        ? PendingKind.ToString()
        : $"{PendingKind} at {Path.GetFileName(PendingFile)}:{PendingLine}";
}
