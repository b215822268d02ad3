using System.CommandLine;
using System.Globalization;
using ClassicBugs;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine classics</c>: the main job. Runs every classic bug's buggy version under each strategy for several
/// seeds (iterations to the first bug), every correct version for the full budget (no bug allowed), and prints
/// the tables recorded in docs/systematic-testing.md. Exit code 1 when the portfolio misses a bug within the budget
/// for some seed, or a correct version reports one.
/// </summary>
internal static class ClassicsCommand
{
    private static readonly (string Name, Func<Configuration, Configuration> Apply)[] s_strategies =
    [
        ("portfolio", c => c.WithStrategy(Strategy.Portfolio)),
        ("random", c => c.WithStrategy(Strategy.Random)),
        ("pct(3)", c => c.WithPctStrategy(3)),
        ("probabilistic(2)", c => c.WithProbabilisticStrategy(2)),
        ("dfs(2)", c => c.WithDfsStrategy(2)),
    ];

    public static Command Create()
    {
        var seeds = new Option<int>("--seeds") { Description = "Seeds per bug and strategy.", DefaultValueFactory = _ => 10 };
        var budget = new Option<int>("--budget") { Description = "Iterations allowed to find each bug.", DefaultValueFactory = _ => 1000 };
        var correct = new Option<int>("--correct-iterations") { Description = "Iterations each correct version must pass.", DefaultValueFactory = _ => 10_000 };
        var only = new Option<string?>("--only") { Description = "Run only this example (lost-update, lazy-init, lock-order, aba-stack, torn-read, missed-wakeup)." };
        var command = new Command("classics", "Find the classic bugs with every strategy and check their correct versions (the main job).");
        command.Options.Add(seeds);
        command.Options.Add(budget);
        command.Options.Add(correct);
        command.Options.Add(only);
        command.SetAction(result => Run(result.GetValue(seeds), result.GetValue(budget), result.GetValue(correct), result.GetValue(only)));
        return command;
    }

    private static int Run(int seeds, int budget, int correctIterations, string? only)
    {
        var bugs = only is null ? ClassicBugCatalog.All : [ClassicBugCatalog.Get(only)];
        var failures = 0;
        var quiet = Configuration.Create().WithScheduleMinimization(false).WithFailureReplay(false).WithTraceFiles(false);

        Console.WriteLine($"Buggy versions: iterations to the first bug, median over {seeds} seeds (found/seeds), budget {budget}.");
        Console.WriteLine($"| bug | {string.Join(" | ", s_strategies.Select(s => s.Name))} |");
        Console.WriteLine($"|---|{string.Concat(Enumerable.Repeat("---|", s_strategies.Length))}");
        foreach (var bug in bugs)
        {
            var cells = new List<string>();
            foreach (var (name, apply) in s_strategies)
            {
                // DFS is deterministic: one run says it all.
                var runs = name.StartsWith("dfs", StringComparison.Ordinal) ? 1 : seeds;
                var found = new List<int>();
                for (var seed = 0; seed < runs; seed++)
                {
                    var configuration = apply(quiet.WithTestingIterations(budget).WithSeed(seed).WithTestName(bug.Name));
                    var report = TestingEngine.Run(configuration, bug.Buggy);
                    if (report.FirstBug is { } found1)
                    {
                        if (found1.Kind != bug.Expected)
                        {
                            Console.Error.WriteLine($"{bug.Name} with {name}, seed {seed}: expected {bug.Expected}, got {found1.Kind}: {found1.Message}");
                            failures++;
                        }

                        found.Add(report.Iterations);
                    }
                }

                if (name == "portfolio" && found.Count < runs)
                {
                    failures++;
                }

                cells.Add(found.Count == 0 ? $"not found ({runs * budget} it.)" : $"{Median(found)} ({found.Count}/{runs})");
            }

            Console.WriteLine($"| {bug.Name} | {string.Join(" | ", cells)} |");
        }

        Console.WriteLine();
        Console.WriteLine($"Correct versions: {correctIterations} iterations with the portfolio (seed 0), and DFS with preemption bound 2.");
        Console.WriteLine("| example | bugs | iterations/s | steps/iteration | dfs(2) |");
        Console.WriteLine("|---|---|---|---|---|");
        foreach (var bug in bugs)
        {
            var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(correctIterations).WithTestName(bug.Name + "-correct"), bug.Correct);
            var dfs = TestingEngine.Run(Configuration.Create().WithDfsStrategy(2).WithTestingIterations(correctIterations).WithTestName(bug.Name + "-correct-dfs"), bug.Correct);
            if (report.FirstBug is { } wrong)
            {
                failures++;
                Console.Error.WriteLine(wrong);
            }

            if (dfs.FirstBug is { } wrongDfs)
            {
                failures++;
                Console.Error.WriteLine(wrongDfs);
            }

            var dfsCell = dfs.FirstBug is not null ? "BUG" : dfs.Exhausted ? $"exhausted, {dfs.Iterations} schedules" : $"{dfs.Iterations} schedules, not exhausted";
            Console.WriteLine($"| {bug.Name} | {report.BugsFound} | {report.IterationsPerSecond.ToString("N0", CultureInfo.InvariantCulture)} | " +
                              $"{(double)report.TotalSteps / Math.Max(report.Iterations, 1):0.0} | {dfsCell} |");
        }

        Console.WriteLine();
        Console.WriteLine(failures == 0 ? "All buggy versions found by the portfolio for every seed; no correct version failed." : $"{failures} expectation(s) failed.");
        return failures == 0 ? 0 : 1;
    }

    private static int Median(List<int> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
