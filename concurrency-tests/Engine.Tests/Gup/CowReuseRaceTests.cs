using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Gup;

/// <summary>
/// The two historical bugs of the older COW reuse rules, under the tester: each generation's scenario passes with the
/// modern rule (and with the rule that fixed it) and fails with the rule that had the bug.
/// </summary>
public sealed class CowReuseRaceTests
{
    private const int Schedules = 10_000;

    [Theory]
    [InlineData(CowReuse.PageCount)]
    [InlineData(CowReuse.AnonExclusive)]
    public void AChildsReferenceNeverSeesTheParentsLaterStores(CowReuse rule)
    {
        var orders = new int[2]; // the parent stored before the child's reference, after it
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), VmspliceAfterFork(rule, orders));
        AssertClean(report);
        Assert.True(orders[0] > 0 && orders[1] > 0, $"the parent stored before the child's reference in {orders[0]} schedules and after it in {orders[1]}: both must be seen");
    }

    [Fact]
    public void WithTheMapcountRuleTheChildReadsTheParentsStoreForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(VmspliceAfterFork(CowReuse.MapCount, orders: null), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("CVE-2020-29374", bug.Message);
        });
    }

    [Theory]
    [InlineData(CowReuse.MapCount)]
    [InlineData(CowReuse.AnonExclusive)]
    public void ALongTermPinStaysThePagesAfterWriteProtection(CowReuse rule)
    {
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(Schedules), PinThenWriteProtect(rule));
        AssertClean(report);
    }

    [Fact]
    public void WithThePageCountRuleTheWriteCopiesThePageAwayFromThePinForEachOfTenSeeds()
    {
        AssertFoundForEachOfTenSeeds(PinThenWriteProtect(CowReuse.PageCount), bug =>
        {
            Assert.Equal(BugKind.Assertion, bug.Kind);
            Assert.Contains("wrong COW", bug.Message);
        });
    }

    /// <summary>
    /// CVE-2020-29374 (cow.c "vmsplice() + unmap in child"): after fork the child takes a read-only reference to the
    /// shared page (vmsplice into a pipe) and unmaps it, while the parent stores a secret. Whatever the order, the
    /// child's reference must still read what the page held at fork.
    /// </summary>
    internal static Action VmspliceAfterFork(CowReuse rule, int[]? orders) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, CowReuse = rule });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        using var child = parent.Fork();
        var stored = new int[1];
        var secret = ControlledThread.Start(() =>
        {
            machine.Cpus[0].Write(parent, address, 2);
            Volatile.Write(ref stored[0], 1);
        }, "parent");
        var before = Volatile.Read(ref stored[0]);
        using (var pipe = machine.Cpus[1].GetUserPages(child, address, 1, GupFlags.None))
        {
            child.Munmap(address, Page);
            secret.Join();
            if (orders is not null)
            {
                Interlocked.Increment(ref orders[before]);
            }

            Specification.Assert(pipe.Read(0, 0) == 1, $"CVE-2020-29374: the child's pipe reads {pipe.Read(0, 0)}, the parent's store after fork");
            AssertInvariants(machine);
        }
    };

    /// <summary>
    /// cow.c "R/O-mapping a page registered as an io_uring fixed buffer": a long-term write pin is taken; the page
    /// is write-protected and made writable again (mprotect, as soft-dirty clearing or uffd-wp also do) while the
    /// device writes through the pin; then the process stores. The pin and the process must still share the page.
    /// </summary>
    internal static Action PinThenWriteProtect(CowReuse rule) => () =>
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, CowReuse = rule });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        using var pin = machine.Cpus[0].PinUserPages(process, address, 1, GupFlags.Write | GupFlags.LongTerm);
        var device = ControlledThread.Start(() => pin.Write(0, 1, 7), "device");
        process.Mprotect(address, Page, Prot.Read);
        process.Mprotect(address, Page, Prot.ReadWrite);
        machine.Cpus[0].Write(process, address, 2);
        device.Join();
        Specification.Assert(pin.Read(0, 0) == 2, $"wrong COW: the pin reads {pin.Read(0, 0)}, not the process's store 2: the write copied the page away from the pin");
        Specification.Assert(machine.Cpus[0].Read(process, address + 8) == 7, "the process does not see what the device wrote through the pin");
        AssertInvariants(machine);
    };
}
