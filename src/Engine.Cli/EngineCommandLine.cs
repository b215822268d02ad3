using System.CommandLine;
using Engine.Cli.Commands;

namespace Engine.Cli;

/// <summary>
/// The <c>engine</c> command tree. <c>Program</c> runs it after switching the scheduling hook on; tests run it
/// in-process (their process has the hook on already). Exit codes: 0 success, 1 a bug found or reproduced (or a claim
/// of <c>zoo</c>, <c>classics</c> or <c>compare</c> failed), 2 a mistake in the command line (one line on stderr), 3 a
/// replay that no longer follows its schedule.
/// </summary>
public static class EngineCommandLine
{
    /// <summary>Parses and runs <paramref name="args"/>; returns the exit code.</summary>
    public static int Run(string[] args)
    {
        var root = new RootCommand("engine: a concurrent model of Linux page tables and page refcounts, and a systematic concurrency tester.");
        root.Subcommands.Add(StressCommand.Create());
        root.Subcommands.Add(ClassicsCommand.Create());
        root.Subcommands.Add(ZooCommand.Create());
        root.Subcommands.Add(CompareCommand.Create());
        root.Subcommands.Add(TestCommand.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        var parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                Console.Error.WriteLine(error.Message);
            }

            return 2;
        }

        try
        {
            // Exceptions reach this method (not System.CommandLine's handler, which prints a stack trace): a usage error
            // is one line; anything else is a bug of the engine and keeps its stack trace.
            return parsed.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (UsageException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }
}
