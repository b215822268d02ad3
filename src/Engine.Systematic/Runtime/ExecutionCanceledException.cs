namespace Engine.Systematic.Runtime;

/// <summary>
/// Thrown inside controlled threads to unwind them when their iteration ends early (a bug, the step bound, a
/// diverging replay). Test code should let it pass; if it is caught, the next scheduling point throws it again.
/// </summary>
public sealed class ExecutionCanceledException : Exception
{
    /// <summary>Creates the exception.</summary>
    public ExecutionCanceledException()
        : base("The controlled iteration was ended by the systematic tester.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public ExecutionCanceledException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public ExecutionCanceledException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
