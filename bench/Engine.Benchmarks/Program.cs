using BenchmarkDotNet.Running;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// Entry point. <c>scheduler [--iterations N] [--repeats N]</c> runs the plain throughput harness
/// (<see cref="SchedulerHarness"/>); anything else goes to BenchmarkDotNet's switcher, e.g.
/// <c>--filter '*Facade*'</c> or <c>--filter '*Scheduler*' --job short</c>.
/// </summary>
public static class Program
{
    /// <summary>Runs the selected mode.</summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);
        if (args.Length > 0 && args[0] == "scheduler")
        {
            // Must come before any Engine.Sync type is touched: SchedulingHook.IsEnabled is read once, at type
            // initialisation. SwitchName is a const, so naming it here does not initialise the type.
            AppContext.SetSwitch(SchedulingHook.SwitchName, true);
            return SchedulerHarness.Run(args[1..]);
        }

        // This process (the BenchmarkDotNet host) never enables the hook; each benchmark class's config decides the
        // environment of the process that actually measures it.
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
