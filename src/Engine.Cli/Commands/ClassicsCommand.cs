using System.CommandLine;
using System.Globalization;
using ClassicBugs;
using Engine.Coyote;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine classics</c>: runs every classic bug's buggy version under each strategy of the chosen scheduler for
/// several seeds (iterations to the first bug), every correct version for the full budget (no bug allowed), and prints
/// the tables recorded in docs/systematic-testing.md (built-in scheduler) and docs/coyote.md (Coyote). Exit code 1 when
/// the scheduler's default portfolio misses a bug within the budget for some seed, or a correct version reports one.
/// </summary>
internal static class ClassicsCommand
{
    public static Command Create()
    {
        var seeds = Inputs.Integer("--seeds", "Seeds per bug and strategy.", 10, 1);
        var budget = Inputs.Integer("--budget", "Iterations allowed to find each bug.", 1000, 1);
        var correct = Inputs.Integer("--correct-iterations", "Iterations each correct version must pass.", 10_000, 1);
        var only = new Option<string?>("--only") { Description = "Run only this example (lost-update, lazy-init, lock-order, aba-stack, torn-read, missed-wakeup)." };
        var scheduling = new SchedulerOptions();
        var command = new Command("classics", "Find the classic bugs with every strategy of our scheduler or Coyote, and check their correct versions. " +
                                              "Exit codes: 0 every claim held; 1 a claim failed (the portfolio missed a bug for some seed, found the wrong one, or a correct version failed); 2 a wrong option.");
        command.Options.Add(seeds);
        command.Options.Add(budget);
        command.Options.Add(correct);
        command.Options.Add(only);
        scheduling.AddTo(command, withStrategy: false);
        command.SetAction(result =>
        {
            var coyote = scheduling.IsCoyote(result);
            var name = result.GetValue(only);
            ClassicBug[] bugs;
            try
            {
                bugs = name is null ? [.. ClassicBugCatalog.All] : [ClassicBugCatalog.Get(name)];
            }
            catch (ArgumentException e)
            {
                throw UsageException.From(e, "--only: ");
            }

            return Run(result.GetValue(seeds), result.GetValue(budget), result.GetValue(correct), bugs, coyote);
        });
        return command;
    }

    /// <summary>The columns of the table: the scheduler's default portfolio first, then its single strategies.</summary>
    public static ISystematicScheduler[] Strategies(bool coyote) => coyote
        ?
        [
            new CoyoteScheduler(CoyoteStrategy.Portfolio),
            new CoyoteScheduler(CoyoteStrategy.Random),
            new CoyoteScheduler(CoyoteStrategy.Prioritization),
            new CoyoteScheduler(CoyoteStrategy.FairPrioritization),
            new CoyoteScheduler(CoyoteStrategy.Probabilistic),
        ]
        :
        [
            BuiltinScheduler.With(Strategy.Portfolio),
            BuiltinScheduler.With(Strategy.Random),
            BuiltinScheduler.With(Strategy.Pct, 3),
            BuiltinScheduler.With(Strategy.Probabilistic, 2),
            BuiltinScheduler.With(Strategy.Dfs, 2),
        ];

    private static int Run(int seeds, int budget, int correctIterations, IReadOnlyList<ClassicBug> bugs, bool coyote)
    {
        var failures = 0;
        var quiet = Configuration.Create().WithScheduleMinimization(false).WithFailureReplay(false).WithTraceFiles(false);
        var strategies = Strategies(coyote);
        var portfolio = strategies[0];

        Console.WriteLine($"{portfolio.Name} scheduler. Buggy versions: iterations to the first bug, median over {seeds} seeds (found/seeds), budget {budget}.");
        Console.WriteLine($"| bug | {string.Join(" | ", strategies.Select(s => s.StrategyName))} |");
        Console.WriteLine($"|---|{string.Concat(Enumerable.Repeat("---|", strategies.Length))}");
        foreach (var bug in bugs)
        {
            var cells = new List<string>();
            foreach (var scheduler in strategies)
            {
                // DFS is deterministic: one run says it all.
                var runs = scheduler.StrategyName.StartsWith("dfs", StringComparison.Ordinal) ? 1 : seeds;
                var found = new List<int>();
                for (var seed = 0; seed < runs; seed++)
                {
                    var report = scheduler.Run(quiet.WithTestingIterations(budget).WithSeed(seed).WithTestName(bug.Name + "-buggy"), bug.Buggy);
                    if (report.FirstBug is { } first)
                    {
                        if (first.Kind != bug.Expected)
                        {
                            Console.Error.WriteLine($"{bug.Name} with {scheduler.StrategyName}, seed {seed}: expected {bug.Expected}, got {first.Kind}: {first.Message}");
                            failures++;
                        }

                        found.Add(report.Iterations);
                    }
                }

                if (ReferenceEquals(scheduler, portfolio) && found.Count < runs)
                {
                    failures++;
                }

                cells.Add(found.Count == 0 ? $"not found ({runs * budget} it.)" : $"{Median(found)} ({found.Count}/{runs})");
            }

            Console.WriteLine($"| {bug.Name} | {string.Join(" | ", cells)} |");
        }

        Console.WriteLine();
        var dfs = coyote ? null : BuiltinScheduler.With(Strategy.Dfs, 2);
        Console.WriteLine($"Correct versions: {correctIterations} iterations with the {portfolio.StrategyName} (seed 0){(dfs is null ? "" : ", and DFS with preemption bound 2")}.");
        Console.WriteLine($"| example | bugs | iterations/s | steps/iteration |{(dfs is null ? "" : " dfs(2) |")}");
        Console.WriteLine($"|---|---|---|---|{(dfs is null ? "" : "---|")}");
        foreach (var bug in bugs)
        {
            var report = portfolio.Run(Configuration.Create().WithTestingIterations(correctIterations).WithTestName(bug.Name + "-correct"), bug.Correct);
            if (report.FirstBug is { } wrong)
            {
                failures++;
                Console.Error.WriteLine(wrong);
            }
            else if (report.StepBoundHits > 0)
            {
                // A schedule cut short proves nothing about the rest of it: the pass would claim more than was run.
                failures++;
                Console.Error.WriteLine($"{bug.Name} correct: {report.StepBoundHits} of {report.Iterations} schedule(s) cut at the step bound explored less than claimed.");
            }

            var dfsCell = "";
            if (dfs is not null)
            {
                var exhaustive = dfs.Run(Configuration.Create().WithTestingIterations(correctIterations).WithTestName(bug.Name + "-correct"), bug.Correct);
                if (exhaustive.FirstBug is { } wrongDfs)
                {
                    failures++;
                    Console.Error.WriteLine(wrongDfs);
                }
                else if (exhaustive.StepBoundHits > 0)
                {
                    failures++;
                    Console.Error.WriteLine($"{bug.Name} correct, dfs: {exhaustive.StepBoundHits} of {exhaustive.Iterations} schedule(s) cut at the step bound explored less than claimed.");
                }

                dfsCell = exhaustive.FirstBug is not null ? " BUG |" : exhaustive.Exhausted ? $" exhausted, {exhaustive.Iterations} schedules |" : $" {exhaustive.Iterations} schedules, not exhausted |";
            }

            Console.WriteLine($"| {bug.Name} | {report.BugsFound} | {report.IterationsPerSecond.ToString("N0", CultureInfo.InvariantCulture)} | " +
                              $"{(double)report.TotalSteps / Math.Max(report.Iterations, 1):0.0} |{dfsCell}");
        }

        Console.WriteLine();
        Console.WriteLine(failures == 0 ? "All buggy versions found by the portfolio for every seed; no correct version failed." : $"{failures} expectation(s) failed.");
        return failures == 0 ? ExitCode.Passed : ExitCode.Failed;
    }

    private static int Median(List<int> values)
    {
        values.Sort();
        return values[values.Count / 2];
    }
}
