using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Swap;

/// <summary>
/// Reclaim racing with the machine's other operations, under the systematic tester: whatever the interleaving, every
/// value reads back as last stored, nothing leaks, and the swap invariants hold at the end.
/// </summary>
public sealed class ReclaimRaceTests
{
    private const int Iterations = 2_000;

    private static Engine.Machine Swapping() => new(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16 });

    private static TestReport Run(Action body) => TestingEngine.Run(Configuration.Create().WithTestingIterations(Iterations).WithTraceFiles(false), body);

    /// <summary>A kswapd thread reclaims while a CPU stores and loads: the loads see the stores, through swap or not.</summary>
    [Fact]
    public void ReclaimRacingStoresAndLoadsLosesNothing()
    {
        var seen = new SwapSeen();
        AssertClean(Run(StoresAndLoadsRacingReclaim(Swapping, seen)));
        Assert.True(seen.SwappedOut > 0, "no schedule swapped a page out");
    }

    /// <summary>Schedules of a scenario that swapped a page out, and that read one back in.</summary>
    internal sealed class SwapSeen
    {
        public int SwappedOut;
        public int SwappedIn;
    }

    /// <summary>
    /// The body of <see cref="ReclaimRacingStoresAndLoadsLosesNothing"/> on the machine <paramref name="create"/>
    /// builds (other swap generations use it too): kswapd reclaims two pages while a CPU stores to one and loads the
    /// other; every load sees the last store, and nothing leaks. Counts into <paramref name="seen"/>.
    /// </summary>
    internal static Action StoresAndLoadsRacingReclaim(Func<Engine.Machine> create, SwapSeen seen) => () =>
    {
        using var machine = create();
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        machine.Cpus[0].Write(process, address + Page, 2);
        var kswapd = ControlledThread.Start(() => machine.Reclaim(2), "kswapd");
        machine.Cpus[0].Write(process, address, 3);
        Specification.Assert(machine.Cpus[0].Read(process, address + Page) == 2, "page 1 lost its data");
        kswapd.Join();
        Specification.Assert(machine.Cpus[1].Read(process, address) == 3, "page 0 lost the store made during reclaim");
        Specification.Assert(machine.Cpus[1].Read(process, address + Page) == 2, "page 1 lost its data");
        seen.SwappedOut += machine.Stats.SwapOuts > 0 ? 1 : 0;
        seen.SwappedIn += machine.Stats.SwapIns > 0 ? 1 : 0;
        AssertInvariants(machine);
        process.Dispose();
        AssertInvariants(machine);
    };

    /// <summary>Reclaim racing fork: parent and child each see the data as it was at fork, then their own stores.</summary>
    [Fact]
    public void ReclaimRacingForkKeepsParentAndChildApart()
    {
        var swapped = 0;
        AssertClean(Run(() =>
        {
            using var machine = Swapping();
            var parent = machine.CreateProcess();
            var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(parent, address, 1);
            var kswapd = ControlledThread.Start(() => machine.Reclaim(1), "kswapd");
            var child = parent.Fork();
            machine.Cpus[0].Write(parent, address, 2);
            kswapd.Join();
            Specification.Assert(machine.Cpus[1].Read(child, address) == 1, "the child sees the parent's store after fork");
            Specification.Assert(machine.Cpus[0].Read(parent, address) == 2, "the parent lost its store");
            swapped += machine.Stats.SwapOuts > 0 ? 1 : 0;
            AssertInvariants(machine);
            child.Dispose();
            parent.Dispose();
            AssertInvariants(machine);
        }));
        Assert.True(swapped > 0, "no schedule swapped a page out");
    }

    /// <summary>Two processes sharing a swapped-out page fault it in at once, while the page's slot is reclaimed again.</summary>
    [Fact]
    public void TwoSwapInsOfASharedSlotMapOnePage()
    {
        var hits = 0;
        AssertClean(Run(() =>
        {
            using var machine = Swapping();
            var parent = machine.CreateProcess();
            var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(parent, address, 5);
            var child = parent.Fork();
            Specification.Assert(machine.Reclaim(1) == 1, "the shared page was not reclaimed");
            var other = ControlledThread.Start(() => Specification.Assert(machine.Cpus[1].Read(child, address) == 5, "the child read garbage"), "child");
            Specification.Assert(machine.Cpus[0].Read(parent, address) == 5, "the parent read garbage");
            other.Join();
            hits += machine.Stats.SwapCacheHits > 0 ? 1 : 0;
            Specification.Assert(machine.Stats.SwapIns == 1, $"the slot was read {machine.Stats.SwapIns} times");
            AssertInvariants(machine);
            child.Dispose();
            parent.Dispose();
            AssertInvariants(machine);
        }));
        Assert.True(hits > 0, "no schedule found the page in the swap cache");
    }

    /// <summary>
    /// A long-term write pin racing reclaim: the page is pinned where the process maps it, so what the device writes
    /// through the pin the process reads, whether reclaim came first (the pin faults the page back in) or second (it
    /// keeps the maybe-pinned page).
    /// </summary>
    [Fact]
    public void APinRacingReclaimStaysCoherentWithTheProcess()
    {
        var kept = 0;
        AssertClean(Run(() =>
        {
            using var machine = Swapping();
            var process = machine.CreateProcess();
            var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(process, address, 1);
            var kswapd = ControlledThread.Start(() => machine.Reclaim(1), "kswapd");
            using (var pin = machine.Cpus[1].PinUserPages(process, address, 1, GupFlags.Write | GupFlags.LongTerm))
            {
                kswapd.Join();
                pin.Write(0, 0, 9);
                Specification.Assert(machine.Cpus[0].Read(process, address) == 9, "the process does not see the device's store through the pin");
                machine.Cpus[0].Write(process, address, 10);
                Specification.Assert(pin.Read(0, 0) == 10, "the pin does not see the process's store");
            }

            kept += machine.Stats.ReclaimKeptPinned > 0 ? 1 : 0;
            AssertInvariants(machine);
            process.Dispose();
            AssertInvariants(machine);
        }));
        Assert.True(kept > 0, "no schedule had reclaim meet the pinned page");
    }

    /// <summary>
    /// Memory pressure: two CPUs fault in more pages than the machine has frames, so their allocations reclaim each
    /// other's pages (direct reclaim inside the fault path) while they run; every page reads back as written.
    /// </summary>
    [Fact]
    public void DirectReclaimUnderTwoFaultingCpusLosesNothing()
    {
        const int PerCpu = 36;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(300).WithMaxSteps(200_000).WithTraceFiles(false), () =>
        {
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 64 });
            var process = machine.CreateProcess();
            var address = process.Mmap(2 * PerCpu * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            void Fill(int cpu)
            {
                var first = address + ((ulong)(cpu * PerCpu) * Page);
                for (var i = 0UL; i < PerCpu; i++)
                {
                    machine.Cpus[cpu].Write(process, first + (i * Page), ((ulong)cpu << 32) | i);
                }

                for (var i = 0UL; i < PerCpu; i++)
                {
                    var word = machine.Cpus[cpu].Read(process, first + (i * Page));
                    Specification.Assert(word == (((ulong)cpu << 32) | i), $"CPU {cpu} reads 0x{word:x} from its page {i}");
                }
            }

            var other = ControlledThread.Start(() => Fill(1), "cpu1");
            Fill(0);
            other.Join();
            Specification.Assert(machine.Stats.SwapOuts > 0, "no page was swapped out: the machine was not under pressure");
            AssertInvariants(machine);
            process.Dispose();
            AssertInvariants(machine);
        });
        AssertClean(report);
    }

    /// <summary>Reclaim racing munmap: the slot and the frame are freed whichever comes first.</summary>
    [Fact]
    public void ReclaimRacingMunmapLeaksNothing()
    {
        var swapped = 0;
        AssertClean(Run(() =>
        {
            using var machine = Swapping();
            var process = machine.CreateProcess();
            var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(process, address, 1);
            machine.Cpus[0].Write(process, address + Page, 1);
            var kswapd = ControlledThread.Start(() => machine.Reclaim(2), "kswapd");
            process.Munmap(address, 2 * Page);
            kswapd.Join();
            swapped += machine.Stats.SwapOuts > 0 ? 1 : 0;
            AssertInvariants(machine);
            process.Dispose();
            AssertInvariants(machine);
        }));
        Assert.True(swapped > 0, "no schedule had reclaim swap a page out before munmap took it");
    }
}
