using Engine;
using Engine.Sync;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 4: GUP-fast must re-read the entry after taking its reference. With broadcast TLB invalidation (arm64's
/// TLBI; <see cref="MachineOptions.BroadcastTlbInvalidate"/>) a zap does not wait for CPUs with interrupts off, so
/// between GUP-fast's lockless read of an entry and its reference the page can be unmapped, freed, and handed to
/// another process. Only the re-read shows that the entry no longer maps it.
/// </summary>
public static class GupFastReuse
{
    /// <summary>What the victim keeps in its page.</summary>
    public const ulong VictimData = 0x1111;

    /// <summary>What the other process stores in the page it gets next.</summary>
    public const ulong Secret = 0x5ec7e7;

    /// <summary>The interleavings a run with the re-check must meet (its entry's <see cref="ZooEntry.Events"/>).</summary>
    public static readonly string[] Events =
    [
        "the re-check dropped a page whose entry had changed",
        "the other process was given the victim's freed frame",
        "a pin held the victim's page (taken before the zap)",
        "a pin held the zero page (taken after the zap)",
    ];

    /// <summary>
    /// The machine is out of memory (a balloon process took every free frame), so the other process's next pages are
    /// exactly the ones the victim's zap frees. CPU 0 pins the victim's pages for reading (GUP-fast first), again and
    /// again, while another thread zaps them with madvise(DONTNEED) and then has the other process store a secret in
    /// fresh pages (fewer of them when a pin kept some of the victim's pages alive). Every pin must read the victim's
    /// data or, taken after the zap, the zero page: never another process's secret.
    /// </summary>
    public static Action Scenario(bool recheck, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 0, BroadcastTlbInvalidate = true, GupFastRecheck = recheck }));
        Process victim, other, balloon;
        ulong address, secretAt;
        var frames = new long[Pages];

        // Set-up on one thread, nothing to interleave with: its ~60 faults are not scheduling points, so they do not
        // dilute the strategies' choices (PCT places its priority changes over the steps of a schedule).
        using (SchedulingHook.EnterQuiescent())
        {
            victim = machine.CreateProcess();
            address = victim.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            for (var i = 0; i < Pages; i++)
            {
                machine.Cpus[1].Write(victim, At(address, i), VictimData);
                frames[i] = PfnAt(machine, victim, At(address, i));
            }

            // The other process's tables exist already: its next write faults need one frame each, for the pages.
            other = machine.CreateProcess();
            secretAt = other.Mmap((Pages + 1) * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[1].Write(other, secretAt, 1);
            secretAt += Page;
            balloon = Balloon(machine);
        }

        var stored = new int[1];
        var done = new int[1];
        var zapper = ControlledThread.Start(() =>
        {
            victim.MadviseDontNeed(address, Pages * Page);
            try
            {
                for (var i = 0; i < Pages; i++)
                {
                    machine.Cpus[1].Write(other, At(secretAt, i), Secret);
                    Volatile.Write(ref stored[0], i + 1);
                }
            }
            catch (OutOfFramesException)
            {
                // Pins kept some of the victim's pages alive: fewer frames were freed for the other process.
            }

            Volatile.Write(ref done[0], 1);
        }, "madvise");

        // The victim keeps pinning its buffer for I/O (O_DIRECT in a loop) while the madvise and the other process run.
        var seen = new bool[2]; // its data, the zero page
        for (var attempt = 0; attempt < Attempts && Volatile.Read(ref done[0]) == 0; attempt++)
        {
            using var pin = machine.Cpus[0].PinUserPages(victim, address, Pages, GupFlags.None);
            for (var i = 0; i < Pages; i++)
            {
                var word = pin.Read(i, 0);
                Specification.Assert(word != Secret, ZooBugKind.GupFastReuse, $"GUP-fast without its re-check: the victim's pin of page {i} (0x{address + ((ulong)i * Page):x}) reads 0x{word:x}, the other process's secret: it took a reference to the frame after the victim's zap freed it and the other process was given it");
                Specification.Assert(word == VictimData || word == 0, ZooBugKind.PinReadsGarbage, $"the victim's pin of page {i} reads 0x{word:x}: neither its data nor the zero page");
                seen[word == VictimData ? 0 : 1] = true;
            }
        }

        zapper.Join();

        // From here on one thread again: checks and tear-down are not scheduling points either.
        using var quiet = SchedulingHook.EnterQuiescent();
        if (probe is not null)
        {
            if (machine.Stats.GupFastRecheckDrops > 0)
            {
                probe.Saw(0);
            }

            var given = Volatile.Read(ref stored[0]);
            if (Enumerable.Range(0, given).Any(i => Array.IndexOf(frames, PfnAt(machine, other, At(secretAt, i))) >= 0))
            {
                probe.Saw(1);
            }

            for (var k = 0; k < seen.Length; k++)
            {
                if (seen[k])
                {
                    probe.Saw(2 + k);
                }
            }
        }

        balloon.Dispose();
        other.Dispose();
        victim.Dispose();
        AssertInvariants(machine);
    };

    /// <summary>
    /// Pages pinned and zapped together. GUP-fast's window between reading an entry and taking its reference is a
    /// step or two, as narrow as the kernel's; each page and each pinning attempt is another chance for it to fall
    /// where the zap and the other process's faults run.
    /// </summary>
    private const int Pages = 4;

    /// <summary>At most this many pinning attempts while the zap runs.</summary>
    private const int Attempts = 16;

    private static ulong At(ulong start, int page) => start + ((ulong)page * Page);

    /// <summary>A process that faults pages in until no frame is left (memory pressure), and gives them back when disposed.</summary>
    private static Process Balloon(Machine machine)
    {
        var balloon = machine.CreateProcess();
        var pages = (int)machine.FreeFrames;
        var region = balloon.Mmap((ulong)pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        try
        {
            for (var i = 0; i < pages; i++)
            {
                machine.Cpus[1].Write(balloon, region + ((ulong)i * Page), 1);
            }
        }
        catch (OutOfFramesException)
        {
            // Some of the frames went to the balloon's page tables.
        }

        Specification.Assert(machine.FreeFrames == 0, ZooBugKind.ScenarioSetup, $"the balloon left {machine.FreeFrames} frame(s) free");
        return balloon;
    }
}
