using System.CommandLine;
using System.Globalization;
using Engine.Cli.Discovery;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary><c>engine test &lt;assembly&gt;</c>: runs the assembly's [SystematicTest] methods under the tester.</summary>
internal static class TestCommand
{
    public static Command Create()
    {
        var assembly = new Argument<string>("assembly") { Description = "Path of the test assembly (.dll)." };
        var method = new Option<string?>("--method", "-m") { Description = "Run only the test whose full name is, or ends with, this." };
        var common = new CommonOptions();
        var command = new Command("test", "Explore schedules of the [SystematicTest] methods of an assembly; exit code 1 when a bug is found.");
        command.Arguments.Add(assembly);
        command.Options.Add(method);
        common.AddTo(command);
        command.SetAction(result => Run(result.GetValue(assembly)!, result.GetValue(method), common.Read(result)));
        return command;
    }

    private static int Run(string assemblyPath, string? filter, Configuration configuration)
    {
        var tests = TestDiscovery.Find(assemblyPath, filter);
        if (tests.Count == 0)
        {
            Console.Error.WriteLine(filter is null
                ? $"No [SystematicTest] methods in {assemblyPath}."
                : $"No [SystematicTest] method matching '{filter}' in {assemblyPath}.");
            return 2;
        }

        var bugs = 0;
        foreach (var test in tests)
        {
            Console.WriteLine($"{test.Name}: {configuration.TestingIterations} iteration(s), {configuration.Strategy}, seed {configuration.Seed}, parallelism {configuration.Parallelism}");
            var report = TestingEngine.Run(configuration.WithTest(test.AssemblyPath, test.Name), test.CreateBody());
            var speed = report.IterationsPerSecond.ToString("N0", CultureInfo.InvariantCulture);
            if (report.FirstBug is { } bug)
            {
                bugs++;
                Console.WriteLine($"  BUG after {report.Iterations} iteration(s) ({speed} iterations/s){(test.ExpectBug ? " - expected: a known-buggy example" : "")}");
                Console.WriteLine(Indent(bug.ToString()));
            }
            else
            {
                var exhausted = report.Exhausted ? ", bounded space exhausted" : "";
                Console.WriteLine($"  no bug in {report.Iterations} iteration(s) ({speed} iterations/s, {report.TotalSteps} steps{exhausted}){(test.ExpectBug ? " - WARNING: this example is known to be buggy" : "")}");
            }
        }

        Console.WriteLine($"{tests.Count} test(s), {bugs} with a bug.");
        return bugs > 0 ? 1 : 0;
    }

    private static string Indent(string text) => "  " + text.TrimEnd().Replace("\n", "\n  ", StringComparison.Ordinal);
}
