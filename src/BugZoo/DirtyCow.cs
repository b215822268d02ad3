using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 10, Dirty COW (CVE-2016-5195): a forced write (ptrace, /proc/pid/mem) to a private read-only mapping of a
/// file races madvise(DONTNEED); before the 2016 fix the retry after the COW break looked the page up as a mere read
/// and wrote the page-cache page.
/// </summary>
public static class DirtyCow
{
    /// <summary>The interleavings a run with the check must meet.</summary>
    public static readonly string[] Events =
    [
        "the poked private copy survived the madvise",
        "the madvise dropped it",
    ];

    /// <summary>
    /// A process maps a file it may only read, privately (a setuid program's text, /etc/passwd); ptrace pokes a word
    /// into it (FOLL_FORCE | FOLL_WRITE) while another thread of the process calls madvise(DONTNEED) on it. The poke
    /// must land in the process's private copy or nowhere; the file's page must keep what the file holds.
    /// </summary>
    public static Action Scenario(bool cowCheck, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, ForceWriteCowCheck = cowCheck }));
        var file = machine.CreateFile("passwd", (long)Page);
        var owner = machine.CreateProcess();
        var shared = owner.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[1].Write(owner, shared, 1);
        machine.Writeback(file);
        var victim = machine.CreateProcess();
        var text = victim.Mmap(Page, Prot.Read, MapFlags.Private, file, 0);

        var madvise = ControlledThread.Start(() => victim.MadviseDontNeed(text, Page), "madvise");
        machine.Cpus[0].PokeData(victim, text, 666);
        madvise.Join();

        probe?.Saw(machine.Cpus[0].Read(victim, text) == 666 ? 0 : 1);
        Specification.Assert(machine.Cpus[1].Read(owner, shared) == 1, ZooBugKind.DirtyCow, $"Dirty COW: the file's page holds {machine.Cpus[1].Read(owner, shared)}: a forced write at 0x{text:x} to a private read-only mapping of it reached the page cache");
        AssertInvariants(machine);
    };
}
