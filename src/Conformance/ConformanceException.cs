namespace Conformance;

/// <summary>
/// A conformance scenario could not set up what it claims to test (a page was not swapped out, a write did not map a
/// large folio, a zap split the folio it was to leave whole), or a step that must succeed did not. The scenario proves
/// nothing about the property it checks, so it stops here; cow.c skips such a test, a conformance run counts it as
/// failed. Not thrown for a property a scenario checks: those are the outcome (<see cref="CowSelftestOutcome"/>) or,
/// under the tester, a <c>Specification.Assert</c>.
/// </summary>
public sealed class ConformanceException : Exception
{
    public ConformanceException()
    {
    }

    public ConformanceException(string message)
        : base(message)
    {
    }

    public ConformanceException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
