using System.CommandLine;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>Options shared by the commands that explore schedules of a test assembly.</summary>
internal sealed class CommonOptions
{
    public Option<int> Iterations { get; } = new("--iterations", "-i") { Description = "Iterations (schedules) per test.", DefaultValueFactory = _ => 1000 };

    public SchedulerOptions Scheduler { get; } = new();

    public Option<long> Seed { get; } = new("--seed") { Description = "Global seed; iteration i's schedule depends on it and i alone.", DefaultValueFactory = _ => 0 };

    public Option<int> Parallel { get; } = new("--parallel", "-p") { Description = "Iterations run at once, built-in scheduler only (test bodies must not share static state).", DefaultValueFactory = _ => 1 };

    public Option<int> MaxSteps { get; } = new("--max-steps") { Description = "Scheduling decisions allowed per iteration.", DefaultValueFactory = _ => 10_000 };

    public Option<string?> TraceDirectory { get; } = new("--trace-dir") { Description = "Where JSON traces of bugs are written (default: the system temp folder)." };

    public void AddTo(Command command)
    {
        command.Options.Add(Iterations);
        Scheduler.AddTo(command);
        command.Options.Add(Seed);
        command.Options.Add(Parallel);
        command.Options.Add(MaxSteps);
        command.Options.Add(TraceDirectory);
    }

    /// <summary>The settings and the scheduler; a <see cref="UsageException"/> for a value that cannot run.</summary>
    public (Configuration Configuration, ISystematicScheduler Scheduler) Read(ParseResult result)
    {
        var scheduler = Scheduler.Read(result);
        var iterations = result.GetValue(Iterations);
        var parallel = result.GetValue(Parallel);
        var maxSteps = result.GetValue(MaxSteps);
        if (iterations <= 0 || parallel <= 0 || maxSteps <= 0)
        {
            throw new UsageException("--iterations, --parallel and --max-steps must be positive.");
        }

        if (parallel > 1 && scheduler.Name != BuiltinScheduler.SchedulerName)
        {
            throw new UsageException("--parallel applies to the built-in scheduler only: Coyote runs one iteration at a time.");
        }

        var configuration = Configuration.Create()
            .WithTestingIterations(iterations)
            .WithSeed(result.GetValue(Seed))
            .WithParallelism(parallel)
            .WithMaxSteps(maxSteps)
            .WithTraceDirectory(result.GetValue(TraceDirectory));
        return (configuration, scheduler);
    }
}
