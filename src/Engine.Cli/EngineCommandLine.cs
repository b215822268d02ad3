using System.CommandLine;
using System.CommandLine.Help;
using Engine.Cli.Commands;

namespace Engine.Cli;

/// <summary>
/// The <c>engine</c> command tree. <c>Program</c> runs it after switching the scheduling hook on; tests run it
/// in-process (their process has the hook on already). The exit codes are <see cref="ExitCode"/>'s: a mistake in the
/// input is one line on stderr and <see cref="ExitCode.Usage"/>, found while parsing or by the command's checks before
/// it starts any work; an exception that is not a <see cref="UsageException"/> is a bug of this program and keeps its
/// stack trace (<see cref="ExitCode.InternalError"/>).
/// </summary>
public static class EngineCommandLine
{
    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code.</summary>
    public static int Run(string[] args)
    {
        // A command named engine rather than a RootCommand, which takes the name of the running file (Engine.Cli) for
        // its usage line: the help should show the command a user types.
        var root = new Command("engine",
            "A concurrent model of Linux page tables and page refcounts, and a systematic concurrency tester." +
            Environment.NewLine + ExitCode.Summary)
        {
            Options = { new HelpOption(), new VersionOption() },
        };
        root.Subcommands.Add(StressCommand.Create());
        root.Subcommands.Add(ClassicsCommand.Create());
        root.Subcommands.Add(ZooCommand.Create());
        root.Subcommands.Add(MapcountCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(TestCommand.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            // One line, however many mistakes: the parser's messages may span lines ("Did you mean one of the following?").
            Console.Error.WriteLine(string.Join(" ", parsed.Errors.Select(e => OneLine(e.Message)).Distinct()));
            return ExitCode.Usage;
        }

        try
        {
            // Exceptions reach this method (not System.CommandLine's handler, which prints a stack trace for all of them).
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine(OneLine(e.Message));
            return ExitCode.Usage;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"engine: internal error (a bug of this program, not of its input): {e}");
            return ExitCode.InternalError;
        }
    }

    private static string OneLine(string message)
        => string.Join(" ", message.Split(['\r', '\n'], StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
}
