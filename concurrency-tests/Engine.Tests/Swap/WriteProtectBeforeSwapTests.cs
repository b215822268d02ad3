using Engine.Systematic;
using Engine.Testing;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Swap;

/// <summary>
/// Rule (d) of seed 001 (<see cref="MachineOptions.WriteProtectBeforeSwap"/>): reclaim makes a page read-only
/// everywhere, and flushes, before the page enters the swap cache; with rule (c) it keeps a writable page that someone
/// else holds; a fault that makes the page writable again before the unmap makes reclaim keep it too.
/// </summary>
public sealed class WriteProtectBeforeSwapTests
{
    private static Engine.Machine Create(bool ruleD, CowReuse rule = CowReuse.AnonExclusive)
        => new(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16, CowReuse = rule, WriteProtectBeforeSwap = ruleD });

    private static (Process Process, ulong Address) Written(Engine.Machine machine, int pages)
    {
        var process = machine.CreateProcess();
        var address = process.Mmap((ulong)pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        for (var i = 0; i < pages; i++)
        {
            machine.Cpus[0].Write(process, address + ((ulong)i * Page), 100 + (ulong)i);
        }

        return (process, address);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void WritablePagesAreWriteProtectedFirstOnlyUnderTheRuleAndComeBackWithTheirData(bool ruleD)
    {
        using var machine = Create(ruleD);
        var (process, address) = Written(machine, 8);

        Assert.Equal(8, process.MadvisePageOut(address, 8 * Page));

        Assert.Equal(ruleD ? 8 : 0, machine.Stats.ReclaimWriteProtects);
        Assert.Equal(0, machine.Stats.ReclaimKeptWritable);
        Assert.Equal(8, machine.Stats.SwapOuts);
        machine.CheckInvariants();
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(100 + (ulong)i, machine.Cpus[1].Read(process, address + ((ulong)i * Page)));
        }

        machine.CheckInvariants();
    }

    /// <summary>Pages already mapped read-only (shared with a child after fork) have nothing to write-protect.</summary>
    [Fact]
    public void ReadOnlyEntriesNeedNoWriteProtection()
    {
        using var machine = Create(ruleD: true);
        var (parent, address) = Written(machine, 4);
        using var child = parent.Fork();

        Assert.Equal(4, machine.Reclaim(4));

        Assert.Equal(0, machine.Stats.ReclaimWriteProtects);
        Assert.Equal(4, machine.Stats.SwapOuts);
        Assert.Equal(100UL, machine.Cpus[1].Read(child, address));
        machine.CheckInvariants();
    }

    /// <summary>
    /// Rule (c): a writable page with a reference other than its mapping's (a direct I/O's) is not made read-only and
    /// not swapped: the I/O's later write reaches the process. Without the rule the page goes to the swap cache under
    /// the reference (in 5.18 the write is then lost; zoo entry 14).
    /// </summary>
    [Theory]
    [InlineData(CowReuse.PageCount)]
    [InlineData(CowReuse.AnonExclusive)]
    public void AWritablePageSomeoneElseHoldsIsKeptMappedAndWritable(CowReuse rule)
    {
        using var machine = Create(ruleD: true, rule);
        var (process, address) = Written(machine, 1);
        var io = machine.Cpus[0].GetUserPages(process, address, 1, GupFlags.Write);

        Assert.Equal(0, process.MadvisePageOut(address, Page));

        var entry = machine.Inspect().EntryAt(process, address);
        Assert.True(entry.IsPresent && entry.IsWrite, entry.ToString());
        Assert.Equal(1, machine.Stats.ReclaimKeptWritable);
        Assert.Equal(0, machine.Stats.SwapSlotsInUse);
        machine.Cpus[1].Write(process, address, 2);
        io.Write(0, 1, 0xD10);
        io.Dispose();
        Assert.Equal(0xD10UL, machine.Cpus[1].Read(process, address + 8));
        machine.CheckInvariants();
    }

    /// <summary>
    /// Under the tester: the process writes its page while reclaim write-protects and swaps it. A write fault that
    /// reuses the exclusive page between the write-protection and the unmap makes it writable again, and reclaim then
    /// keeps it (and takes it out of the swap cache); the store is never lost, and no schedule leaves a writable page in
    /// the swap cache with a swap entry naming it.
    /// </summary>
    [Fact]
    public void AWriteRacingTheRuleEitherFaultsTheSwappedPageBackOrKeepsItWritable()
    {
        var kept = 0;
        var swapped = 0;
        AssertClean(TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000).WithTraceFiles(false), () =>
        {
            using var machine = Create(ruleD: true);
            var (process, address) = Written(machine, 1);
            var kswapd = ControlledThread.Start(() => process.MadvisePageOut(address, Page), "pageout");
            machine.Cpus[1].Write(process, address, 7);
            kswapd.Join();
            Specification.Assert(machine.Cpus[0].Read(process, address) == 7, "the store made while reclaim ran is lost");
            kept += machine.Stats.ReclaimKeptWritable > 0 ? 1 : 0;
            swapped += machine.Stats.SwapOuts > 0 ? 1 : 0;
            AssertInvariants(machine);
            process.Dispose();
            AssertInvariants(machine);
        }));
        Assert.True(kept > 0, "no schedule made the page writable again between the write-protection and the unmap");
        Assert.True(swapped > 0, "no schedule swapped the page out");
    }
}
