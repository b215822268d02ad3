using Engine.Systematic;

namespace Engine.Tests.Machine;

/// <summary>Helpers for machine scenarios run under the tester.</summary>
internal static class SystematicScenario
{
    public const ulong Page = 4096;

    /// <summary>A machine small enough to build in every iteration.</summary>
    public static Engine.Machine SmallMachine(bool flushBeforeFree = true, bool guardWalks = true, PteLayout layout = PteLayout.Native64)
        => new(new MachineOptions { Cpus = 2, Frames = 64, PteLayout = layout, FlushBeforeFree = flushBeforeFree, GuardWalksInFlight = guardWalks });

    /// <summary>Fails the iteration with the invariant checker's report if any invariant is broken.</summary>
    public static void AssertInvariants(Engine.Machine machine)
    {
        try
        {
            machine.CheckInvariants();
        }
        catch (InvariantViolationException e)
        {
            Specification.Assert(false, e.Message);
        }
    }
}
