using Engine.Systematic.Exploration;

namespace Engine.Systematic;

/// <summary>
/// Runs test bodies under the controlled scheduler, Coyote-style:
/// <code>
/// var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1000), () =>
/// {
///     var t = ControlledThread.Start(() => Atomic.Increment(ref counter));
///     Atomic.Increment(ref counter);
///     t.Join();
///     Specification.Assert(Atomic.Read(ref counter) == 2, "lost update");
/// });
/// </code>
/// A body must reset any state it shares between iterations at its start: each iteration is a fresh execution.
/// </summary>
public static class TestingEngine
{
    /// <summary>Explores schedules of <paramref name="body"/> as configured and reports what it found.</summary>
    public static TestReport Run(Configuration configuration, Action body) => Explorer.Run(configuration, body);

    /// <summary>
    /// Runs the schedule of a replay string once. The report has the bug if it reproduced, and
    /// <see cref="TestReport.Divergence"/> names the step where the program stopped following the schedule, if it did.
    /// </summary>
    public static TestReport Replay(string replayString, Action body, Configuration? configuration = null)
    {
        var (maxSteps, hangIsBug, decisions) = ReplayString.Decode(replayString);
        var settings = (configuration ?? Configuration.Create()).WithMaxSteps(maxSteps).WithStepBoundAsBug(hangIsBug);
        return Explorer.Replay(settings, body, decisions, checkOperations: false, expectedKind: null, expectedMessage: null);
    }

    /// <summary>
    /// Runs the schedule of a JSON trace once, checking at every step that the same thread performs the same operation
    /// at the same source line, and that the recorded bug happens again.
    /// </summary>
    public static TestReport Replay(ScheduleTrace trace, Action body, Configuration? configuration = null)
    {
        ArgumentNullException.ThrowIfNull(trace);
        var settings = (configuration ?? Configuration.Create()).WithMaxSteps(trace.MaxSteps).WithStepBoundAsBug(trace.HangIsBug);
        if (settings.TestName is null)
        {
            // The replay's own trace names the test the recorded one named.
            settings = settings.WithTestName(trace.Test);
        }

        return Explorer.Replay(settings, body, trace.Steps, checkOperations: true, trace.BugKind, trace.BugMessage, trace.BugCategory);
    }

    /// <summary>Loads a JSON trace file and replays it (see <see cref="Replay(ScheduleTrace, Action, Configuration?)"/>).</summary>
    public static TestReport ReplayFile(string traceFile, Action body, Configuration? configuration = null)
        => Replay(ScheduleTrace.Load(traceFile), body, configuration);
}
