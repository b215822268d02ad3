using System.CommandLine;
using Engine.Cli.Discovery;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary><c>engine replay &lt;trace file | replay string&gt;</c>: runs one recorded schedule again.</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var schedule = new Argument<string>("schedule") { Description = "A JSON trace file written with a bug, or a one-line replay string (sys1:...)." };
        var assembly = new Option<string?>("--assembly", "-a") { Description = "The test assembly (default: the one recorded in the trace)." };
        var method = new Option<string?>("--method", "-m") { Description = "The test (default: the one recorded in the trace)." };
        var command = new Command("replay", "Replay a recorded schedule; exit code 1 when the bug reproduces, 3 when the program diverged from the schedule.");
        command.Arguments.Add(schedule);
        command.Options.Add(assembly);
        command.Options.Add(method);
        command.SetAction(result => Run(result.GetValue(schedule)!, result.GetValue(assembly), result.GetValue(method)));
        return command;
    }

    private static int Run(string schedule, string? assemblyPath, string? methodName)
    {
        var trace = File.Exists(schedule) ? ScheduleTrace.Load(schedule) : null;
        assemblyPath ??= trace?.TestAssembly;
        methodName ??= trace?.Test;
        if (assemblyPath is null || methodName is null)
        {
            Console.Error.WriteLine("The test to replay is not known: give --assembly and --method (a replay string does not name its test).");
            return 2;
        }

        var tests = TestDiscovery.Find(assemblyPath, methodName);
        if (tests.Count != 1)
        {
            Console.Error.WriteLine($"Expected one [SystematicTest] named '{methodName}' in {assemblyPath}; found {tests.Count}.");
            return 2;
        }

        var body = tests[0].CreateBody();
        var report = trace is not null ? TestingEngine.Replay(trace, body) : TestingEngine.Replay(schedule, body);
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
}
