namespace Engine.Systematic;

/// <summary>A <see cref="Specification.Assert(bool, string)"/> that failed outside the tester (on real threads).</summary>
public sealed class AssertionFailureException : Exception
{
    /// <summary>Creates the exception.</summary>
    public AssertionFailureException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public AssertionFailureException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public AssertionFailureException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The kind of bug the assertion stated (<see cref="Specification.Assert(bool, string, string)"/>), or null.</summary>
    public string? Category { get; init; }
}
