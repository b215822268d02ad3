using System.CommandLine;
using Engine.Cli.Commands;

namespace Engine.Cli;

/// <summary>
/// The <c>engine</c> command tree. <c>Program</c> runs it after switching the scheduling hook on; tests run it
/// in-process (their process has the hook on already).
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
        root.Subcommands.Add(TestCommand.Create());
        root.Subcommands.Add(ReplayCommand.Create());
        return root.Parse(args).Invoke();
    }
}
