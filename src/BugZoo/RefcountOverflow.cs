using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 8: Jann Horn's 2019 attack. References to one page (vmsplice into pipes) drive <c>_refcount</c> round
/// to a value at which the owner's unmap frees the page while the pipes still reference it.
/// </summary>
public static class RefcountOverflow
{
    /// <summary>
    /// The counter's limit in this scenario (<see cref="MachineOptions.RefcountLimit"/>): the real one needs 2^32
    /// references, which no schedule can take one by one.
    /// </summary>
    public const int Limit = 15;

    /// <summary>The event a run with the guard must meet.</summary>
    public static readonly string[] Events =
    [
        "the guard refused a reference",
    ];

    /// <summary>
    /// A thread takes read references to one page until the count has gone all the way round, while the process
    /// unmaps the page. The page must not be freed while references remain: with the guard, a reference that would
    /// take a wrapped (negative) count further is refused.
    /// </summary>
    public static Action Scenario(bool guard, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, RefcountOverflowGuard = guard, RefcountLimit = Limit }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var pipes = new List<PageReferences>();
        var attacker = ControlledThread.Start(() =>
        {
            try
            {
                // Once round the counter: back to where it started, with 2 * (limit + 1) more references than it says.
                for (var i = 0; i < 2 * (Limit + 1); i++)
                {
                    pipes.Add(machine.Cpus[1].GetUserPages(process, address, 1, GupFlags.NoFast));
                }
            }
            catch (InvalidOperationException)
            {
                probe?.Saw(0);
            }
        }, "vmsplice");
        attacker.Join();
        process.Munmap(address, Page);
        foreach (var pipe in pipes)
        {
            var word = pipe.Read(0, 0);
            Specification.Assert(word == 1, ZooBugKind.RefcountOverflow, $"refcount overflow: a pipe reads 0x{word:x} from the page at 0x{address:x}, which was freed while {pipes.Count} references to it remained");
        }

        foreach (var pipe in pipes)
        {
            pipe.Dispose();
        }

        AssertInvariants(machine);
    };
}
