using Engine;
using Engine.Systematic;
using Engine.Testing;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 3: the <c>SplitPae</c> lockless read on a whole machine. A GUP-fast-style walker (interrupts off,
/// lockless walk, <c>PtepGetLockless</c>) reads a PTE while another thread zaps it with madvise(DONTNEED) and a CPU
/// faults a new page in. The PTE stores are the engine's own (<c>ptep_get_and_clear</c> low half first;
/// <c>set_pte</c> high half first), on frames above 4 GiB, so the high half carries pfn bits. A present entry the
/// walker reads must map one of the two frames that were really mapped there. A non-present result may mix halves
/// (low half already cleared, high half not yet): the kernel documents that, and callers treat it only as "not
/// present" — the fault path re-validates under the PTL, and a swap path must too (<c>pte_unmap_same</c>).
/// </summary>
public static class TornPte
{
    /// <summary>The states the walker must meet in a run with the retry.</summary>
    public static readonly string[] Events =
    [
        "the walker read no entry",
        "it read a non-present entry with a stale high half",
        "it read the first frame's entry",
        "it read the second frame's entry",
    ];

    /// <summary>The scenario; <paramref name="retry"/> is <see cref="MachineOptions.LocklessPteRetry"/>.</summary>
    public static Action Scenario(bool retry, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, PteLayout = PteLayout.SplitPae, LocklessPteRetry = retry }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(process, address, 1);
        var inspector = machine.Inspect();
        var slot = inspector.LocateEntry(process, address);
        var first = inspector.ReadEntry(slot).Pfn;

        var observed = new PageTableEntry[1];
        var walker = ControlledThread.Start(() => observed[0] = inspector.ReadEntryLockless(machine.Cpus[0], process, address), "gup-fast");
        process.MadviseDontNeed(address, Page);
        machine.Cpus[1].Write(process, address, 2);
        var second = inspector.ReadEntry(slot).Pfn;
        walker.Join();

        var entry = observed[0];
        if (entry.IsPresent)
        {
            Specification.Assert(entry.Pfn == first || entry.Pfn == second, ZooBugKind.TornRead,
                $"torn read: the walker saw at 0x{address:x} a present entry for pfn 0x{entry.Pfn:x} (high half 0x{entry.High:x8}, low half 0x{entry.Low:x8}); only 0x{first:x} and 0x{second:x} were mapped");
        }

        probe?.Saw(entry.IsNone ? 0 : !entry.IsPresent ? 1 : entry.Pfn == first ? 2 : 3);
        AssertInvariants(machine);
    };
}
