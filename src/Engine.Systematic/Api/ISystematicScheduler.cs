namespace Engine.Systematic;

/// <summary>
/// A scheduler that explores the schedules of a test body: the built-in one (<see cref="BuiltinScheduler"/>) or
/// Microsoft Coyote (<c>Engine.Coyote.CoyoteScheduler</c>). Both run the same bodies, written against
/// <see cref="ControlledThread"/>, <see cref="Specification"/> and <c>Engine.Sync</c>, and fill the same
/// <see cref="TestReport"/>, so the zoo, the classic bugs and <c>engine test</c> take either.
/// </summary>
public interface ISystematicScheduler
{
    /// <summary>The scheduler's name on the command line: <c>builtin</c> or <c>coyote</c>.</summary>
    string Name { get; }

    /// <summary>
    /// Explores schedules of <paramref name="body"/> with the iterations, seed, step bound, parallelism and trace
    /// settings of <paramref name="configuration"/>. Which exploration strategy runs is the scheduler's own setting
    /// (for the built-in scheduler, <see cref="Configuration.Strategy"/>).
    /// </summary>
    TestReport Run(Configuration configuration, Action body);

    /// <summary>Runs the schedule of <paramref name="trace"/> once more; throws <see cref="ArgumentException"/> when this scheduler cannot follow it.</summary>
    TestReport Replay(ScheduleTrace trace, Action body);
}

/// <summary>The built-in controlled scheduler as an <see cref="ISystematicScheduler"/>: <see cref="TestingEngine"/>.</summary>
public sealed class BuiltinScheduler : ISystematicScheduler
{
    /// <summary>The name used on the command line and in reports.</summary>
    public const string SchedulerName = "builtin";

    /// <summary>The one instance.</summary>
    public static BuiltinScheduler Instance { get; } = new();

    private BuiltinScheduler()
    {
    }

    /// <inheritdoc/>
    public string Name => SchedulerName;

    /// <inheritdoc/>
    public TestReport Run(Configuration configuration, Action body) => TestingEngine.Run(configuration, body);

    /// <inheritdoc/>
    public TestReport Replay(ScheduleTrace trace, Action body) => TestingEngine.Replay(trace, body);
}
