using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>
/// The single switch between real execution and systematic testing.
/// <para>
/// <see cref="IsEnabled"/> is a <c>static readonly</c> field computed once, when the type is first touched. The
/// tier-1 JIT treats an initialised static readonly <see cref="bool"/> as a constant, so in a process that never
/// enables systematic testing every <c>if (SchedulingHook.IsEnabled)</c> in the primitives is removed and each
/// facade call compiles to the bare <see cref="Interlocked"/>/<see cref="Volatile"/> instruction
/// (docs/zero-cost.md shows the disassembly and the benchmark).
/// </para>
/// <para>
/// It is enabled by the environment variable <c>ENGINE_SYSTEMATIC=1</c> or by the runtime switch
/// <c>Engine.Sync.Systematic</c> (a <c>RuntimeHostConfigurationOption</c> in a test project, or
/// <see cref="AppContext.SetSwitch"/> before the first use of any primitive). Once enabled, each primitive calls the
/// installed <see cref="ISchedulingHook"/>, which costs a thread-static lookup when no test is running.
/// </para>
/// </summary>
public static class SchedulingHook
{
    /// <summary>The name of the runtime switch that enables the hook.</summary>
    public const string SwitchName = "Engine.Sync.Systematic";

    /// <summary>The environment variable that enables (1/true) or disables (0/false) the hook.</summary>
    public const string EnvironmentVariable = "ENGINE_SYSTEMATIC";

    /// <summary>True when primitives report their operations to the installed hook. Fixed for the process.</summary>
    public static readonly bool IsEnabled = ComputeEnabled();

    private static ISchedulingHook? s_hook;

    [ThreadStatic]
    private static int t_quiescent;

    /// <summary>The installed hook, or null (also inside <see cref="EnterQuiescent"/> on this thread).</summary>
    public static ISchedulingHook? Current => t_quiescent > 0 ? null : Volatile.Read(ref s_hook);

    /// <summary>
    /// Until the returned scope is disposed, this thread's primitives are not scheduling points: for oracles that
    /// run at quiescence (the machine's invariant checker), whose thousands of reads would otherwise be thousands of
    /// decisions, none of which can interleave with anything. Only for code that never waits for another thread:
    /// inside the scope a wait spins for real.
    /// </summary>
    public static QuiescentScope EnterQuiescent()
    {
        t_quiescent++;
        return default;
    }

    /// <summary>Ends an <see cref="EnterQuiescent"/> scope.</summary>
    public readonly struct QuiescentScope : IDisposable
    {
        /// <summary>Leaves the scope.</summary>
        public void Dispose() => t_quiescent--;
    }

    /// <summary>
    /// Installs the scheduler's hook: from now on every primitive reports to it. A process may use several schedulers
    /// (the built-in one and the Coyote backend), one at a time: each installs its own hook when a run starts, which
    /// replaces the other's. Throws when the hook is disabled for this process, because then no primitive would ever
    /// call it and a controlled test would silently run uncontrolled.
    /// </summary>
    public static void Install(ISchedulingHook hook)
    {
        ArgumentNullException.ThrowIfNull(hook);
        if (!IsEnabled)
        {
            throw new InvalidOperationException(
                $"Engine.Sync's scheduling hook is disabled in this process: a primitive was used before systematic " +
                $"testing was enabled. Set the runtime switch '{SwitchName}' (in the test project: " +
                $"<RuntimeHostConfigurationOption Include=\"{SwitchName}\" Value=\"true\" />) or the environment " +
                $"variable {EnvironmentVariable}=1.");
        }

        Volatile.Write(ref s_hook, hook);
    }

    /// <summary>Reports a scheduling point to the hook. The slow path of every primitive; never inlined.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static void Point(OperationKind kind, string file, int line) => Current?.OnSchedulingPoint(kind, file, line);

    private static bool ComputeEnabled()
    {
        var env = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (!string.IsNullOrEmpty(env))
        {
            return env == "1" || env.Equals("true", StringComparison.OrdinalIgnoreCase);
        }

        return AppContext.TryGetSwitch(SwitchName, out var enabled) && enabled;
    }
}
