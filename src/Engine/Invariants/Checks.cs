namespace Engine.Invariants;

/// <summary>
/// The one switch for the engine's run-time checks: the lock contracts ("enter with the PTL held"), the PTL check on
/// every PTE store and the use-after-free check on every access.
/// <para>
/// <see cref="Enabled"/> is a <c>static readonly</c> field computed once, when the type is first touched, as
/// <c>Engine.Sync.SchedulingHook.IsEnabled</c> is: the tier-1 JIT reads it as a constant, so with checks off every
/// <c>if (Checks.Enabled)</c> and the code behind it disappear from the compiled engine. Checks are on by default (the
/// tests, the stress harness, <c>engine zoo</c>); the benchmarks turn them off with the environment variable
/// <c>ENGINE_CHECKS=0</c> or the runtime switch <c>Engine.Checks</c> = false, and a benchmark that reports both
/// settings runs once with each. A check reads without scheduling points (a lock's holder word, a descriptor's count
/// read plainly), so turning checks on or off never changes which schedules the systematic tester explores.
/// </para>
/// </summary>
public static class Checks
{
    /// <summary>The name of the runtime switch (<see cref="AppContext.SetSwitch"/>, or a <c>RuntimeHostConfigurationOption</c>).</summary>
    public const string SwitchName = "Engine.Checks";

    /// <summary>The environment variable: 0/false turns the checks off, 1/true on; it wins over the switch.</summary>
    public const string EnvironmentVariable = "ENGINE_CHECKS";

    /// <summary>True when the engine checks its lock contracts and accesses as it runs. Fixed for the process.</summary>
    public static readonly bool Enabled = ComputeEnabled();

    private static bool ComputeEnabled()
    {
        var variable = Environment.GetEnvironmentVariable(EnvironmentVariable);
        if (variable is not null)
        {
            return !(variable == "0" || variable.Equals("false", StringComparison.OrdinalIgnoreCase));
        }

        return !AppContext.TryGetSwitch(SwitchName, out var on) || on;
    }
}
