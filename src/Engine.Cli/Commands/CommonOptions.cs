using System.CommandLine;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>Options shared by the commands that explore schedules of a test assembly.</summary>
internal sealed class CommonOptions
{
    /// <summary>
    /// The most iterations run at once. Each lane is a driver thread with its own pooled workers, and only one of a
    /// lane's threads runs at a time, so lanes beyond a few per core add threads and memory, not speed.
    /// </summary>
    public const int MaxParallel = 256;

    public Option<int> Iterations { get; } = Inputs.Integer("--iterations", "Iterations (schedules) per test.", 1000, 1, int.MaxValue, "-i");

    public SchedulerOptions Scheduler { get; } = new();

    public Option<long> Seed { get; } = Inputs.Long("--seed", "Global seed; iteration i's schedule depends on it and i alone.", 0);

    public Option<int> Parallel { get; } = Inputs.Integer("--parallel", $"Iterations run at once, 1 to {MaxParallel}, built-in scheduler only (test bodies must not share static state).", 1, 1, MaxParallel, "-p");

    public Option<int> MaxSteps { get; } = Inputs.Integer("--max-steps", "Scheduling decisions allowed per iteration; an iteration that reaches them is cut short, counted and reported.", 10_000, 1);

    public Option<string?> TraceDirectory { get; } = new("--trace-dir") { Description = "Where JSON traces of bugs are written (default: the system temp folder); checked before the run." };

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
        var parallel = result.GetValue(Parallel);
        if (parallel > 1 && scheduler.Name != BuiltinScheduler.SchedulerName)
        {
            throw new UsageException("--parallel applies to the built-in scheduler only: Coyote runs one iteration at a time.");
        }

        var traces = result.GetValue(TraceDirectory) is { } directory ? Inputs.WritableDirectory(directory, "--trace-dir") : null;
        var configuration = Configuration.Create()
            .WithTestingIterations(result.GetValue(Iterations))
            .WithSeed(result.GetValue(Seed))
            .WithParallelism(parallel)
            .WithMaxSteps(result.GetValue(MaxSteps))
            .WithTraceDirectory(traces);
        return (configuration, scheduler);
    }
}
