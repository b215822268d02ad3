namespace Conformance;

/// <summary>
/// What one cow.c scenario found: pass, or the properties it broke, each with what was seen. Built by the scenario
/// as it checks; a scenario that finds nothing wrong passes.
/// </summary>
public sealed class CowSelftestOutcome
{
    private readonly List<(CowSelftestCheck Check, string Detail)> _failures = [];

    /// <summary>True when no check failed.</summary>
    public bool Passed => _failures.Count == 0;

    /// <summary>The checks that failed, in the order they were made.</summary>
    public IReadOnlyList<CowSelftestCheck> FailedChecks => _failures.ConvertAll(f => f.Check);

    /// <summary>Records that <paramref name="check"/> does not hold, and what showed it.</summary>
    public void Fail(CowSelftestCheck check, string detail) => _failures.Add((check, detail));

    /// <summary>Records a failure of <paramref name="check"/> unless <paramref name="holds"/>.</summary>
    public void Expect(bool holds, CowSelftestCheck check, string detail)
    {
        if (!holds)
        {
            Fail(check, detail);
        }
    }

    /// <summary>"pass", or "FAIL" with each broken property and its detail.</summary>
    public override string ToString()
        => Passed ? "pass" : "FAIL (" + string.Join("; ", _failures.Select(f => $"{f.Check}: {f.Detail}")) + ")";
}
