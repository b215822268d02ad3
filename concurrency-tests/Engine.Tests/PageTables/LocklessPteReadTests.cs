using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.PageTables;

/// <summary>
/// <c>PtepGetLockless</c> against a writer that replaces a present entry (clear, then set a new one) — section 5 of
/// the protocol reference. Invariant: a lockless read never returns a present entry made of the halves of two
/// different entries. Under the tester, every interleaving of the reader's three loads with the writer's four stores
/// is reachable.
/// </summary>
public sealed class LocklessPteReadTests
{
    private const long Base = 1L << 20;

    // Pfns above 4 GiB: the high half carries pfn bits. These two differ in both halves.
    internal static readonly Pte s_first = Pte.Make(0x100001, write: true);
    internal static readonly Pte s_second = Pte.Make(0x200002, write: true);

    [Fact]
    public void WithTheRetryASplitReadNeverTears()
    {
        var seen = new int[3]; // none, first, second
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10_000),
            Scenario(PteLayout.SplitPae, retry: true, s_first, s_second, seen));

        AssertClean(report);

        // Vacuity guard: the reader met the entry in each of its states, before, between and after the writer's steps.
        Assert.All(seen, count => Assert.True(count > 0, $"states seen (none, first, second): {string.Join(", ", seen)}"));
    }

    [Fact]
    public void WithoutTheRetryATornReadIsFoundForEachOfTenSeeds()
    {
        for (var seed = 0; seed < 10; seed++)
        {
            var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithSeed(seed).WithTraceFiles(false),
                Scenario(PteLayout.SplitPae, retry: false, s_first, s_second, seen: null));
            Assert.True(report.BugsFound == 1, $"seed {seed}: no torn read in 1,000 schedules");
            Assert.StartsWith("Assertion failed in T0 'main': torn PTE read", report.FirstBug!.Message);
        }
    }

    [Fact]
    public void TheRetryAloneMissesATearWhenBothEntriesShareTheirLowHalf()
    {
        // Same low half, different high halves: the re-read of the low half cannot see the change. The kernel is safe
        // only because a present entry never becomes another present entry without a TLB flush in between, which a
        // lockless walker (interrupts off) holds back. This scenario has no flush, so the tester must find the tear.
        var first = Pte.Make(0x100007, write: true);
        var second = Pte.Make(0x200007, write: true);
        Assert.Equal(first.Low, second.Low);

        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false),
            Scenario(PteLayout.SplitPae, retry: true, first, second, seen: null));

        Assert.Equal(1, report.BugsFound);
        Assert.Contains("pfn 0x7 rw", report.FirstBug!.Message);
    }

    [Fact]
    public void ANative64ReadIsAtomicWithOrWithoutTheKnob()
    {
        foreach (var retry in new[] { true, false })
        {
            var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000),
                Scenario(PteLayout.Native64, retry, s_first, s_second, seen: null));
            AssertClean(report);
        }
    }

    internal static Action Scenario(PteLayout layout, bool retry, Pte first, Pte second, int[]? seen) => () =>
    {
        var memory = new PhysicalMemory(Base, 1);
        memory.Zero(Base);
        var access = new PteAccess(memory, new PageTableLocks(Base, 1), new ViolationLog(), layout, retry);
        access.SetPte(Base, 0, first);

        var writer = ControlledThread.Start(() =>
        {
            access.PteClear(Base, 0);
            access.SetPte(Base, 0, second);
        }, "writer");

        var read = access.PtepGetLockless(Base, 0);
        writer.Join();

        if (seen is not null)
        {
            Interlocked.Increment(ref seen[read == first ? 1 : read == second ? 2 : 0]);
        }

        Specification.Assert(!read.IsPresent || read == first || read == second,
            $"torn PTE read: {read} is neither {first} nor {second}");
    };
}
