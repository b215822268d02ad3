using Engine.Sync;

namespace Engine.Systematic;

/// <summary>
/// One decision of an iteration. For <see cref="DecisionKind.Schedule"/>: thread <see cref="Thread"/> was chosen and
/// then performed <see cref="Operation"/> at <see cref="File"/>:<see cref="Line"/> (the operation it had announced).
/// For a data choice: <see cref="Thread"/> asked for a value below <see cref="Bound"/> and got <see cref="Value"/>.
/// </summary>
/// <param name="Index">Position in the iteration, from 0.</param>
/// <param name="Kind">Schedule or data choice.</param>
/// <param name="Thread">The thread chosen (schedule) or asking (data).</param>
/// <param name="Value">The value chosen: the thread id again for a schedule step.</param>
/// <param name="Bound">For data choices, the exclusive upper bound; 0 for schedule steps.</param>
/// <param name="Operation">The operation performed.</param>
/// <param name="File">Source file of the call that performed it.</param>
/// <param name="Line">Source line of that call.</param>
/// <param name="From">The thread that reached the scheduling point (-1 for the first step).</param>
/// <param name="FromStep">How many times <paramref name="From"/> had been chosen before this decision.</param>
/// <param name="Preemption">True when <paramref name="From"/> could have gone on but another thread was chosen.</param>
public readonly record struct TraceStep(
    int Index,
    DecisionKind Kind,
    int Thread,
    int Value,
    int Bound,
    OperationKind Operation,
    string File,
    int Line,
    int From,
    int FromStep,
    bool Preemption)
{
    /// <summary>The file name and line, as printed in reports.</summary>
    public string Location => Line == 0 ? Path.GetFileName(File) : $"{Path.GetFileName(File)}:{Line}";
}
