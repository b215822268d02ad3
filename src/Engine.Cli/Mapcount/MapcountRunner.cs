using System.Diagnostics;
using System.Globalization;
using BugZoo;
using Conformance;
using Engine.Cli.Commands;
using Engine.Cli.Stress;
using Engine.Systematic;

namespace Engine.Cli.Mapcount;

/// <summary>
/// <c>engine mapcount</c>'s run (issue 19): for each design, the bug zoo with large folios under its scheme, cow.c's
/// table on base pages and large folios, the large-folio races under the tester, and a stress run with large folios;
/// then the side-by-side table, the report of every unsoundness found, and how the cells compare with
/// <see cref="MapcountExpectations"/>. An unsoundness the table expects is a result, not a failure.
/// </summary>
internal static class MapcountRunner
{
    /// <summary>How many failing cow.c rows a cell names before it says how many more.</summary>
    private const int RowsNamedInACell = 3;

    /// <summary>
    /// Runs every check under every design of <paramref name="settings"/> (<see cref="Collect"/>), prints the table and
    /// the reports, and returns <see cref="ExitCode.Passed"/> when every cell is what <paramref name="expectations"/>
    /// (by default <see cref="MapcountExpectations.Documented"/>) says, else <see cref="ExitCode.Failed"/>
    /// (<see cref="Report"/>).
    /// </summary>
    public static int Run(MapcountSettings settings, MapcountExpectations? expectations = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        expectations ??= MapcountExpectations.Documented;

        // A mistake in the expectation table is this program's, not the input's: it is checked before any work.
        if (expectations.Problems(Applies).ToList() is { Count: > 0 } mistakes)
        {
            throw new InvalidOperationException("MapcountExpectations: " + string.Join("; ", mistakes));
        }

        var total = Stopwatch.StartNew();
        var results = Collect(settings);
        return Report(settings, results, expectations, total.Elapsed);
    }

    /// <summary>
    /// Runs every check under every design of <paramref name="settings"/>, printing the settings first and a line per
    /// design and phase as it goes; returns what each check found, by design.
    /// </summary>
    public static IReadOnlyDictionary<MapcountDesign, IReadOnlyDictionary<MapcountCheck, CheckResult>> Collect(MapcountSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        Console.WriteLine($"engine mapcount: {string.Join(", ", settings.Designs.Select(d => d.Name))} on {Environment.ProcessorCount} cores.");
        Console.WriteLine($"Zoo with folios of order 1: knob off, seeds {settings.Seed}-{settings.Seed + settings.Seeds - 1}, up to {settings.Budget:N0} schedules each; with the fix, {settings.FixedIterations:N0} schedules, {settings.Parallel} at once.");
        Console.WriteLine($"cow.c: every row on base pages, and the anonymous rows on large folios of order {string.Join(" and ", MapcountCheck.CowFolioOrders)} (the AnonExclusive rule, Linux >= 6.2).");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Races: {FolioRaceScenarios.All.Count} large-folio scenarios, {settings.RaceIterations:N0} schedules each. Stress: {settings.StressSeconds:0.#} s, {MapcountSettings.StressCpus} CPUs, {MapcountSettings.StressFrames:N0} frames, folios of order {MapcountSettings.StressFolioOrder}, seed {settings.Seed}."));
        Console.WriteLine();

        var results = new Dictionary<MapcountDesign, IReadOnlyDictionary<MapcountCheck, CheckResult>>();
        foreach (var design in settings.Designs)
        {
            var found = new Dictionary<MapcountCheck, CheckResult>();
            results[design] = found;
            Phase(design, "zoo", found, () => BugZooCatalog.All.SelectMany(entry => new[] { Buggy(entry, design, settings), Fixed(entry, design, settings) }));
            Phase(design, "cow.c", found, () => CowTable(design));
            Phase(design, "races", found, () => FolioRaceScenarios.All.Select(race => Race(race, design, settings)));
            Phase(design, "stress", found, () => [StressRun(design, settings)]);
        }

        return results;
    }

    /// <summary>
    /// Prints the side-by-side table of <paramref name="results"/>, the report of every unsoundness, and the cells that
    /// differ from <paramref name="expectations"/>; returns <see cref="ExitCode.Passed"/> when none does, else
    /// <see cref="ExitCode.Failed"/>.
    /// </summary>
    public static int Report(MapcountSettings settings, IReadOnlyDictionary<MapcountDesign, IReadOnlyDictionary<MapcountCheck, CheckResult>> results, MapcountExpectations expectations, TimeSpan elapsed)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(results);
        ArgumentNullException.ThrowIfNull(expectations);
        Console.WriteLine();
        PrintTable(settings, results, expectations);
        PrintReports(results, expectations);
        var differences = results
            .SelectMany(r => r.Value.Values
                .Where(c => Differs(r.Key, c, expectations))
                .Select(c => (Design: r.Key, Result: c)))
            .ToList();
        var unsound = results.Sum(r => r.Value.Values.Count(c => c.Report is not null));
        Console.WriteLine();
        Console.WriteLine($"{results.Count} design(s) in {elapsed.TotalSeconds:N0} s.");
        if (differences.Count == 0)
        {
            Console.WriteLine($"Every cell as docs/mapcount.md expects ({unsound} unsoundness(es) found, each expected).");
            return ExitCode.Passed;
        }

        Console.WriteLine($"{differences.Count} cell(s) differ from docs/mapcount.md's expectations (MapcountExpectations):");
        foreach (var (design, result) in differences)
        {
            var why = result.Note ?? result.Detail;
            Console.WriteLine($"  {design.Name}: {result.Check}: expected {Describe(expectations.Expected(design.Name, result.Check))}, found {Describe(result.Outcome)} ({why})");
        }

        var vacuous = differences.Count(d => d.Result.Outcome == CheckOutcome.Vacuous);
        if (vacuous > 0)
        {
            Console.WriteLine($"{vacuous} of them proved nothing: the budgets were too small to meet every interleaving (raise --fixed-iterations, --race-iterations or --stress-seconds).");
        }

        Console.Error.WriteLine($"engine mapcount: {differences.Count} cell(s) differ from the expectations (listed above).");
        return ExitCode.Failed;
    }

    /// <summary>
    /// Whether <paramref name="design"/> can run <paramref name="check"/> at all: a zoo scenario whose copy-on-write rule
    /// is not AnonExclusive cannot run under MM ids, the tri-state mapcount or none, and the MM-id slots' race exists
    /// under MM ids only. Such a check is n/a in that column, not run under another scheme.
    /// </summary>
    public static bool Applies(MapcountDesign design, MapcountCheck check) => check.Kind switch
    {
        MapcountCheckKind.ZooBuggy => design.Proposal.RunsAsProposed(ZooProposals.SettingsOf(BugZooCatalog.Get(check.Name).Buggy)),
        MapcountCheckKind.ZooFixed => design.Proposal.RunsAsProposed(ZooProposals.SettingsOf(BugZooCatalog.Get(check.Name).Fixed(null))),
        MapcountCheckKind.Race => FolioRaceScenarios.Get(check.Name).AppliesTo(design.Scheme),
        _ => true,
    };

    private static void Phase(MapcountDesign design, string what, Dictionary<MapcountCheck, CheckResult> into, Func<IEnumerable<CheckResult>> run)
    {
        var clock = Stopwatch.StartNew();
        var results = run().ToList();
        foreach (var result in results)
        {
            into[result.Check] = result;
        }

        var ran = results.Count(r => r.Outcome != CheckOutcome.NotApplicable);
        var unsound = results.Count(r => r.Report is not null);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{design.Name}: {what}: {ran} check(s) run{(ran < results.Count ? $", {results.Count - ran} n/a" : "")}{(unsound > 0 ? $", {unsound} unsound" : "")}, {clock.Elapsed.TotalSeconds:0.0} s"));
    }

    /// <summary>The entry's scenario with its knob off, seed by seed until its first bug, under the design's proposal.</summary>
    private static CheckResult Buggy(ZooEntry entry, MapcountDesign design, MapcountSettings settings)
    {
        var check = MapcountCheck.ZooBuggy(entry.Name);
        if (!Applies(design, check))
        {
            return new CheckResult(check, CheckOutcome.NotApplicable, "n/a");
        }

        var found = 0;
        (BugReport Bug, string Mismatch)? wrong = null;
        for (var i = 0; i < settings.Seeds; i++)
        {
            var report = ZooRunner.FindBug(entry, settings.Seed + i, settings.Budget, proposal: design.Proposal);
            if (report.FirstBug is { } bug)
            {
                found++;
                if (wrong is null && ZooRunner.Mismatch(entry, bug) is { } mismatch)
                {
                    wrong = (bug, mismatch);
                }
            }
        }

        if (wrong is { } w)
        {
            return new CheckResult(check, CheckOutcome.WrongBug, $"another bug ({w.Bug.Category ?? w.Bug.Kind.ToString()})",
                $"{w.Mismatch}{Environment.NewLine}{Environment.NewLine}{w.Bug.Format(null)}{ReplayCommand.HowToReplay(w.Bug, "--scenario", entry.BuggyTestNameUnder(design.Proposal))}");
        }

        return found > 0
            ? new CheckResult(check, CheckOutcome.Found, $"found {found}/{settings.Seeds}")
            : new CheckResult(check, CheckOutcome.Closed, "closed", Note: $"not found in {settings.Budget:N0} schedules for any of {settings.Seeds} seed(s)");
    }

    /// <summary>The entry's scenario with the fix, for the whole budget, under the design's proposal: no bug, every interleaving met.</summary>
    private static CheckResult Fixed(ZooEntry entry, MapcountDesign design, MapcountSettings settings)
    {
        var check = MapcountCheck.ZooFixed(entry.Name);
        if (!Applies(design, check))
        {
            return new CheckResult(check, CheckOutcome.NotApplicable, "n/a");
        }

        var (report, events) = ZooRunner.RunFixed(entry, settings.FixedIterations, settings.Parallel, settings.Seed, proposal: design.Proposal);
        var failure = ZooRunner.FixedFailure(entry, report, events);
        if (report.FirstBug is { } bug)
        {
            return new CheckResult(check, CheckOutcome.Fails, $"BUG in schedule {bug.Iteration}",
                $"{failure}{Environment.NewLine}{Environment.NewLine}{bug.Format(null)}{ReplayCommand.HowToReplay(bug, "--scenario", entry.FixedTestNameUnder(design.Proposal))}");
        }

        return failure is null
            ? new CheckResult(check, CheckOutcome.Passes, $"{report.Iterations:N0} passed")
            : new CheckResult(check, CheckOutcome.Vacuous, "vacuous", Note: failure);
    }

    /// <summary>cow.c's table under the design's scheme, with the AnonExclusive rule: every base-page row, then every large-folio row at each order.</summary>
    private static IEnumerable<CheckResult> CowTable(MapcountDesign design)
    {
        var options = CowSelftestScenarios.Options(CowGeneration.AnonExclusive, mapcount: design.Scheme);
        foreach (var (scenario, _) in CowSelftestScenarios.All)
        {
            yield return Cow(MapcountCheck.CowBasePage(scenario), CowSelftestCells.RunBasePage(scenario, options));
        }

        foreach (var order in MapcountCheck.CowFolioOrders)
        {
            foreach (var memory in CowSelftestScenarios.LargeFolioMemories)
            {
                foreach (var scenario in CowSelftestScenarios.AnonymousScenarios)
                {
                    yield return Cow(MapcountCheck.CowLargeFolio(scenario, memory, order), CowSelftestCells.RunLargeFolio(scenario, memory, options with { AnonFolioOrder = order }));
                }
            }
        }
    }

    private static CheckResult Cow(MapcountCheck check, CowSelftestCellResult cell)
        => !cell.Passed ? new CheckResult(check, CheckOutcome.Fails, cell.ToString(), $"{check}: {cell}")
            : cell.HeldUntilReclaim is { } held ? new CheckResult(check, CheckOutcome.HeldUntilReclaim, "pass, held until reclaim", Note: $"{held} until reclaim")
            : new CheckResult(check, CheckOutcome.Passes, "pass");

    /// <summary>A large-folio race under the tester, with the design's scheme, and its vacuity guard.</summary>
    private static CheckResult Race(FolioRace race, MapcountDesign design, MapcountSettings settings)
    {
        var check = MapcountCheck.Race(race.Name);
        if (!race.AppliesTo(design.Scheme))
        {
            return new CheckResult(check, CheckOutcome.NotApplicable, "n/a");
        }

        var configuration = Configuration.Create().WithTestingIterations(settings.RaceIterations).WithSeed(settings.Seed).WithParallelism(settings.Parallel);
        var result = race.Run(design.Scheme, configuration);
        if (result.Report.FirstBug is { } bug)
        {
            return new CheckResult(check, CheckOutcome.Fails, $"BUG in schedule {bug.Iteration}",
                $"{race.Claim}: {result.Problem}{Environment.NewLine}{Environment.NewLine}{bug.Format(null)}{ReplayCommand.HowToReplay(bug, "--scenario", race.TestName(design.Scheme))}");
        }

        return result.Clean
            ? new CheckResult(check, CheckOutcome.Passes, $"{result.Report.Iterations:N0} passed")
            : new CheckResult(check, CheckOutcome.Vacuous, "vacuous", Note: result.Problem);
    }

    /// <summary>
    /// The design's stress run (the general mix with large folios), its output kept aside: the verdict goes in the table,
    /// the whole output in the reports when it failed.
    /// </summary>
    private static CheckResult StressRun(MapcountDesign design, MapcountSettings settings)
    {
        var original = (Console.Out, Console.Error);
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        Console.SetOut(output);
        Console.SetError(output);
        int code;
        try
        {
            code = StressRunner.Run(settings.StressOptions(design), json: null);
        }
        finally
        {
            Console.SetOut(original.Out);
            Console.SetError(original.Error);
        }

        var text = output.ToString().Replace("\r", Environment.NewLine, StringComparison.Ordinal);
        var verdict = text.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.StartsWith("verdict:", StringComparison.Ordinal)) ?? "no verdict";
        return code switch
        {
            ExitCode.Passed when text.Split('\n').FirstOrDefault(l => l.StartsWith(StressRunner.HeldUntilReclaimLine, StringComparison.Ordinal)) is { } held
                => new CheckResult(MapcountCheck.Stress, CheckOutcome.HeldUntilReclaim, "pass, held until reclaim", Note: held.Trim()),
            ExitCode.Passed => new CheckResult(MapcountCheck.Stress, CheckOutcome.Passes, "pass"),
            ExitCode.Failed => new CheckResult(MapcountCheck.Stress, CheckOutcome.Fails, "FAIL", text.TrimEnd()),
            _ => new CheckResult(MapcountCheck.Stress, CheckOutcome.Vacuous, "vacuous", Note: $"{verdict} (stress exit code {code}; give more --stress-seconds)"),
        };
    }

    private static void PrintTable(MapcountSettings settings, IReadOnlyDictionary<MapcountDesign, IReadOnlyDictionary<MapcountCheck, CheckResult>> results, MapcountExpectations expectations)
    {
        var designs = settings.Designs;
        Console.WriteLine("Zoo cells: the scenario with its knob off (found for k of n seeds, or closed), then with the fix (holds, BUG, vacuous); " +
                          "n/a: the design cannot run the scenario's copy-on-write rule. cow.c cells: rows passed of rows run. **bold**: not what docs/mapcount.md expects.");
        Console.WriteLine();
        Console.WriteLine($"| check | {string.Join(" | ", designs.Select(d => d.Title))} |");
        Console.WriteLine($"|---|{string.Concat(designs.Select(_ => "---|"))}");
        foreach (var entry in BugZooCatalog.All)
        {
            Row($"zoo {entry.Number} {entry.Name}", d => ZooCell(d, results[d], entry, expectations));
        }

        Row($"cow.c base pages ({CowSelftestScenarios.All.Count} rows)", d => CowCell(d, results[d], MapcountCheckKind.CowBasePage, 0, expectations));
        foreach (var order in MapcountCheck.CowFolioOrders)
        {
            var rows = CowSelftestScenarios.LargeFolioMemories.Count * CowSelftestScenarios.AnonymousScenarios.Count;
            Row($"cow.c large folios, order {order} ({rows} rows)", d => CowCell(d, results[d], MapcountCheckKind.CowLargeFolio, order, expectations));
        }

        foreach (var race in FolioRaceScenarios.All)
        {
            Row($"race {race.Name}", d => Mark(d, results[d][MapcountCheck.Race(race.Name)], expectations));
        }

        Row(string.Create(CultureInfo.InvariantCulture, $"stress, {settings.StressSeconds:0.#} s, folios of order {MapcountSettings.StressFolioOrder}"), d => Mark(d, results[d][MapcountCheck.Stress], expectations));

        void Row(string label, Func<MapcountDesign, string> cell) => Console.WriteLine($"| {label} | {string.Join(" | ", designs.Select(cell))} |");
    }

    private static string ZooCell(MapcountDesign design, IReadOnlyDictionary<MapcountCheck, CheckResult> results, ZooEntry entry, MapcountExpectations expectations)
    {
        var buggy = results[MapcountCheck.ZooBuggy(entry.Name)];
        var fixedRun = results[MapcountCheck.ZooFixed(entry.Name)];
        if (buggy.Outcome == CheckOutcome.NotApplicable && fixedRun.Outcome == CheckOutcome.NotApplicable)
        {
            return "n/a";
        }

        var fixedText = fixedRun.Outcome switch
        {
            CheckOutcome.Passes => "holds",
            CheckOutcome.Vacuous => "vacuous",
            CheckOutcome.NotApplicable => "n/a",
            _ => "BUG",
        };
        return $"{Mark(design, buggy, expectations)}; {Mark(design, fixedRun, expectations, fixedText)}";
    }

    private static string CowCell(MapcountDesign design, IReadOnlyDictionary<MapcountCheck, CheckResult> results, MapcountCheckKind kind, int order, MapcountExpectations expectations)
    {
        var rows = results.Values.Where(r => r.Check.Kind == kind && r.Check.Order == order).ToList();
        var failed = rows.Where(r => r.Outcome is not (CheckOutcome.Passes or CheckOutcome.HeldUntilReclaim)).ToList();
        var held = rows.Count(r => r.Outcome == CheckOutcome.HeldUntilReclaim);
        var text = $"{rows.Count - failed.Count}/{rows.Count}{(held > 0 ? $" ({held} held a frame or slot until reclaim)" : "")}";
        if (failed.Count > 0)
        {
            var named = string.Join(", ", failed.Take(RowsNamedInACell).Select(r => $"\"{r.Check.Name}\""));
            text += $"; fails: {named}{(failed.Count > RowsNamedInACell ? $" and {failed.Count - RowsNamedInACell} more" : "")}";
        }

        var differs = rows.Any(r => Differs(design, r, expectations));
        return differs ? $"**{text}**" : text;
    }

    /// <summary>
    /// <paramref name="text"/> (the result's detail when null), in bold when the result is not what the design is
    /// expected to find.
    /// </summary>
    private static string Mark(MapcountDesign design, CheckResult result, MapcountExpectations expectations, string? text = null)
    {
        text ??= result.Detail;
        return Differs(design, result, expectations) ? $"**{text}**" : text;
    }

    /// <summary>Whether <paramref name="result"/> is not what <paramref name="expectations"/> say (a check the design cannot run never is).</summary>
    private static bool Differs(MapcountDesign design, CheckResult result, MapcountExpectations expectations)
        => result.Outcome != CheckOutcome.NotApplicable && result.Outcome != expectations.Expected(design.Name, result.Check);

    private static void PrintReports(IReadOnlyDictionary<MapcountDesign, IReadOnlyDictionary<MapcountCheck, CheckResult>> results, MapcountExpectations expectations)
    {
        var reports = results.SelectMany(r => r.Value.Values.Where(c => c.Report is not null).Select(c => (Design: r.Key, Result: c))).ToList();
        if (reports.Count == 0)
        {
            Console.WriteLine();
            Console.WriteLine("No unsoundness found: no bug with a fix, no cow.c row failed, no race test found a bug, every stress run passed.");
            return;
        }

        Console.WriteLine();
        Console.WriteLine($"Unsoundness found ({reports.Count}), each with the report that shows it:");
        foreach (var (design, result) in reports)
        {
            var expected = expectations.Expected(design.Name, result.Check) == result.Outcome;
            var why = expectations.Why(design.Name, result.Check);
            Console.WriteLine();
            Console.WriteLine($"### {design.Name}: {result.Check}: {(expected ? $"expected ({why ?? "docs/mapcount.md"})" : "NOT expected")}");
            Console.WriteLine();
            Console.WriteLine(result.Report!.TrimEnd());
        }
    }

    private static string Describe(CheckOutcome outcome) => outcome switch
    {
        CheckOutcome.Passes => "a pass",
        CheckOutcome.HeldUntilReclaim => "a pass with a frame or slot held until reclaim",
        CheckOutcome.Fails => "a failure",
        CheckOutcome.Vacuous => "a run that proved nothing",
        CheckOutcome.Found => "its race found",
        CheckOutcome.Closed => "its race closed",
        CheckOutcome.WrongBug => "a bug of another kind",
        _ => "n/a",
    };
}
