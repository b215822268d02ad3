using System.CommandLine;
using System.Text.Json;
using Engine.Cli.Discovery;
using Engine.Coyote;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine replay &lt;trace file | replay string&gt;</c>: runs one recorded schedule again. A trace Coyote wrote is
/// replayed by Coyote (its own reproducible trace) unless <c>--scheduler builtin</c> asks the built-in scheduler to
/// follow the same schedule; a replay string is always the built-in scheduler's.
/// </summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var schedule = new Argument<string>("schedule") { Description = "A JSON trace file written with a bug, or a one-line replay string (sys1:...)." };
        var assembly = new Option<string?>("--assembly", "-a") { Description = "The test assembly (default: the one recorded in the trace; none for zoo and classic scenarios)." };
        var method = new Option<string?>("--method", "-m") { Description = "The test (default: the one recorded in the trace)." };
        var scheduler = new Option<string?>("--scheduler") { Description = "builtin or coyote (default: the scheduler that recorded the trace; builtin for a replay string)." };
        var command = new Command("replay", "Replay a recorded schedule; exit code 1 when the bug reproduces, 3 when the program diverged from the schedule.");
        command.Arguments.Add(schedule);
        command.Options.Add(assembly);
        command.Options.Add(method);
        command.Options.Add(scheduler);
        command.SetAction(result => Run(result.GetValue(schedule)!, result.GetValue(assembly), result.GetValue(method), result.GetValue(scheduler)));
        return command;
    }

    private static int Run(string schedule, string? assemblyPath, string? methodName, string? schedulerName)
    {
        var trace = LoadTrace(schedule);
        var scheduler = schedulerName is null
            ? trace?.Scheduler ?? BuiltinScheduler.SchedulerName
            : SchedulerOptions.ParseSchedulerName(schedulerName);
        if (trace is null && !schedule.StartsWith("sys1:", StringComparison.Ordinal))
        {
            throw new UsageException($"'{schedule}' is neither a trace file nor a replay string (sys1:...).");
        }

        if (scheduler == CoyoteScheduler.SchedulerName && trace?.SchedulerTrace is null)
        {
            throw new UsageException(trace is null
                ? "A replay string is the built-in scheduler's: Coyote replays the JSON trace file it wrote with the bug."
                : "This trace was recorded by the built-in scheduler, which Coyote cannot follow: replay it with --scheduler builtin.");
        }

        var body = FindBody(trace, assemblyPath, methodName);
        var report = scheduler == CoyoteScheduler.SchedulerName
            ? new CoyoteScheduler().Replay(trace!, body)
            : trace is not null ? TestingEngine.Replay(trace, body) : TestingEngine.Replay(schedule, body);
        Console.WriteLine($"Replayed by the {(scheduler == CoyoteScheduler.SchedulerName ? "Coyote" : "built-in")} scheduler.");
        if (report.Divergence is not null)
        {
            Console.WriteLine($"DIVERGED: {report.Divergence}");
        }

        if (report.FirstBug is { } bug)
        {
            Console.WriteLine(report.Divergence is null ? "Reproduced:" : "A bug occurred:");
            Console.WriteLine(bug);
        }
        else if (report.Divergence is null)
        {
            Console.WriteLine("The schedule ran to the end without a bug.");
        }

        return report.Divergence is not null ? 3 : report.FirstBug is not null ? 1 : 0;
    }

    private static ScheduleTrace? LoadTrace(string schedule)
    {
        if (!File.Exists(schedule))
        {
            return null;
        }

        try
        {
            return ScheduleTrace.Load(schedule);
        }
        catch (Exception e) when (e is JsonException or FormatException or IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"'{schedule}' is not a trace this program wrote: {e.Message}");
        }
    }

    private static Action FindBody(ScheduleTrace? trace, string? assemblyPath, string? methodName)
    {
        assemblyPath ??= trace?.TestAssembly;
        methodName ??= trace?.Test;
        if (assemblyPath is null && KnownScenarios.Find(methodName) is { } known)
        {
            return known;
        }

        if (assemblyPath is null || methodName is null)
        {
            throw new UsageException("The test to replay is not known: give --assembly and --method (a replay string does not name its test).");
        }

        var tests = TestDiscovery.Find(assemblyPath, methodName);
        return tests.Count == 1
            ? tests[0].CreateBody()
            : throw new UsageException($"Expected one [SystematicTest] named '{methodName}' in {assemblyPath}; found {tests.Count}.");
    }
}
