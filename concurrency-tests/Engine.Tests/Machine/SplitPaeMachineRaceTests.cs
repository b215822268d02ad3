using Engine.PageTables;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Machine;

/// <summary>
/// The <c>SplitPae</c> lockless read on a whole machine: a GUP-fast-style walker (interrupts off, lockless walk,
/// <c>PtepGetLockless</c>) reads a PTE while another thread zaps it with madvise(DONTNEED) and a CPU faults a new
/// page in. The PTE stores are the engine's own (<c>ptep_get_and_clear</c> low half first; <c>set_pte</c> high
/// half first), on frames above 4 GiB, so the high half carries pfn bits. Invariant: a present entry the walker
/// reads maps one of the two frames that were really mapped there. A non-present result may mix halves (low half
/// already cleared, high half not yet): the kernel documents that, and callers treat it only as "not present" — the
/// fault path re-validates under the PTL, and the swap path will have to (<c>pte_unmap_same</c>).
/// </summary>
public sealed class SplitPaeMachineRaceTests
{
    [Fact]
    public void WithTheRetryTheWalkerNeverSeesATornEntry()
    {
        var seen = new int[4]; // none, non-present with a stale high half, the first frame, the second frame
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10_000), LocklessReadVersusZapAndRefault(retry: true, seen));
        AssertClean(report);

        // Vacuity guard: the walker met the entry before the zap, in the middle of the clear, between zap and refault,
        // and after the refault.
        Assert.All(seen, count => Assert.True(count > 0, $"states seen (none, half-cleared, first, second): {string.Join(", ", seen)}"));
    }

    [Fact]
    public void WithoutTheRetryATornEntryIsFoundForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(LocklessReadVersusZapAndRefault(retry: false, seen: null), bug =>
        {
            Assert.Contains("torn", bug.Message);
        });
    }

    internal static Action LocklessReadVersusZapAndRefault(bool retry, int[]? seen) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, PteLayout = PteLayout.SplitPae, LocklessPteRetry = retry });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(process, address, 1);
        var table = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
        var index = PageTableSet.Index(address, 1);
        var first = machine.Ptes.PtepGet(table, index).Pfn;

        var observed = new Pte[1];
        var walker = ControlledThread.Start(() =>
        {
            var cpu = machine.Cpus[0];
            cpu.LocalIrqDisable();
            var pteTable = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
            observed[0] = pteTable >= 0 ? machine.Ptes.PtepGetLockless(pteTable, index) : default;
            cpu.LocalIrqEnable();
        }, "gup-fast");
        process.MadviseDontNeed(address, Page);
        machine.Cpus[1].Write(process, address, 2);
        var second = machine.Ptes.PtepGet(table, index).Pfn;
        walker.Join();

        var entry = observed[0];
        if (entry.IsPresent)
        {
            Specification.Assert(entry.Pfn == first || entry.Pfn == second,
                $"torn read: the walker saw a present entry for pfn 0x{entry.Pfn:x} (high half 0x{entry.High:x8}, low half 0x{entry.Low:x8}); only 0x{first:x} and 0x{second:x} were mapped");
        }
        if (seen is not null)
        {
            Interlocked.Increment(ref seen[entry.IsNone ? 0 : !entry.IsPresent ? 1 : entry.Pfn == first ? 2 : 3]);
        }

        AssertInvariants(machine);
    };
}
