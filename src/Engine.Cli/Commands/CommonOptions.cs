using System.CommandLine;
using Engine.Systematic;

namespace Engine.Cli.Commands;

/// <summary>Options shared by the commands that explore schedules.</summary>
internal sealed class CommonOptions
{
    public Option<int> Iterations { get; } = new("--iterations", "-i") { Description = "Iterations (schedules) per test.", DefaultValueFactory = _ => 1000 };

    public Option<Strategy> Strategy { get; } = new("--strategy", "-s") { Description = "portfolio, random, pct, probabilistic or dfs.", DefaultValueFactory = _ => Systematic.Strategy.Portfolio };

    public Option<long> Seed { get; } = new("--seed") { Description = "Global seed; iteration i's schedule depends on it and i alone.", DefaultValueFactory = _ => 0 };

    public Option<int> Parallel { get; } = new("--parallel", "-p") { Description = "Iterations run at once (test bodies must not share static state).", DefaultValueFactory = _ => 1 };

    public Option<int> MaxSteps { get; } = new("--max-steps") { Description = "Scheduling decisions allowed per iteration.", DefaultValueFactory = _ => 10_000 };

    public Option<int> Bound { get; } = new("--bound") { Description = "PCT change points, probabilistic b, or DFS preemption bound (default 3, 2, 2)." };

    public Option<string?> TraceDirectory { get; } = new("--trace-dir") { Description = "Where JSON traces of bugs are written (default: the system temp folder)." };

    public void AddTo(Command command)
    {
        command.Options.Add(Iterations);
        command.Options.Add(Strategy);
        command.Options.Add(Seed);
        command.Options.Add(Parallel);
        command.Options.Add(MaxSteps);
        command.Options.Add(Bound);
        command.Options.Add(TraceDirectory);
    }

    public Configuration Read(ParseResult result)
    {
        var configuration = Configuration.Create()
            .WithTestingIterations(result.GetValue(Iterations))
            .WithStrategy(result.GetValue(Strategy))
            .WithSeed(result.GetValue(Seed))
            .WithParallelism(result.GetValue(Parallel))
            .WithMaxSteps(result.GetValue(MaxSteps))
            .WithTraceDirectory(result.GetValue(TraceDirectory));
        if (result.GetResult(Bound) is not null)
        {
            var bound = result.GetValue(Bound);
            configuration = configuration.Strategy switch
            {
                Systematic.Strategy.Pct => configuration.WithPctStrategy(bound),
                Systematic.Strategy.Probabilistic => configuration.WithProbabilisticStrategy(bound),
                Systematic.Strategy.Dfs => configuration.WithDfsStrategy(bound),
                _ => throw new ArgumentException("--bound applies to pct, probabilistic and dfs only."),
            };
        }

        return configuration;
    }
}
