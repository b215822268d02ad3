using Engine.Testing;

namespace Engine.Tests.Swap;

/// <summary><see cref="Process.MadvisePageOut"/>: what it pages out, what it leaves, and what it refuses.</summary>
public sealed class MadvisePageOutTests
{
    private const ulong Page = 4096;

    [Fact]
    public void ItPagesOutTheRangesAnonymousPagesWhateverTheirAgeAndLeavesTheRest()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16 });
        using var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        machine.Cpus[0].Write(process, address + Page, 2);
        Assert.Equal(0UL, machine.Cpus[0].Read(process, address + (2 * Page)));

        // Pages 0 and 1 were just touched (young): reclaim's clock would keep them, MADV_PAGEOUT does not. Page 2 maps
        // the zero page and page 3 nothing: nothing to page out there. Only the first three pages are asked for.
        Assert.Equal(2, process.MadvisePageOut(address, 3 * Page));

        Assert.True(machine.Inspect().EntryAt(process, address).IsSwap);
        Assert.True(machine.Inspect().EntryAt(process, address + Page).IsSwap);
        Assert.Equal(2, machine.Stats.SwapOuts);
        Assert.Equal(1UL, machine.Cpus[1].Read(process, address));
        Assert.Equal(2UL, machine.Cpus[1].Read(process, address + Page));
        machine.CheckInvariants();
    }

    [Fact]
    public void APageAnotherProcessMapsTooIsLeftAsTheKernelLeavesIt()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16 });
        using var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        using var child = parent.Fork();

        Assert.Equal(0, parent.MadvisePageOut(address, Page));
        Assert.True(machine.Inspect().EntryAt(parent, address).IsPresent);
        machine.CheckInvariants();
    }

    [Fact]
    public void WithoutSwapNothingIsPagedOutAndNothingIsHeld()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 0 });
        using var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);

        Assert.Equal(0, process.MadvisePageOut(address, Page));
        Assert.True(machine.Inspect().EntryAt(process, address).IsPresent);
        machine.CheckInvariants();
    }

    [Fact]
    public void BadRangesAndExitedProcessesAreRefusedAndChangeNothing()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16 });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);

        Assert.Throws<ArgumentException>(() => process.MadvisePageOut(address + 8, Page));
        Assert.Throws<ArgumentException>(() => process.MadvisePageOut(address, 0));
        Assert.Throws<ArgumentException>(() => process.MadvisePageOut(address, ulong.MaxValue));
        Assert.True(machine.Inspect().EntryAt(process, address).IsPresent);
        machine.CheckInvariants();

        process.Dispose();
        Assert.Throws<ObjectDisposedException>(() => process.MadvisePageOut(address, Page));
        machine.CheckInvariants();
    }
}
