using System.Diagnostics;
using System.Globalization;
using Engine.Systematic;
using Microsoft.Coyote.Logging;
using Microsoft.Coyote.Runtime;
using CoyoteConfiguration = Microsoft.Coyote.Configuration;
using CoyoteTestingEngine = Microsoft.Coyote.SystematicTesting.TestingEngine;

namespace Engine.Coyote;

/// <summary>
/// Microsoft Coyote (1.7.11) as a second <see cref="ISystematicScheduler"/>: the same test bodies, explored by Coyote's
/// <c>TestingEngine</c> with Coyote's strategies, reported in the same <see cref="TestReport"/> as the built-in
/// scheduler's, with Coyote's own report and reproducible trace beside the interleaving table.
/// <para>
/// Seeds. Coyote runs iteration i with seed s + i, so runs with seeds 0, 1, 2 would explore the same schedules shifted by
/// one. A user's seed s is therefore given to Coyote as s × <see cref="SeedStride"/> (modulo 2^32): runs of up to
/// 100,003 iterations with different user seeds below 42,949 use no Coyote seed twice.
/// </para>
/// <para>
/// Parallelism. Coyote's testing engine runs its iterations one after another, and its portfolio and prioritization
/// strategies carry state from one iteration to the next, so a run cannot be split across lanes without changing what
/// it explores: <see cref="Configuration.Parallelism"/> must be 1.
/// </para>
/// </summary>
public sealed class CoyoteScheduler : ISystematicScheduler
{
    /// <summary>The name used on the command line and in reports.</summary>
    public const string SchedulerName = "coyote";

    /// <summary>The factor from a user's seed to Coyote's: a prime above any iteration budget the tools use.</summary>
    public const uint SeedStride = 100_003;

    /// <summary>Creates a scheduler that runs <paramref name="strategy"/> with <paramref name="bound"/> (Coyote's default when null).</summary>
    public CoyoteScheduler(CoyoteStrategy strategy = CoyoteStrategy.Portfolio, int? bound = null)
    {
        if (!Enum.IsDefined(strategy))
        {
            throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "Unknown Coyote strategy.");
        }

        if (bound is not null && !CoyoteStrategies.TakesBound(strategy))
        {
            throw new ArgumentException($"Coyote's {CoyoteStrategies.Name(strategy)} strategy takes no bound.", nameof(bound));
        }

        if (bound is <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(bound), bound, "Must be positive.");
        }

        Strategy = strategy;
        Bound = bound;
    }

    /// <summary>The exploration strategy.</summary>
    public CoyoteStrategy Strategy { get; }

    /// <summary>The strategy's bound, or null for Coyote's default.</summary>
    public int? Bound { get; }

    /// <inheritdoc/>
    public string Name => SchedulerName;

    /// <inheritdoc/>
    public string StrategyName => CoyoteStrategies.Describe(Strategy, Bound);

    /// <summary>Coyote's seed for a user's seed: <paramref name="seed"/> × <see cref="SeedStride"/>, modulo 2^32.</summary>
    public static uint CoyoteSeed(long seed) => unchecked((uint)((ulong)seed * SeedStride));

    /// <inheritdoc/>
    public TestReport Run(Configuration configuration, Action body)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        ArgumentNullException.ThrowIfNull(body);
        if (configuration.Parallelism != 1)
        {
            throw new ArgumentException("Coyote runs one iteration at a time: parallelism applies to the built-in scheduler only.", nameof(configuration));
        }

        var coyote = Configure(CoyoteConfiguration.Create(), configuration.MaxSteps, configuration.StepBoundIsBug, configuration.WatchdogTimeout)
            .WithTestingIterations((uint)configuration.TestingIterations)
            .WithRandomGeneratorSeed(CoyoteSeed(configuration.Seed))
            .WithTestIterationsRunToCompletion(!configuration.StopOnFirstBug);
        coyote = WithStrategy(coyote);

        var run = Explore(coyote, configuration.WatchdogTimeout, body);
        var bugs = new List<BugReport>();
        foreach (var failing in run.Failures)
        {
            var bug = ToBugReport(configuration, failing, StrategyName, ReferenceEquals(failing, run.Failures[0]) ? run.ReproducibleTrace : null, run.CoyoteReport);
            if (configuration.ReplayFailures && bug.Trace.SchedulerTrace is not null)
            {
                CheckReplays(bug, body, configuration);
            }

            bug.TraceFile = configuration.WriteTraceFiles ? TraceFiles.TrySave(configuration, bug) : null;
            bugs.Add(bug);
        }

        var seconds = Math.Max(run.Elapsed.TotalSeconds, 1e-9);
        return new TestReport
        {
            Iterations = configuration.StopOnFirstBug && run.Failures.Count > 0 ? run.Failures[0].Number + 1 : run.Executed,
            Bugs = bugs,
            IterationsPerSecond = run.Executed / seconds,
            StepsPerSecond = run.TotalSteps / seconds,
            Elapsed = run.Elapsed,
            TotalSteps = run.TotalSteps,
            MaxStepsInIteration = run.MaxSteps,
            StepBoundHits = run.StepBoundHits,
            Scheduler = SchedulerName,
            Strategy = StrategyName,
            Seed = configuration.Seed,
            ThreadsCreated = run.ThreadsCreated,
        };
    }

    /// <summary>
    /// Replays a trace Coyote recorded (<see cref="ScheduleTrace.SchedulerTrace"/>) through Coyote, checking at every
    /// step that the same thread performs the same operation at the same source line, and that the recorded bug happens
    /// again. A trace of the built-in scheduler has no Coyote trace: replay it with <see cref="BuiltinScheduler"/>.
    /// Throws <see cref="FormatException"/> when Coyote cannot read the trace's schedule (a file edited or cut short).
    /// </summary>
    public TestReport Replay(ScheduleTrace trace, Action body)
    {
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentNullException.ThrowIfNull(body);
        if (trace.SchedulerTrace is null)
        {
            throw new ArgumentException("This schedule was recorded by the built-in scheduler: Coyote can only replay the traces it recorded (replay it with the built-in scheduler).", nameof(trace));
        }

        var settings = Configuration.Create().WithMaxSteps(trace.MaxSteps).WithStepBoundAsBug(trace.HangIsBug);
        var coyote = Configure(CoyoteConfiguration.Create(), trace.MaxSteps, trace.HangIsBug, settings.WatchdogTimeout)
            .WithReproducibleTrace(trace.SchedulerTrace);
        CoyoteRun run;
        try
        {
            run = Explore(coyote, settings.WatchdogTimeout, body);
        }
        catch (System.Text.Json.JsonException e)
        {
            // Coyote parses the reproducible trace when its engine is created, before the body runs: the body's own
            // exceptions never get here (the bridge reports them as bugs).
            throw new FormatException($"Coyote cannot read the trace's schedule: {e.Message}", e);
        }

        var iteration = run.Last;
        var divergence = iteration is null ? "Coyote ran no iteration." : Diverges(trace, iteration);
        var bugs = new List<BugReport>();
        if (iteration?.BugKind is not null)
        {
            bugs.Add(ToBugReport(settings.WithTestName(trace.Test), iteration, "replay", null, run.CoyoteReport));
        }

        return new TestReport
        {
            Iterations = run.Executed,
            Bugs = bugs,
            IterationsPerSecond = run.Executed / Math.Max(run.Elapsed.TotalSeconds, 1e-9),
            StepsPerSecond = run.TotalSteps / Math.Max(run.Elapsed.TotalSeconds, 1e-9),
            Elapsed = run.Elapsed,
            TotalSteps = run.TotalSteps,
            MaxStepsInIteration = run.MaxSteps,
            StepBoundHits = run.StepBoundHits,
            Scheduler = SchedulerName,
            Strategy = "replay",
            Seed = trace.Seed,
            ThreadsCreated = run.ThreadsCreated,
            Divergence = divergence,
        };
    }

    private static CoyoteConfiguration Configure(CoyoteConfiguration coyote, int maxSteps, bool stepBoundIsBug, TimeSpan watchdog) => coyote
        // One bound for every strategy, as the built-in scheduler has: Coyote's one-argument overload would give its
        // fair strategies (random, probabilistic, the portfolio's fair members) ten times as many steps, so that
        // --max-steps 1 cut only the iterations a fair strategy ran past 10.
        .WithMaxSchedulingSteps((uint)maxSteps, (uint)maxSteps)
        .WithFailureOnMaxStepsBoundEnabled(stepBoundIsBug)
        // Everything the engine does concurrently goes through the bridge: anything else is a bug, not a heuristic.
        .WithPartiallyControlledConcurrencyAllowed(false)
        .WithSystematicFuzzingFallbackEnabled(false)
        // Coyote's periodic hang monitor plays the part of the built-in scheduler's watchdog.
        .WithDeadlockTimeout((uint)Math.Clamp(watchdog.TotalMilliseconds, 1, uint.MaxValue))
        .WithVerbosityEnabled(VerbosityLevel.Error)
        .WithConsoleLoggingEnabled(false)
        .WithTelemetryEnabled(false);

    private CoyoteConfiguration WithStrategy(CoyoteConfiguration coyote)
    {
        var bound = (uint)(Bound ?? CoyoteStrategies.DefaultBound(Strategy));
        return Strategy switch
        {
            CoyoteStrategy.Random => coyote.WithRandomStrategy(),
            CoyoteStrategy.Prioritization => coyote.WithPrioritizationStrategy(isFair: false, bound),
            CoyoteStrategy.FairPrioritization => coyote.WithPrioritizationStrategy(isFair: true, bound),
            CoyoteStrategy.Probabilistic => coyote.WithProbabilisticStrategy(bound),
            CoyoteStrategy.DelayBounding => coyote.WithDelayBoundingStrategy(isFair: false, bound),
            CoyoteStrategy.FairDelayBounding => coyote.WithDelayBoundingStrategy(isFair: true, bound),
            _ => coyote,
        };
    }

    /// <summary>Runs Coyote's testing engine over <paramref name="body"/> and gathers what each iteration recorded.</summary>
    private static CoyoteRun Explore(CoyoteConfiguration coyote, TimeSpan watchdog, Action body)
    {
        CoyoteBridge.Install();
        var run = new CoyoteRun();
        CoyoteIteration? current = null;
        using var engine = CoyoteTestingEngine.Create(coyote, () =>
        {
            var iteration = new CoyoteIteration(run.Executed, watchdog);
            current = iteration;
            RuntimeProvider.Current.OnFailure += exception => iteration.OnCoyoteFailure(exception.Message);
            CoyoteBridge.RunBody(iteration, body);
        });

        // Coyote writes its progress to the console unless given a logger; its report is read from the engine instead.
        engine.SetLogger(new TextWriterLogger(TextWriter.Null, VerbosityLevel.None));
        engine.RegisterEndIterationCallBack(_ =>
        {
            if (Interlocked.Exchange(ref current, null) is { } ended)
            {
                ended.AwaitFinished();
                run.Record(ended);
            }
        });

        var stopwatch = Stopwatch.StartNew();
        engine.Run();
        stopwatch.Stop();
        run.Elapsed = stopwatch.Elapsed;
        if (engine.TestReport.InternalErrors.Count > 0)
        {
            throw new InvalidOperationException($"Coyote's testing engine failed: {string.Join(Environment.NewLine, engine.TestReport.InternalErrors)}");
        }

        run.ReproducibleTrace = string.IsNullOrEmpty(engine.ReproducibleTrace) ? null : engine.ReproducibleTrace;
        run.CoyoteReport = engine.TestReport.NumOfFoundBugs > 0 ? DescribeCoyoteReport(engine) : null;
        return run;
    }

    private static string DescribeCoyoteReport(CoyoteTestingEngine engine)
    {
        var report = engine.TestReport;
        var lines = report.BugReports.Select(b => $"[coyote::error] {b}").ToList();
        lines.Add(string.Create(CultureInfo.InvariantCulture,
            $"[coyote::report] {report.NumOfFoundBugs} bug(s) in {report.NumOfExploredFairPaths + report.NumOfExploredUnfairPaths} schedule(s) " +
            $"({report.NumOfExploredFairPaths} fair, {report.NumOfExploredUnfairPaths} unfair); up to {report.MaxControlledOperations} controlled operations, " +
            $"{report.MaxExploredFairSteps + report.MaxExploredUnfairSteps} steps at most."));
        return string.Join(Environment.NewLine, lines);
    }

    private static BugReport ToBugReport(Configuration configuration, CoyoteIteration iteration, string strategy, string? reproducibleTrace, string? coyoteReport)
    {
        var trace = new ScheduleTrace
        {
            Test = configuration.TestName,
            TestAssembly = configuration.TestAssembly,
            Scheduler = SchedulerName,
            SchedulerTrace = reproducibleTrace,
            Strategy = strategy,
            Seed = configuration.Seed,
            Iteration = iteration.Number,
            IterationSeed = CoyoteSeed(configuration.Seed) + (uint)iteration.Number,
            MaxSteps = configuration.MaxSteps,
            HangIsBug = configuration.StepBoundIsBug,
            Settings = configuration.ToSettings(),
            BugKind = iteration.BugKind,
            BugMessage = iteration.BugMessage,
            BugCategory = iteration.BugCategory,
            Threads = iteration.Threads.Select(t => t.Name).ToArray(),
            Steps = iteration.Steps.ToArray(),
            Events = iteration.Events.ToArray(),
        };
        return new BugReport(iteration.BugKind!.Value, iteration.BugMessage!, iteration.Number, $"{SchedulerName} {strategy}", trace, iteration.BugException)
        {
            Category = iteration.BugCategory,
            OriginalPreemptions = iteration.Preemptions,
            SchedulerReport = coyoteReport,
        };
    }

    /// <summary>
    /// The replay checks of a bug Coyote found: Coyote replays its own trace (the bug must recur: otherwise the test has
    /// nondeterminism neither scheduler controls), and the built-in scheduler follows the recorded steps (a cross-check
    /// of the two schedulers' view of the same schedule).
    /// </summary>
    private static void CheckReplays(BugReport bug, Action body, Configuration configuration)
    {
        var own = new CoyoteScheduler().Replay(bug.Trace, body);
        if (own.Divergence is not null || own.FirstBug is null)
        {
            bug.Reproducible = false;
            bug.ReproductionNote = own.Divergence is not null
                ? $"Coyote's replay diverged at {own.Divergence}"
                : "Coyote's replay followed the schedule but no bug occurred";
        }

        var builtin = TestingEngine.Replay(bug.Trace, body, Configuration.Create().WithWatchdogTimeout(configuration.WatchdogTimeout));
        bug.CrossCheck = builtin.Divergence is null && builtin.FirstBug is { } again && again.Kind == bug.Kind
            ? "the built-in scheduler follows the same schedule to the same bug"
            : builtin.Divergence is not null
                ? $"the built-in scheduler does not follow the schedule: {builtin.Divergence}"
                : "the built-in scheduler follows the schedule, but the bug does not recur";
        CoyoteBridge.Install();
    }

    private static string? Diverges(ScheduleTrace trace, CoyoteIteration iteration)
    {
        var expected = trace.Steps;
        var actual = iteration.Steps;
        for (var i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            var e = expected[i];
            var a = actual[i];
            if (e.Kind != a.Kind || e.Thread != a.Thread || e.Value != a.Value || e.Operation != a.Operation || e.File != a.File || e.Line != a.Line)
            {
                return $"step {i}: expected T{e.Thread} to perform {e.Operation} at {e.Location}, but T{a.Thread} performed {a.Operation} at {a.Location}.";
            }
        }

        if (actual.Count != expected.Count)
        {
            return $"the replay took {actual.Count} steps where the schedule has {expected.Count}.";
        }

        if (trace.BugKind is { } kind && (iteration.BugKind != kind || (kind is BugKind.Assertion or BugKind.Exception && iteration.BugMessage != trace.BugMessage) ||
            (trace.BugCategory is not null && iteration.BugCategory != trace.BugCategory)))
        {
            return iteration.BugKind is null
                ? $"the schedule was followed to the end but the expected {kind} did not happen."
                : $"the schedule was followed to the end but ended in a different bug: {iteration.BugKind}: {iteration.BugMessage}";
        }

        return null;
    }

    /// <summary>What one run of Coyote's testing engine recorded.</summary>
    private sealed class CoyoteRun
    {
        public int Executed { get; private set; }

        public long TotalSteps { get; private set; }

        public int MaxSteps { get; private set; }

        public int StepBoundHits { get; private set; }

        public int ThreadsCreated { get; private set; }

        public List<CoyoteIteration> Failures { get; } = [];

        public CoyoteIteration? Last { get; private set; }

        public TimeSpan Elapsed { get; set; }

        public string? ReproducibleTrace { get; set; }

        public string? CoyoteReport { get; set; }

        public void Record(CoyoteIteration iteration)
        {
            Executed++;
            TotalSteps += iteration.Steps.Count;
            MaxSteps = Math.Max(MaxSteps, iteration.Steps.Count);
            ThreadsCreated += iteration.OsThreadsCreated + 1;
            if (iteration.BugKind is not null)
            {
                Failures.Add(iteration);
            }
            else if (iteration.HitStepBound)
            {
                StepBoundHits++;
            }

            Last = iteration;
        }
    }
}
