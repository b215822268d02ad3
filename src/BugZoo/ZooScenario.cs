using Engine;
using Engine.Systematic;
using Engine.Testing;

namespace BugZoo;

/// <summary>
/// What scenarios under the tester share (the zoo's and the tests'): the page size, the invariant check as a tester
/// assertion, a look at the frame an address maps.
/// </summary>
public static class ZooScenario
{
    /// <summary>The page size.</summary>
    public const ulong Page = 4096;

    /// <summary>
    /// Fails the schedule with the invariant checker's report if any invariant is broken; the bug's kind is the name of
    /// the first violation's <see cref="Engine.Invariants.ViolationKind"/> (those recorded while the machine ran come first).
    /// </summary>
    public static void AssertInvariants(Machine machine)
    {
        try
        {
            machine.CheckInvariants();
        }
        catch (InvariantViolationException e)
        {
            Specification.Fail(e.Violations[0].Kind.ToString(), e.Message);
        }
    }

    /// <summary>The frame <paramref name="address"/> of <paramref name="process"/> maps (not the zero page's), or −1.</summary>
    public static long PfnAt(Machine machine, Process process, ulong address) => machine.Inspect().PfnAt(process, address);
}
