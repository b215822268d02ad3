namespace Engine.Systematic.Runtime;

/// <summary>The scheduler's view of a logical thread.</summary>
internal enum OperationStatus
{
    /// <summary>May be chosen to run.</summary>
    Enabled,
    /// <summary>Disabled until its wait condition holds (a wait, a held lock, a join).</summary>
    Waiting,
    /// <summary>Its body has returned or thrown.</summary>
    Completed,
}
