using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using BugZoo;
using ClassicBugs;
using Engine.Coyote;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine compare</c>: our scheduler and Coyote side by side on the same scenarios in one run (docs/coyote.md's
/// table). Every zoo entry and classic bug, buggy, under each scheduler's default portfolio, its random strategy and its
/// priority strategy (PCT, Coyote's prioritization): schedules to the first bug for each seed and schedules per second.
/// Then every fixed (correct) version under each scheduler's default: schedules passed and schedules per second. Both
/// schedulers run one schedule at a time, so the speeds compare. Exit code 1 when a default portfolio misses a bug for
/// some seed, finds the wrong one, or a fixed version fails (or, for a zoo entry, meets not every named interleaving):
/// the claims both schedulers must hold. A single strategy's miss is a figure, not a failure.
/// </summary>
internal static class CompareCommand
{
    public static Command Create()
    {
        var seeds = Inputs.Integer("--seeds", "Seeds per scenario and strategy (0..n-1).", 10, 1);
        var budget = Inputs.Integer("--budget", "Schedules allowed to find each bug, per seed.", 1000, 1);
        var fixedIterations = Inputs.Integer("--fixed-iterations", "Schedules each fixed or correct version must pass, per scheduler.", 10_000, 1);
        var only = new Option<string?>("--only") { Description = "Run only this scenario: a zoo entry (number or name) or a classic bug's name." };
        var command = new Command("compare", "Our scheduler and Coyote on the same zoo entries and classic bugs, in one run: schedules to the first bug, speed, fixed versions. " +
                                             "Exit codes: 0 every claim held; 1 a claim failed (a portfolio missed a bug or found the wrong one, or a fixed version failed); 2 a wrong option.");
        command.Options.Add(seeds);
        command.Options.Add(budget);
        command.Options.Add(fixedIterations);
        command.Options.Add(only);
        command.SetAction(result =>
        {
            var scenarios = Scenarios(result.GetValue(only));
            return Run(result.GetValue(seeds), result.GetValue(budget), result.GetValue(fixedIterations), scenarios);
        });
        return command;
    }

    /// <summary>The strategies compared: each scheduler's default, its random strategy and its priority-based one.</summary>
    private static readonly ISystematicScheduler[] s_columns =
    [
        BuiltinScheduler.With(Strategy.Portfolio),
        BuiltinScheduler.With(Strategy.Random),
        BuiltinScheduler.With(Strategy.Pct, 3),
        new CoyoteScheduler(CoyoteStrategy.Portfolio),
        new CoyoteScheduler(CoyoteStrategy.Random),
        new CoyoteScheduler(CoyoteStrategy.Prioritization),
    ];

    private static List<Scenario> Scenarios(string? only)
    {
        var all = BugZooCatalog.All.Select(e => new Scenario($"zoo {e.Number} {e.Name}", e.Name, e.BuggyTestName, e.FixedTestName, e.Buggy, e.Fixed, e.Events.Count,
                b => ZooRunner.Mismatch(e, b), (r, events) => ZooRunner.FixedFailure(e, r, events)))
            .Concat(ClassicBugCatalog.All.Select(c => new Scenario($"classic {c.Name}", c.Name, c.Name + "-buggy", c.Name + "-correct", c.Buggy, _ => c.Correct, 0,
                b => b.Kind == c.Expected ? null : $"{c.Name}: expected {c.Expected}, got {b.Kind}: {b.Message}",
                (r, _) => r.FirstBug is { } bug ? $"{c.Name} correct: {bug.Kind}: {bug.Message}"
                    : r.StepBoundHits > 0 ? $"{c.Name} correct: {r.StepBoundHits} schedule(s) cut at the step bound explored less than claimed"
                    : null)))
            .ToList();
        if (only is null)
        {
            return all;
        }

        var chosen = all.Where(s => s.Name == only || s.Title.EndsWith(" " + only, StringComparison.Ordinal) || s.Title.StartsWith($"zoo {only} ", StringComparison.Ordinal)).ToList();
        return chosen.Count > 0
            ? chosen
            : throw new UsageException($"--only: no scenario '{only}'. Known: {string.Join(", ", all.Select(s => s.Name))}.");
    }

    private static int Run(int seeds, int budget, int fixedIterations, IReadOnlyList<Scenario> scenarios)
    {
        var failures = new List<string>();
        var total = Stopwatch.StartNew();
        var quiet = Configuration.Create().WithScheduleMinimization(false).WithFailureReplay(false).WithTraceFiles(false);
        Console.WriteLine($"Buggy versions: schedules up to and including the first bug for seeds 0-{seeds - 1} (budget {budget:N0}; '-' = not found), found/seeds, schedules/s. One schedule at a time.");
        Console.WriteLine($"| scenario | {string.Join(" | ", s_columns.Select(c => $"{c.Name} {c.StrategyName}"))} |");
        Console.WriteLine($"|---|{string.Concat(Enumerable.Repeat("---|", s_columns.Length))}");
        foreach (var scenario in scenarios)
        {
            var cells = new List<string>();
            foreach (var column in s_columns)
            {
                var firsts = new List<string>();
                var found = 0;
                long schedules = 0;
                var elapsed = TimeSpan.Zero;
                for (var seed = 0; seed < seeds; seed++)
                {
                    var report = column.Run(quiet.WithTestingIterations(budget).WithSeed(seed).WithTestName(scenario.BuggyTestName), scenario.Buggy);
                    schedules += report.Iterations;
                    elapsed += report.Elapsed;
                    if (report.FirstBug is { } bug)
                    {
                        found++;
                        firsts.Add(report.Iterations.ToString(CultureInfo.InvariantCulture));
                        if (scenario.Mismatch(bug) is { } mismatch)
                        {
                            failures.Add($"{column.Name} {column.StrategyName}, seed {seed}: {mismatch}");
                        }
                    }
                    else
                    {
                        firsts.Add("-");
                    }
                }

                if (column.StrategyName == "portfolio" && found < seeds)
                {
                    failures.Add($"{scenario.Title}: the {column.Name} scheduler's portfolio missed the bug for {seeds - found} seed(s)");
                }

                cells.Add($"{string.Join(" ", firsts)} ({found}/{seeds}, {schedules / Math.Max(elapsed.TotalSeconds, 1e-9):N0}/s)");
            }

            Console.WriteLine($"| {scenario.Title} | {string.Join(" | ", cells)} |");
        }

        Console.WriteLine();
        Console.WriteLine($"Fixed and correct versions: {fixedIterations:N0} schedules, seed 0, each scheduler's default portfolio, one schedule at a time.");
        Console.WriteLine("| scenario | builtin portfolio | coyote portfolio | coyote / builtin speed |");
        Console.WriteLine("|---|---|---|---|");
        foreach (var scenario in scenarios)
        {
            var cells = new List<string>();
            var speeds = new List<double>();
            foreach (var column in s_columns.Where(c => c.StrategyName == "portfolio"))
            {
                var probe = new ZooProbe(scenario.Events);
                var report = column.Run(Configuration.Create().WithTestingIterations(fixedIterations).WithTestName(scenario.FixedTestName), scenario.Fixed(probe));
                var events = Enumerable.Range(0, scenario.Events).Select(probe.Count).ToArray();
                if (scenario.FixedFailure(report, events) is { } failure)
                {
                    failures.Add($"{column.Name}: {failure}");
                }

                var verdict = report.FirstBug is null ? $"{report.Iterations:N0} clean" : $"BUG in schedule {report.FirstBug.Iteration + 1}";
                var met = events.Length == 0 ? "" : $", interleavings met in {string.Join("/", events.Select(e => e.ToString("N0", CultureInfo.InvariantCulture)))}";
                cells.Add($"{verdict}{met} ({report.IterationsPerSecond:N0}/s)");
                speeds.Add(report.IterationsPerSecond);
            }

            Console.WriteLine($"| {scenario.Title} | {cells[0]} | {cells[1]} | {speeds[1] / Math.Max(speeds[0], 1e-9):0.00} |");
        }

        Console.WriteLine();
        Console.WriteLine($"{scenarios.Count} scenario(s) in {total.Elapsed.TotalMinutes:0.0} min.");
        foreach (var failure in failures)
        {
            Console.Error.WriteLine(failure);
        }

        Console.WriteLine(failures.Count == 0
            ? "Both schedulers' portfolios found every bug for every seed; no fixed version failed under either."
            : $"{failures.Count} claim(s) failed.");
        return failures.Count == 0 ? ExitCode.Passed : ExitCode.Failed;
    }

    /// <summary>One row: a zoo entry or a classic bug, with how its claims are checked.</summary>
    private sealed record Scenario(
        string Title,
        string Name,
        string BuggyTestName,
        string FixedTestName,
        Action Buggy,
        Func<ZooProbe?, Action> Fixed,
        int Events,
        Func<BugReport, string?> Mismatch,
        Func<TestReport, long[], string?> FixedFailure);
}
