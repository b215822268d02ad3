namespace Engine.Systematic;

/// <summary>
/// Settings of a systematic test, built fluently like Coyote's:
/// <c>Configuration.Create().WithTestingIterations(1000).WithStrategy(Strategy.Pct).WithSeed(42)</c>.
/// Immutable: each <c>With</c> returns a new configuration.
/// </summary>
public sealed record Configuration
{
    private Configuration()
    {
    }

    /// <summary>Iterations to run (each one schedule). Default 100.</summary>
    public int TestingIterations { get; private init; } = 100;

    /// <summary>The exploration strategy. Default <see cref="Strategy.Portfolio"/>.</summary>
    public Strategy Strategy { get; private init; } = Strategy.Portfolio;

    /// <summary>The global seed; iteration i runs with a seed derived from it and i alone. Default 0.</summary>
    public long Seed { get; private init; }

    /// <summary>Scheduling decisions allowed in one iteration. Default 10,000.</summary>
    public int MaxSteps { get; private init; } = 10_000;

    /// <summary>Whether an iteration that reaches <see cref="MaxSteps"/> is a bug (<see cref="BugKind.Hang"/>). Default false: it is counted.</summary>
    public bool StepBoundIsBug { get; private init; }

    /// <summary>
    /// Iterations run at once, each on its own set of OS threads. Default 1. A body run in parallel must not touch
    /// static state: two iterations would share it (and the scheduler would see it as uncontrolled).
    /// </summary>
    public int Parallelism { get; private init; } = 1;

    /// <summary>Priority change points of <see cref="Strategy.Pct"/>. Default 3.</summary>
    public int PctChangePoints { get; private init; } = 3;

    /// <summary>The b of <see cref="Strategy.Probabilistic"/> (switch with probability 1/2^b). Default 2.</summary>
    public int ProbabilisticBound { get; private init; } = 2;

    /// <summary>Preemptions allowed on a path of <see cref="Strategy.Dfs"/>. Default 2.</summary>
    public int DfsPreemptionBound { get; private init; } = 2;

    /// <summary>Decisions after which unfair strategies hand over to random choices. Default 2,000.</summary>
    public int FairnessThreshold { get; private init; } = 2_000;

    /// <summary>How long a controlled thread may run without a scheduling point before the watchdog reports it. Default 10 s.</summary>
    public TimeSpan WatchdogTimeout { get; private init; } = TimeSpan.FromSeconds(10);

    /// <summary>Stop at the first failing iteration (default), or run them all and report every bug.</summary>
    public bool StopOnFirstBug { get; private init; } = true;

    /// <summary>Minimise failing schedules to the fewest preemptions before reporting. Default true.</summary>
    public bool MinimizeSchedules { get; private init; } = true;

    /// <summary>Replays tried while minimising one schedule. Default 200.</summary>
    public int MinimizationBudget { get; private init; } = 200;

    /// <summary>Replay each failing schedule once to detect nondeterminism the tester does not control. Default true.</summary>
    public bool ReplayFailures { get; private init; } = true;

    /// <summary>Where JSON traces of bugs are written; null for a folder under the system's temporary directory.</summary>
    public string? TraceDirectory { get; private init; }

    /// <summary>A name for the test, written into traces and file names.</summary>
    public string? TestName { get; private init; }

    /// <summary>The assembly the test body lives in, written into traces so that <c>engine replay</c> can find it.</summary>
    public string? TestAssembly { get; private init; }

    /// <summary>Whether a JSON trace file is written for each bug. Default true.</summary>
    public bool WriteTraceFiles { get; private init; } = true;

    /// <summary>A configuration with every default.</summary>
    public static Configuration Create() => new();

    /// <summary>Sets <see cref="TestingIterations"/>.</summary>
    public Configuration WithTestingIterations(int iterations) => this with { TestingIterations = Positive(iterations, nameof(iterations)) };

    /// <summary>Sets <see cref="Strategy"/>.</summary>
    public Configuration WithStrategy(Strategy strategy) => Enum.IsDefined(strategy)
        ? this with { Strategy = strategy }
        : throw new ArgumentOutOfRangeException(nameof(strategy), strategy, "Unknown strategy.");

    /// <summary>Sets <see cref="Strategy.Pct"/> with <paramref name="changePoints"/> change points.</summary>
    public Configuration WithPctStrategy(int changePoints) => changePoints >= 0
        ? this with { Strategy = Strategy.Pct, PctChangePoints = changePoints }
        : throw new ArgumentOutOfRangeException(nameof(changePoints), changePoints, "Must not be negative.");

    /// <summary>Sets <see cref="Strategy.Probabilistic"/> with switch probability 1/2^<paramref name="bound"/>, <paramref name="bound"/> from 1 to 63 (the bits of one random draw).</summary>
    public Configuration WithProbabilisticStrategy(int bound) => bound is >= 1 and <= 63
        ? this with { Strategy = Strategy.Probabilistic, ProbabilisticBound = bound }
        : throw new ArgumentOutOfRangeException(nameof(bound), bound, "Must be 1 to 63.");

    /// <summary>Sets <see cref="Strategy.Dfs"/> with at most <paramref name="preemptionBound"/> preemptions per path.</summary>
    public Configuration WithDfsStrategy(int preemptionBound) => preemptionBound >= 0
        ? this with { Strategy = Strategy.Dfs, DfsPreemptionBound = preemptionBound }
        : throw new ArgumentOutOfRangeException(nameof(preemptionBound), preemptionBound, "Must not be negative.");

    /// <summary>Sets <see cref="Seed"/>.</summary>
    public Configuration WithSeed(long seed) => this with { Seed = seed };

    /// <summary>Sets <see cref="MaxSteps"/>.</summary>
    public Configuration WithMaxSteps(int maxSteps) => this with { MaxSteps = Positive(maxSteps, nameof(maxSteps)) };

    /// <summary>Sets <see cref="StepBoundIsBug"/>.</summary>
    public Configuration WithStepBoundAsBug(bool isBug = true) => this with { StepBoundIsBug = isBug };

    /// <summary>Sets <see cref="Parallelism"/>.</summary>
    public Configuration WithParallelism(int parallelism) => this with { Parallelism = Positive(parallelism, nameof(parallelism)) };

    /// <summary>Sets <see cref="FairnessThreshold"/>.</summary>
    public Configuration WithFairnessThreshold(int steps) => this with { FairnessThreshold = Positive(steps, nameof(steps)) };

    /// <summary>Sets <see cref="WatchdogTimeout"/>.</summary>
    public Configuration WithWatchdogTimeout(TimeSpan timeout) => timeout > TimeSpan.Zero
        ? this with { WatchdogTimeout = timeout }
        : throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "Must be positive.");

    /// <summary>Sets <see cref="StopOnFirstBug"/>.</summary>
    public Configuration WithStopOnFirstBug(bool stop) => this with { StopOnFirstBug = stop };

    /// <summary>Sets <see cref="MinimizeSchedules"/>.</summary>
    public Configuration WithScheduleMinimization(bool minimize, int budget = 200) => this with { MinimizeSchedules = minimize, MinimizationBudget = Positive(budget, nameof(budget)) };

    /// <summary>Sets <see cref="ReplayFailures"/>.</summary>
    public Configuration WithFailureReplay(bool replay) => this with { ReplayFailures = replay };

    /// <summary>Sets <see cref="TraceDirectory"/>.</summary>
    public Configuration WithTraceDirectory(string? directory) => this with { TraceDirectory = directory };

    /// <summary>Sets <see cref="TestName"/>.</summary>
    public Configuration WithTestName(string? name) => this with { TestName = name };

    /// <summary>Sets <see cref="TestName"/> and <see cref="TestAssembly"/>.</summary>
    public Configuration WithTest(string assemblyPath, string name) => this with { TestAssembly = assemblyPath, TestName = name };

    /// <summary>Sets <see cref="WriteTraceFiles"/>.</summary>
    public Configuration WithTraceFiles(bool write) => this with { WriteTraceFiles = write };

    /// <summary>Every setting by name, as written into traces.</summary>
    public IReadOnlyDictionary<string, string> ToSettings() => new Dictionary<string, string>
    {
        [nameof(TestingIterations)] = TestingIterations.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(Strategy)] = Strategy.ToString(),
        [nameof(Seed)] = Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(MaxSteps)] = MaxSteps.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(StepBoundIsBug)] = StepBoundIsBug.ToString(),
        [nameof(Parallelism)] = Parallelism.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(PctChangePoints)] = PctChangePoints.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(ProbabilisticBound)] = ProbabilisticBound.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(DfsPreemptionBound)] = DfsPreemptionBound.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(FairnessThreshold)] = FairnessThreshold.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(WatchdogTimeout)] = WatchdogTimeout.ToString(),
        [nameof(StopOnFirstBug)] = StopOnFirstBug.ToString(),
        [nameof(MinimizeSchedules)] = MinimizeSchedules.ToString(),
        [nameof(MinimizationBudget)] = MinimizationBudget.ToString(System.Globalization.CultureInfo.InvariantCulture),
        [nameof(ReplayFailures)] = ReplayFailures.ToString(),
    };

    private static int Positive(int value, string name) => value > 0
        ? value
        : throw new ArgumentOutOfRangeException(name, value, "Must be positive.");
}
