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
