namespace Conformance;

/// <summary>
/// One cell of cow.c's table as <see cref="CowSelftestCells"/> ran it: the scenario's outcome, and anything else that
/// went wrong around it.
/// </summary>
/// <param name="Row">The row: the scenario's name, and for a large folio the runner (<c>basic COW after fork on PTE-mapped</c>).</param>
/// <param name="Outcome">What the scenario's checks found; null when it did not run to its end.</param>
/// <param name="Problem">
/// Null, or what went wrong besides the checks: an exception (a preparation that did not leave what the row names, an
/// invariant violation, an engine error), a leaked frame or swap slot, a folio split or a fault that fell back to a page.
/// </param>
/// <param name="HeldUntilReclaim">
/// Null, or what stayed held after every process had exited until reclaim gave it back (a frame eviction kept, a swap
/// slot <c>free_swap_cache</c> kept): under a mapcount scheme that cannot tell eviction the page is unmapped. The
/// cell still passes; reclaim's rmap walk, which is exact, found nothing mapping it.
/// </param>
public sealed record CowSelftestCellResult(string Row, CowSelftestOutcome? Outcome, string? Problem, string? HeldUntilReclaim = null)
{
    /// <summary>The scenario passed and nothing else went wrong.</summary>
    public bool Passed => Outcome is { Passed: true } && Problem is null;

    /// <summary>"pass", or what failed.</summary>
    public override string ToString() => Passed ? (HeldUntilReclaim is null ? "pass" : $"pass; {HeldUntilReclaim} until reclaim")
        : Outcome is null ? $"FAIL ({Problem})"
        : Problem is null ? Outcome.ToString()
        : $"{Outcome}; {Problem}";
}
