using System.Diagnostics;
using Engine.Systematic.Runtime;
using Engine.Systematic.Strategies;

namespace Engine.Systematic.Exploration;

/// <summary>
/// Runs the iterations of a test, on one or more lanes (a lane = a driver thread, a runtime and its pooled
/// workers), then turns each failing iteration into a <see cref="BugReport"/>: replayed once to check it is
/// reproducible, minimised, written as a JSON trace.
/// <para>
/// Determinism across parallelism: iteration i always runs with <c>IterationSeed(seed, i)</c> and, for the
/// portfolio, member i mod n, so its schedule does not depend on which lane runs it. PCT's estimate of an
/// iteration's length is taken from iteration 0, which runs alone before the other lanes start. When the run stops
/// on its first bug, lanes stop taking iterations past the lowest failing one, and the reported bug is the lowest
/// failing iteration: exactly what a sequential run reports.
/// </para>
/// </summary>
internal static class Explorer
{
    private const int DefaultStepsEstimate = 100;

    public static TestReport Run(Configuration configuration, Action body)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(body);

        var lanes = configuration.Strategy == Strategy.Dfs ? 1 : Math.Min(configuration.Parallelism, configuration.TestingIterations);
        var runtimes = new ControlledRuntime[lanes];
        var strategies = new SchedulingStrategy[lanes];
        for (var lane = 0; lane < lanes; lane++)
        {
            runtimes[lane] = new ControlledRuntime(configuration, lane);
            strategies[lane] = CreateStrategy(configuration);
        }

        var state = new RunState(configuration.TestingIterations);
        var stopwatch = Stopwatch.StartNew();
        try
        {
            // Iteration 0 alone: it calibrates PCT's length estimate for every lane.
            var first = RunOne(state, runtimes[0], strategies[0], 0, DefaultStepsEstimate, configuration, body);
            state.StepsEstimate = Math.Max(first?.Steps ?? DefaultStepsEstimate, 16);
            if (lanes == 1)
            {
                RunLane(state, runtimes[0], strategies[0], configuration, body);
            }
            else
            {
                var threads = new Thread[lanes - 1];
                for (var lane = 1; lane < lanes; lane++)
                {
                    var runtime = runtimes[lane];
                    var strategy = strategies[lane];
                    threads[lane - 1] = new Thread(() => RunLane(state, runtime, strategy, configuration, body))
                    {
                        IsBackground = true,
                        Name = $"systematic-lane-{lane}",
                    };
                    threads[lane - 1].Start();
                }

                RunLane(state, runtimes[0], strategies[0], configuration, body);
                foreach (var thread in threads)
                {
                    thread.Join();
                }
            }

            stopwatch.Stop();
            var failing = state.Failures.OrderBy(f => f.Iteration).ToList();
            if (configuration.StopOnFirstBug && failing.Count > 1)
            {
                failing.RemoveRange(1, failing.Count - 1);
            }

            var bugs = failing.Select(f => Report(runtimes[0], configuration, body, f)).ToList();
            var seconds = Math.Max(stopwatch.Elapsed.TotalSeconds, 1e-9);
            return new TestReport
            {
                Iterations = configuration.StopOnFirstBug && failing.Count > 0 ? failing[0].Iteration + 1 : state.Executed,
                Bugs = bugs,
                IterationsPerSecond = state.Executed / seconds,
                StepsPerSecond = state.TotalSteps / seconds,
                Elapsed = stopwatch.Elapsed,
                TotalSteps = state.TotalSteps,
                MaxStepsInIteration = state.MaxSteps,
                StepBoundHits = state.StepBoundHits,
                Exhausted = state.Exhausted,
                Strategy = DescribeStrategy(configuration),
                Seed = configuration.Seed,
                ThreadsCreated = runtimes.Sum(r => r.WorkersCreated),
            };
        }
        finally
        {
            foreach (var runtime in runtimes)
            {
                runtime.Dispose();
            }
        }
    }

    /// <summary>Runs one iteration under a replaying strategy and reports whether it followed the schedule.</summary>
    public static TestReport Replay(Configuration configuration, Action body, IReadOnlyList<TraceStep> decisions, bool checkOperations, BugKind? expectedKind, string? expectedMessage, string? expectedCategory = null)
    {
        using var runtime = new ControlledRuntime(configuration, 0);
        var strategy = new ReplayStrategy(decisions, checkOperations);
        var stopwatch = Stopwatch.StartNew();
        var result = runtime.RunIteration(0, 0, strategy, 0, body, keepTrace: true);
        stopwatch.Stop();
        var divergence = result.Divergence;
        if (divergence is null && strategy.Consumed < strategy.Recorded)
        {
            divergence = result.FoundBug
                ? $"the test failed ({result.BugKind}) after {strategy.Consumed} of the schedule's {strategy.Recorded} decisions."
                : $"the test ended after {strategy.Consumed} of the schedule's {strategy.Recorded} decisions.";
        }

        if (divergence is null && expectedKind is not null &&
            (result.BugKind != expectedKind || (expectedKind is BugKind.Assertion or BugKind.Exception && result.BugMessage != expectedMessage) ||
             (expectedCategory is not null && result.BugCategory != expectedCategory)))
        {
            divergence = result.FoundBug
                ? $"the schedule was followed to the end but ended in a different bug: {result.BugKind}: {result.BugMessage}"
                : $"the schedule was followed to the end but the expected {expectedKind} did not happen.";
        }

        var bugs = new List<BugReport>();
        if (result.FoundBug)
        {
            bugs.Add(new BugReport(result.BugKind!.Value, result.BugMessage!, 0, "replay", ToTrace(configuration, result, "replay"), result.BugException)
            {
                Category = result.BugCategory,
                OriginalPreemptions = result.Preemptions,
            });
        }

        return new TestReport
        {
            Iterations = 1,
            Bugs = bugs,
            IterationsPerSecond = 1 / Math.Max(stopwatch.Elapsed.TotalSeconds, 1e-9),
            StepsPerSecond = result.Steps / Math.Max(stopwatch.Elapsed.TotalSeconds, 1e-9),
            Elapsed = stopwatch.Elapsed,
            TotalSteps = result.Steps,
            MaxStepsInIteration = result.Steps,
            StepBoundHits = result.HitStepBound && !result.FoundBug ? 1 : 0,
            Strategy = "replay",
            Seed = configuration.Seed,
            ThreadsCreated = runtime.WorkersCreated,
            Divergence = divergence,
        };
    }

    private static void RunLane(RunState state, ControlledRuntime runtime, SchedulingStrategy strategy, Configuration configuration, Action body)
    {
        while (true)
        {
            var iteration = Interlocked.Increment(ref state.NextIteration);
            if (iteration >= configuration.TestingIterations || iteration > Volatile.Read(ref state.Limit) || state.Exhausted)
            {
                return;
            }

            if (RunOne(state, runtime, strategy, iteration, state.StepsEstimate, configuration, body) is null)
            {
                return;
            }
        }
    }

    private static IterationResult? RunOne(RunState state, ControlledRuntime runtime, SchedulingStrategy strategy, int iteration, int estimate, Configuration configuration, Action body)
    {
        var seed = SplitMix64.IterationSeed(configuration.Seed, iteration);
        var result = runtime.RunIteration(iteration, seed, strategy, estimate, body, keepTrace: false);
        if (result.Exhausted)
        {
            state.Exhausted = true;
            return null;
        }

        state.Record(result);
        if (result.FoundBug && configuration.StopOnFirstBug)
        {
            state.LowerLimit(iteration);
            return iteration == 0 ? result : null;
        }

        return result;
    }

    private static BugReport Report(ControlledRuntime runtime, Configuration configuration, Action body, IterationResult failing)
    {
        var bug = new BugReport(failing.BugKind!.Value, failing.BugMessage!, failing.Iteration, failing.StrategyName,
            ToTrace(configuration, failing, failing.StrategyName), failing.BugException)
        {
            Category = failing.BugCategory,
            OriginalPreemptions = failing.Preemptions,
        };

        if (configuration.ReplayFailures)
        {
            var replay = runtime.RunIteration(failing.Iteration, failing.Seed, new ReplayStrategy(failing.Trace!, checkOperations: true), 0, body, keepTrace: true);
            if (replay.Divergence is not null || !ScheduleMinimizer.IsSameBug(replay, failing))
            {
                bug.Reproducible = false;
                bug.ReproductionNote = replay.Divergence is not null
                    ? $"replay diverged at {replay.Divergence}"
                    : replay.FoundBug
                        ? $"replay followed the schedule but ended in {replay.BugKind}: {replay.BugMessage}"
                        : "replay followed the schedule but no bug occurred";
            }
        }

        if (bug.Reproducible && configuration.MinimizeSchedules && failing.Preemptions > 0)
        {
            var (best, replays) = ScheduleMinimizer.Minimize(runtime, body, failing, configuration.MinimizationBudget);
            bug.MinimizationReplays = replays;
            if (!ReferenceEquals(best, failing))
            {
                // The guided run recorded its own decisions; confirm they replay on their own before reporting them.
                var check = runtime.RunIteration(failing.Iteration, failing.Seed, new ReplayStrategy(best.Trace!, checkOperations: true), 0, body, keepTrace: false);
                if (check.Divergence is null && ScheduleMinimizer.IsSameBug(check, failing))
                {
                    bug.Trace = ToTrace(configuration, best, failing.StrategyName);
                }
            }
        }

        bug.TraceFile = configuration.WriteTraceFiles ? TraceFiles.TrySave(configuration, bug) : null;
        return bug;
    }

    private static ScheduleTrace ToTrace(Configuration configuration, IterationResult result, string strategyName) => new()
    {
        Test = configuration.TestName,
        TestAssembly = configuration.TestAssembly,
        Strategy = strategyName,
        Seed = configuration.Seed,
        Iteration = result.Iteration,
        IterationSeed = result.Seed,
        MaxSteps = configuration.MaxSteps,
        HangIsBug = configuration.StepBoundIsBug,
        Settings = configuration.ToSettings(),
        BugKind = result.BugKind,
        BugMessage = result.BugMessage,
        BugCategory = result.BugCategory,
        Threads = result.ThreadNames,
        Steps = result.Trace ?? [],
        Events = result.Events ?? [],
    };

    private static SchedulingStrategy CreateStrategy(Configuration configuration) => configuration.Strategy switch
    {
        Strategy.Random => new RandomStrategy(),
        Strategy.Pct => new PctStrategy(configuration.PctChangePoints),
        Strategy.Probabilistic => new ProbabilisticStrategy(configuration.ProbabilisticBound),
        Strategy.Dfs => new DfsStrategy(configuration.DfsPreemptionBound),
        _ => new PortfolioStrategy(),
    };

    private static string DescribeStrategy(Configuration configuration) => configuration.Strategy switch
    {
        Strategy.Pct => $"pct({configuration.PctChangePoints})",
        Strategy.Probabilistic => $"probabilistic({configuration.ProbabilisticBound})",
        Strategy.Dfs => $"dfs({configuration.DfsPreemptionBound})",
        _ => configuration.Strategy.ToString().ToLowerInvariant(),
    };

    /// <summary>Counters shared by the lanes of one run.</summary>
    private sealed class RunState(int iterations)
    {
        private readonly object _gate = new();

        public int NextIteration;
        public int Limit = iterations;
        public volatile bool Exhausted;
        public volatile int StepsEstimate = DefaultStepsEstimate;

        public int Executed { get; private set; }

        public long TotalSteps { get; private set; }

        public int MaxSteps { get; private set; }

        public int StepBoundHits { get; private set; }

        public List<IterationResult> Failures { get; } = [];

        public void Record(IterationResult result)
        {
            lock (_gate)
            {
                Executed++;
                TotalSteps += result.Steps;
                MaxSteps = Math.Max(MaxSteps, result.Steps);
                if (result.HitStepBound && !result.FoundBug)
                {
                    StepBoundHits++;
                }

                if (result.FoundBug)
                {
                    Failures.Add(result);
                }
            }
        }

        public void LowerLimit(int iteration)
        {
            int seen;
            while (iteration < (seen = Volatile.Read(ref Limit)) && Interlocked.CompareExchange(ref Limit, iteration, seen) != seen)
            {
            }
        }
    }
}
