namespace Engine.Cli.Mapcount;

/// <summary>What one check found under one design.</summary>
/// <param name="Check">The check.</param>
/// <param name="Outcome">What it found.</param>
/// <param name="Detail">A few words for the table's cell (<c>found 2/2</c>, <c>500 passed</c>).</param>
/// <param name="Report">
/// For an unsoundness (a bug with the fix, a failed cow.c row, a race test's bug, a failed stress run, a buggy run that
/// found another bug than its entry's): the report that shows it, printed after the table. Otherwise null.
/// </param>
/// <param name="Note">For a run that proved nothing (<see cref="CheckOutcome.Vacuous"/>): why.</param>
internal sealed record CheckResult(MapcountCheck Check, CheckOutcome Outcome, string Detail, string? Report = null, string? Note = null);
