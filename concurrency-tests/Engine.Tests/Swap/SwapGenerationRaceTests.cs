using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Swap;

/// <summary>
/// Reclaim racing the machine's other operations in every swap generation (and with a synchronous device that skips
/// the swap cache), under the tester: where no GUP reference is involved the older designs are as correct as the
/// newest, so every value reads back as last stored, nothing leaks and every invariant holds.
/// </summary>
public sealed class SwapGenerationRaceTests
{
    private const int Iterations = 1_000;

    public static TheoryData<CowReuse, SwapReuse, bool> Generations => new()
    {
        { CowReuse.MapCount, SwapReuse.ReuseSwapPage, false },
        { CowReuse.PageCount, SwapReuse.ReuseSwapPage, false },
        { CowReuse.PageCount, SwapReuse.PageCount, false },
        { CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry, false },
        { CowReuse.PageCount, SwapReuse.ReuseSwapPage, true },
        { CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry, true },
    };

    private static Engine.Machine Create(CowReuse rule, SwapReuse swap, bool synchronous)
        => new(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16, CowReuse = rule, SwapReuse = swap, SynchronousSwapDevice = synchronous });

    private static TestReport Run(Action body) => TestingEngine.Run(Configuration.Create().WithTestingIterations(Iterations).WithTraceFiles(false), body);

    /// <summary><see cref="ReclaimRaceTests.ReclaimRacingStoresAndLoadsLosesNothing"/> in each generation.</summary>
    [Theory]
    [MemberData(nameof(Generations))]
    public void ReclaimRacingStoresAndLoadsLosesNothing(CowReuse rule, SwapReuse swap, bool synchronous)
    {
        var seen = new ReclaimRaceTests.SwapSeen();
        AssertClean(Run(ReclaimRaceTests.StoresAndLoadsRacingReclaim(() => Create(rule, swap, synchronous), seen)));
        Assert.True(seen.SwappedIn > 0, "no schedule read a page back from swap");
    }

    /// <summary>
    /// The page is swapped out, fork shares the swap entry, and parent and child store to it at once (each a write
    /// fault on a swap entry the other names too): each sees its own store and nothing of the other's.
    /// </summary>
    [Theory]
    [MemberData(nameof(Generations))]
    public void ParentAndChildWritingASharedSwapEntryStayApart(CowReuse rule, SwapReuse swap, bool synchronous)
    {
        var copied = 0;
        AssertClean(Run(() =>
        {
            using var machine = Create(rule, swap, synchronous);
            var parent = machine.CreateProcess();
            var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(parent, address, 1);
            Specification.Assert(parent.MadvisePageOut(address, Page) == 1, "the page was not paged out");
            var child = parent.Fork();
            var other = ControlledThread.Start(() => machine.Cpus[1].Write(child, address, 3), "child");
            machine.Cpus[0].Write(parent, address, 2);
            other.Join();
            Specification.Assert(machine.Cpus[0].Read(parent, address) == 2, "the parent does not read its own store");
            Specification.Assert(machine.Cpus[1].Read(child, address) == 3, "the child does not read its own store");
            copied += machine.Stats.CowCopies > 0 ? 1 : 0;
            AssertInvariants(machine);
            child.Dispose();
            parent.Dispose();
            AssertInvariants(machine);
        }));
        Assert.True(copied > 0, "no schedule copied the shared page");
    }

    /// <summary>Parent and child read a shared swapped-out page at once while kswapd pages the parent out again.</summary>
    [Theory]
    [MemberData(nameof(Generations))]
    public void TwoSwapInsOfASharedSlotRacingReclaimReadTheData(CowReuse rule, SwapReuse swap, bool synchronous)
    {
        AssertClean(Run(() =>
        {
            using var machine = Create(rule, swap, synchronous);
            var parent = machine.CreateProcess();
            var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(parent, address, 5);
            var child = parent.Fork();
            Specification.Assert(machine.Reclaim(1) == 1, "the shared page was not reclaimed");
            var other = ControlledThread.Start(() => Specification.Assert(machine.Cpus[1].Read(child, address) == 5, "the child read garbage"), "child");
            Specification.Assert(machine.Cpus[0].Read(parent, address) == 5, "the parent read garbage");
            machine.Reclaim(1);
            Specification.Assert(machine.Cpus[0].Read(parent, address) == 5, "the parent read garbage after the second reclaim");
            other.Join();
            AssertInvariants(machine);
            child.Dispose();
            parent.Dispose();
            AssertInvariants(machine);
        }));
    }
}
