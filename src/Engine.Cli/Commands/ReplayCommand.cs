using System.CommandLine;
using System.Text.Json;
using Engine.Cli.Discovery;
using Engine.Coyote;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine replay &lt;trace file | replay string&gt;</c>: runs one recorded schedule again. A trace Coyote wrote is
/// replayed by Coyote (its own reproducible trace) unless <c>--scheduler builtin</c> asks the built-in scheduler to
/// follow the same schedule; a replay string is always the built-in scheduler's. The test comes from the trace (its
/// assembly and name, or the name of one of this program's scenarios), or from <c>--assembly</c> and <c>--method</c>,
/// or <c>--scenario</c>. Exit code 1 when the bug reproduces, 3 when the program no longer follows the schedule, 0 when
/// it follows it to the end without a bug, 2 for a schedule or test that cannot be read.
/// </summary>
internal static class ReplayCommand
{
    private const string ReplayStringPrefix = "sys1:";

    public static Command Create()
    {
        var schedule = new Argument<string>("schedule") { Description = "A JSON trace file written with a bug, or a one-line replay string (sys1:...)." };
        var assembly = new Option<string?>("--assembly", "-a") { Description = "The test assembly (default: the one recorded in the trace; none for zoo and classic scenarios)." };
        var method = new Option<string?>("--method", "-m") { Description = "The test (default: the one recorded in the trace)." };
        var scenario = new Option<string?>("--scenario")
        {
            Description = "One of this program's scenarios, as zoo and classics name them in traces: <zoo entry>-buggy or -fixed " +
                          "(free-before-flush-buggy), <classic bug>-buggy or -correct (lost-update-buggy). For a replay string, which names no test.",
        };
        var scheduler = new Option<string?>("--scheduler") { Description = "builtin or coyote (default: the scheduler that recorded the trace; builtin for a replay string)." };
        var reporting = new ReportOptions();
        var command = new Command("replay", "Replay a recorded schedule. Exit codes: 0 the schedule ran to its end without a bug; 1 the bug reproduced; " +
                                            "2 a schedule, trace or test that cannot be read; 3 the program diverged from the schedule.");
        command.Arguments.Add(schedule);
        command.Options.Add(assembly);
        command.Options.Add(method);
        command.Options.Add(scenario);
        command.Options.Add(scheduler);
        reporting.AddTo(command);
        command.SetAction(result =>
        {
            using var output = reporting.Open(result);
            return Run(result.GetValue(schedule)!, result.GetValue(assembly), result.GetValue(method), result.GetValue(scenario), result.GetValue(scheduler), output);
        });
        return command;
    }

    /// <summary>
    /// The command lines that replay <paramref name="bug"/>: its trace file, which names its test, and its replay
    /// string followed by <paramref name="testOptions"/>, which name the test the string does not.
    /// </summary>
    public static string HowToReplay(BugReport bug, params string[] testOptions)
    {
        ArgumentNullException.ThrowIfNull(bug);
        var withString = $"engine replay {bug.ReplayString}{string.Concat(testOptions.Select(o => " " + Quote(o)))}";
        return bug.TraceFile is null
            ? $"to replay: {withString}"
            : $"to replay: engine replay {Quote(bug.TraceFile)}{Environment.NewLine}       or: {withString}";
    }

    private static int Run(string schedule, string? assemblyPath, string? methodName, string? scenario, string? schedulerName, ReportOutput output)
    {
        // Everything the replay needs is read and checked before it runs: the schedule, the scheduler, the test.
        var isReplayString = schedule.Trim().StartsWith(ReplayStringPrefix, StringComparison.Ordinal);
        var trace = isReplayString ? null : LoadTrace(schedule);
        if (isReplayString)
        {
            CheckReplayString(schedule);
        }

        var scheduler = schedulerName is null
            ? trace?.Scheduler ?? BuiltinScheduler.SchedulerName
            : SchedulerOptions.ParseSchedulerName(schedulerName);
        if (scheduler == CoyoteScheduler.SchedulerName && trace?.SchedulerTrace is null)
        {
            throw new UsageException(trace is null
                ? "A replay string is the built-in scheduler's: Coyote replays the JSON trace file it wrote with the bug."
                : "This trace was recorded by the built-in scheduler, which Coyote cannot follow: replay it with --scheduler builtin.");
        }

        var body = FindBody(trace, assemblyPath, methodName, scenario);
        TestReport report;
        try
        {
            report = scheduler == CoyoteScheduler.SchedulerName
                ? new CoyoteScheduler().Replay(trace!, body)
                : trace is not null ? TestingEngine.Replay(trace, body) : TestingEngine.Replay(schedule, body);
        }
        catch (FormatException e)
        {
            // Only Coyote's own trace is read this late (by Coyote's engine); everything else was checked above.
            throw new UsageException($"'{Shorten(schedule)}' is not a trace this program wrote: {e.Message}", e);
        }

        Console.WriteLine($"Replayed by the {(scheduler == CoyoteScheduler.SchedulerName ? "Coyote" : "built-in")} scheduler.");
        if (report.Divergence is not null)
        {
            Console.WriteLine($"DIVERGED: {report.Divergence}");
        }

        if (report.FirstBug is { } bug)
        {
            Console.WriteLine(report.Divergence is null ? "Reproduced:" : "A bug occurred:");
            Console.WriteLine(output.Format(bug));
            output.WriteChromeTrace(bug);
        }
        else
        {
            if (report.Divergence is null)
            {
                Console.WriteLine("The schedule ran to the end without a bug.");
            }

            output.NoteIfNothingWritten();
        }

        return report.Divergence is not null ? ExitCode.Diverged : report.FirstBug is not null ? ExitCode.Failed : ExitCode.Passed;
    }

    private static void CheckReplayString(string schedule)
    {
        try
        {
            ReplayString.Decode(schedule);
        }
        catch (FormatException e)
        {
            const string Malformed = "Malformed replay string: ";
            var reason = e.Message.StartsWith(Malformed, StringComparison.Ordinal) ? e.Message[Malformed.Length..] : e.Message;
            throw new UsageException($"'{Shorten(schedule)}' is not a replay string this program wrote: {reason}", e);
        }
    }

    private static ScheduleTrace LoadTrace(string schedule)
    {
        if (string.IsNullOrWhiteSpace(schedule))
        {
            throw new UsageException("replay needs a trace file or a replay string (sys1:...); got an empty string.");
        }

        if (Directory.Exists(schedule))
        {
            throw new UsageException($"'{schedule}' is a folder, not a trace file.");
        }

        if (!File.Exists(schedule))
        {
            throw new UsageException($"'{Shorten(schedule)}' is neither a trace file nor a replay string (sys1:...).");
        }

        try
        {
            return ScheduleTrace.Load(schedule);
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new UsageException($"'{schedule}' is not a trace this program wrote: {e.Message}", e);
        }
    }

    private static Action FindBody(ScheduleTrace? trace, string? assemblyPath, string? methodName, string? scenario)
    {
        if (scenario is not null)
        {
            if (assemblyPath is not null || methodName is not null)
            {
                throw new UsageException("--scenario names one of this program's scenarios: give it without --assembly and --method.");
            }

            return KnownScenarios.Find(scenario)
                ?? throw new UsageException($"--scenario: no scenario '{scenario}'. Known: {string.Join(", ", KnownScenarios.All.Select(s => s.Name))}.");
        }

        assemblyPath ??= trace?.TestAssembly;
        methodName ??= trace?.Test;
        if (assemblyPath is null && KnownScenarios.Find(methodName) is { } known)
        {
            return known;
        }

        if (assemblyPath is null || methodName is null)
        {
            throw new UsageException(trace is null
                ? "A replay string does not name its test: give --scenario (for zoo and classic scenarios) or --assembly and --method."
                : "The trace does not name a test this program can find: give --assembly and --method.");
        }

        var tests = TestDiscovery.Find(assemblyPath, methodName);
        return tests.Count == 1
            ? tests[0].CreateBody()
            : throw new UsageException($"Expected one [SystematicTest] named '{methodName}' in {assemblyPath}; found {tests.Count}.");
    }

    /// <summary>A word as a POSIX shell reads it: quoted when it has spaces or characters the shell would take.</summary>
    private static string Quote(string word) => word.Length > 0 && word.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.' or '/' or ':' or '=' or ',' or '+')
        ? word
        : "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..77] + "...";
}
