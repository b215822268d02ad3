namespace Engine;

/// <summary>Thrown by <c>Machine.CheckInvariants</c>: every broken invariant, each naming the pfn or address involved.</summary>
public sealed class InvariantViolationException : Exception
{
    /// <summary>Creates the exception from the violations found.</summary>
    public InvariantViolationException(IReadOnlyList<string> violations)
        : base($"{violations.Count} invariant violation(s):{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", violations.Take(50))}{(violations.Count > 50 ? $"{Environment.NewLine}  ... and {violations.Count - 50} more" : "")}")
        => Violations = violations;

    /// <summary>Creates the exception.</summary>
    public InvariantViolationException()
        => Violations = [];

    /// <summary>Creates the exception with a message.</summary>
    public InvariantViolationException(string message)
        : base(message)
        => Violations = [message];

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public InvariantViolationException(string message, Exception innerException)
        : base(message, innerException)
        => Violations = [message];

    /// <summary>Every violation found.</summary>
    public IReadOnlyList<string> Violations { get; }
}
