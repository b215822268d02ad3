using System.CommandLine;
using System.Globalization;
using Engine.Cli.Discovery;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>
/// <c>engine test &lt;assembly&gt;</c>: runs the assembly's [SystematicTest] methods under the chosen scheduler. Exit code
/// 1 when a test finds a bug; otherwise 2 when a test explored nothing (every iteration cut at the step bound), 0 when
/// every test ran its iterations clean.
/// </summary>
internal static class TestCommand
{
    public static Command Create()
    {
        var assembly = new Argument<string>("assembly") { Description = "Path of the test assembly (.dll)." };
        var method = new Option<string?>("--method", "-m") { Description = "Run only the test whose full name is, or ends with, this." };
        var common = new CommonOptions();
        var reporting = new ReportOptions();
        var command = new Command("test", "Explore schedules of the [SystematicTest] methods of an assembly with our scheduler or Coyote. " +
                                          "Exit codes: 0 no bug; 1 a bug was found; 2 a wrong option or assembly, or a test whose every iteration was cut at the step bound.");
        command.Arguments.Add(assembly);
        command.Options.Add(method);
        common.AddTo(command);
        reporting.AddTo(command);
        command.SetAction(result =>
        {
            var (configuration, scheduler) = common.Read(result);
            var tests = TestDiscovery.Find(result.GetValue(assembly)!, result.GetValue(method));
            using var output = reporting.Open(result);
            return Run(tests, result.GetValue(method), configuration, scheduler, output);
        });
        return command;
    }

    private static int Run(IReadOnlyList<DiscoveredTest> tests, string? filter, Configuration configuration, ISystematicScheduler scheduler, ReportOutput output)
    {
        if (tests.Count == 0)
        {
            throw new UsageException(filter is null
                ? "No [SystematicTest] methods in the assembly."
                : $"No [SystematicTest] method matching '{filter}' in the assembly.");
        }

        var bugs = 0;
        var vacuous = new List<string>();
        foreach (var test in tests)
        {
            Console.WriteLine($"{test.Name}: {configuration.TestingIterations} iteration(s), {scheduler.Name} {scheduler.StrategyName}, seed {configuration.Seed}, parallelism {configuration.Parallelism}");
            var report = scheduler.Run(configuration.WithTest(test.AssemblyPath, test.Name), test.CreateBody());
            var speed = report.IterationsPerSecond.ToString("N0", CultureInfo.InvariantCulture);
            if (report.FirstBug is { } bug)
            {
                bugs++;
                Console.WriteLine($"  BUG after {report.Iterations} iteration(s) ({speed} iterations/s){(test.ExpectBug ? " - expected: a known-buggy example" : "")}");
                Console.WriteLine(Indent(output.Format(bug)));
                Console.WriteLine(Indent(ReplayCommand.HowToReplay(bug, "--assembly", test.AssemblyPath, "--method", test.Name)));
                output.WriteChromeTrace(bug);
            }
            else
            {
                var exhausted = report.Exhausted ? ", bounded space exhausted" : "";
                Console.WriteLine($"  no bug in {report.Iterations} iteration(s) ({speed} iterations/s, {report.TotalSteps} steps{exhausted}){(test.ExpectBug ? " - WARNING: this example is known to be buggy" : "")}");
            }

            if (report.StepBoundHits > 0)
            {
                Console.WriteLine($"  {report.StepBoundHits} of {report.Iterations} iteration(s) were cut at the step bound of {configuration.MaxSteps:N0} (--max-steps): each explored less than a whole schedule.");
            }

            if (report.FirstBug is null && report.StepBoundHits >= report.Iterations)
            {
                vacuous.Add(test.Name);
            }
        }

        Console.WriteLine($"{tests.Count} test(s), {bugs} with a bug.");
        if (bugs > 1)
        {
            output.NoteFirstOnly();
        }

        if (bugs > 0)
        {
            return ExitCode.Failed;
        }

        output.NoteIfNothingWritten();

        if (vacuous.Count > 0)
        {
            Console.Error.WriteLine($"Nothing explored: every iteration of {string.Join(", ", vacuous)} was cut at the step bound of {configuration.MaxSteps:N0} before the test ended; raise --max-steps.");
            return ExitCode.Usage;
        }

        return ExitCode.Passed;
    }

    private static string Indent(string text) => "  " + text.TrimEnd().Replace("\n", "\n  ", StringComparison.Ordinal);
}
