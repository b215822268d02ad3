using BenchmarkDotNet.Running;
using Engine.Invariants;
using Engine.Sync;

namespace Engine.Benchmarks;

/// <summary>
/// Entry point. <c>scheduler [--iterations N] [--repeats N]</c> runs the plain throughput harness
/// (<see cref="SchedulerHarness"/>); <c>pagefault [--test pf1|pf2|pf3|all] [--duration S] [--warmup S]
/// [--skip-native]</c> runs the page_fault1/2/3 comparison of the engine with the kernel
/// (<see cref="PageFaultHarness"/>, hook off); <c>pagefault-alloc</c> measures what each call of those loops
/// allocates (<see cref="AllocationProbe"/>);
/// <c>fork-alloc</c> what fork and exit allocate for regions of several sizes (<see cref="ForkAllocationProbe"/>);
/// <c>gup-alloc</c> what a pin, a reference and their release allocate per call (<see cref="GupAllocationProbe"/>);
/// anything else goes to BenchmarkDotNet's switcher, e.g.
/// <c>--filter '*Facade*'</c> or <c>--filter '*Scheduler*' --job short</c>.
/// <para>
/// The engine's run-time checks (<see cref="Checks"/>) are off in every mode unless the environment variable
/// <c>ENGINE_CHECKS=1</c> asks for them: benchmarks measure the engine as it runs when nothing is checking it. The
/// harnesses print the setting; <see cref="FaultBenchmarks"/> and <see cref="GupBenchmarks"/> run both settings, as
/// two jobs (<see cref="ChecksConfig"/>).
/// </para>
/// </summary>
public static class Program
{
    /// <summary>Runs the selected mode.</summary>
    public static int Main(string[] args)
    {
        ArgumentNullException.ThrowIfNull(args);

        // Before any engine type is touched (Checks.Enabled is read once); the names are consts, so naming them here
        // initialises nothing. BenchmarkDotNet's child processes get the variable from their job (FacadeConfig).
        if (Environment.GetEnvironmentVariable(Checks.EnvironmentVariable) is null)
        {
            AppContext.SetSwitch(Checks.SwitchName, false);
        }

        if (args.Length > 0 && args[0] == "scheduler")
        {
            // Must come before any Engine.Sync type is touched: SchedulingHook.IsEnabled is read once, at type
            // initialisation. SwitchName is a const, so naming it here does not initialise the type.
            AppContext.SetSwitch(SchedulingHook.SwitchName, true);
            return SchedulerHarness.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "pagefault")
        {
            // No switch is set: the engine is measured with the scheduling hook off.
            return PageFaultHarness.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "pagefault-alloc")
        {
            return AllocationProbe.Run();
        }

        if (args.Length > 0 && args[0] == "fork-alloc")
        {
            return ForkAllocationProbe.Run();
        }

        if (args.Length > 0 && args[0] == "gup-alloc")
        {
            return GupAllocationProbe.Run();
        }

        // This process (the BenchmarkDotNet host) never enables the hook; each benchmark class's config decides the
        // environment of the process that actually measures it.
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
