using Engine.Invariants;

namespace Engine;

/// <summary>
/// Thrown by <c>Machine.CheckInvariants</c>: every broken invariant, each typed (<see cref="InvariantViolation.Kind"/>)
/// and naming the pfn, address, CPU or process involved.
/// </summary>
public sealed class InvariantViolationException : Exception
{
    /// <summary>Creates the exception from the violations found.</summary>
    public InvariantViolationException(IReadOnlyList<InvariantViolation> violations)
        : base(Describe(violations))
        => Violations = violations;

    /// <summary>Creates the exception.</summary>
    public InvariantViolationException()
        => Violations = [];

    /// <summary>Creates the exception with a message.</summary>
    public InvariantViolationException(string message)
        : base(message)
        => Violations = [];

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public InvariantViolationException(string message, Exception innerException)
        : base(message, innerException)
        => Violations = [];

    /// <summary>Every violation found.</summary>
    public IReadOnlyList<InvariantViolation> Violations { get; }

    /// <summary>The kinds of invariant broken, each once, in the order first found.</summary>
    public IReadOnlyList<ViolationKind> Kinds => Violations.Select(v => v.Kind).Distinct().ToList();

    private static string Describe(IReadOnlyList<InvariantViolation> violations)
        => $"{violations.Count} invariant violation(s):{Environment.NewLine}  {string.Join(Environment.NewLine + "  ", violations.Take(50).Select(v => v.Message))}{(violations.Count > 50 ? $"{Environment.NewLine}  ... and {violations.Count - 50} more" : "")}";
}
