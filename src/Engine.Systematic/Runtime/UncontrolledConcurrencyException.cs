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

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public UncontrolledConcurrencyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
