using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Machine;

/// <summary>Fork and copy-on-write under the tester.</summary>
public sealed class ForkRaceTests
{
    [Fact]
    public void AfterForkReturnsNeitherProcessSeesTheOthersWrites()
    {
        var duringFork = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10_000), ForkVersusParentWrite(flush: true, () => Interlocked.Increment(ref duringFork)));
        AssertClean(report);
        Assert.True(duringFork > 0, "the parent's writer never ran while fork was copying: the test proved nothing");
    }

    [Fact]
    public void WithoutTheParentFlushAParentStoreLeaksIntoTheChild()
    {
        AssertFoundForEachOfTenSeeds(ForkVersusParentWrite(flush: false, onWriteDuringFork: null), bug =>
        {
        });
    }

    [Fact]
    public void APokeRacingForkNeverChangesTheChildsMemoryAfterFork()
    {
        // ptrace's access_remote_vm holds the mmap_lock for read from the lookup to the store, so fork (which holds
        // it for write) sees the poke wholly before or wholly after it.
        var seen = new int[2]; // the child's first read found the poke (it came first), or the old value
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10_000), PokeVersusFork(seen));
        AssertClean(report);
        Assert.True(seen[0] > 0 && seen[1] > 0, $"the poke came before fork in {seen[0]} schedules and after it in {seen[1]}: both orders must be seen");
    }

    /// <summary>
    /// One thread forks the process and has the child read a word at once; CPU 0 pokes that word in the parent
    /// (<c>PokeData</c>, a forced write as ptrace does it). Whichever came first, the child's memory must not change
    /// after fork returned: its second read must equal its first.
    /// </summary>
    internal static Action PokeVersusFork(int[]? seen) => () =>
    {
        using var machine = SmallMachine();
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[1].Write(parent, address, 1);
        Process? child = null;
        var first = new ulong[1];
        var forker = ControlledThread.Start(() =>
        {
            child = parent.Fork();
            first[0] = machine.Cpus[1].Read(child, address);
        }, "fork");
        machine.Cpus[0].PokeData(parent, address, 7);
        forker.Join();

        var second = machine.Cpus[1].Read(child!, address);
        if (seen is not null)
        {
            Interlocked.Increment(ref seen[first[0] == 7 ? 0 : 1]);
        }

        Specification.Assert(second == first[0], $"the child read {first[0]} right after fork and {second} later: the parent's poke reached a page shared with the child");
        Specification.Assert(machine.Cpus[1].Read(parent, address) == 7, "the parent lost its poke");
        AssertInvariants(machine);
        child!.Dispose();
    };

    [Fact]
    public void TwoWriteFaultsOnASharedPageCopyItOnce()
    {
        var retried = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(10_000), () =>
        {
            using var machine = SmallMachine();
            var parent = machine.CreateProcess();
            var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(parent, address, 1);
            var child = parent.Fork();

            var other = ControlledThread.Start(() => machine.Cpus[1].Write(parent, address + 8, 3), "cpu1");
            machine.Cpus[0].Write(parent, address, 2);
            other.Join();

            Specification.Assert(machine.Cpus[0].Read(parent, address) == 2 && machine.Cpus[0].Read(parent, address + 8) == 3, "a parent store was lost");
            Specification.Assert(machine.Cpus[0].Read(child, address) == 1 && machine.Cpus[0].Read(child, address + 8) == 0, "the child saw a parent store");
            Specification.Assert(machine.Stats.CowCopies == 1, $"{machine.Stats.CowCopies} copies for one page of one process");
            if (machine.Stats.FaultRetries > 0)
            {
                Interlocked.Increment(ref retried);
            }

            AssertInvariants(machine);
        });

        AssertClean(report);
        Assert.True(retried > 0, "no write fault ever lost the race to the other: the test proved nothing");
    }

    /// <summary>
    /// CPU 0 runs a thread of the parent that stores 2 and then 3 into a page it has a writable translation for,
    /// while the parent forks on another thread. The child's value, read right after fork returns, must never change
    /// afterwards, whatever the parent stores later.
    /// </summary>
    internal static Action ForkVersusParentWrite(bool flush, Action? onWriteDuringFork) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, ForkFlushesParentTlb = flush });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        var forking = new int[1];
        var writer = ControlledThread.Start(() =>
        {
            machine.Cpus[0].Write(parent, address, 2);
            if (Volatile.Read(ref forking[0]) == 1)
            {
                onWriteDuringFork?.Invoke();
            }

            machine.Cpus[0].Write(parent, address, 3);
        }, "parent-thread");

        Volatile.Write(ref forking[0], 1);
        var child = parent.Fork();
        Volatile.Write(ref forking[0], 2);
        var atReturn = machine.Cpus[1].Read(child, address);
        writer.Join();
        var later = machine.Cpus[1].Read(child, address);

        Specification.Assert(later == atReturn, $"the child read {atReturn} when fork returned and {later} afterwards: a parent store leaked into it");
        Specification.Assert(machine.Cpus[1].Read(parent, address) == 3, "the parent's last store was lost");
        AssertInvariants(machine);
    };
}
