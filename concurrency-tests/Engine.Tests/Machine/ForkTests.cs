namespace Engine.Tests.Machine;

/// <summary>Fork and copy-on-write, single-threaded.</summary>
public sealed class ForkTests
{
    private const ulong Page = 4096;

    [Theory]
    [InlineData(PteLayout.Native64)]
    [InlineData(PteLayout.SplitPae)]
    public void TheChildSeesTheParentsDataAndLaterWritesStayApart(PteLayout layout)
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 256, PteLayout = layout });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(parent, address, 1);
        cpu.Write(parent, address + Page, 2);
        Assert.Equal(0UL, cpu.Read(parent, address + (2 * Page)));

        var child = parent.Fork();
        machine.CheckInvariants();
        Assert.Equal(1UL, machine.Cpus[1].Read(child, address));
        Assert.Equal(2UL, machine.Cpus[1].Read(child, address + Page));
        Assert.Equal(0UL, machine.Cpus[1].Read(child, address + (2 * Page)));

        cpu.Write(parent, address, 10);
        machine.Cpus[1].Write(child, address + Page, 20);
        Assert.Equal(10UL, cpu.Read(parent, address));
        Assert.Equal(1UL, cpu.Read(child, address));
        Assert.Equal(2UL, cpu.Read(parent, address + Page));
        Assert.Equal(20UL, cpu.Read(child, address + Page));
        Assert.Equal(2, machine.Stats.CowCopies);
        machine.CheckInvariants();

        // The other side's write to a page the first side already copied away reuses the original.
        cpu.Write(child, address, 11);
        Assert.Equal(1, machine.Stats.CowReuses);
        Assert.Equal(10UL, cpu.Read(parent, address));
        machine.CheckInvariants();

        var before = machine.FreeFrames;
        child.Dispose();
        machine.CheckInvariants();
        Assert.True(machine.FreeFrames > before);
        parent.Dispose();
        machine.CheckInvariants();
    }

    [Fact]
    public void AfterTheParentExitsTheChildReusesEveryPage()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 256 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(3 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        for (ulong i = 0; i < 3; i++)
        {
            cpu.Write(parent, address + (i * Page), i);
        }

        var child = parent.Fork();
        parent.Dispose();
        for (ulong i = 0; i < 3; i++)
        {
            cpu.Write(child, address + (i * Page), i + 100);
        }

        Assert.Equal(3, machine.Stats.CowReuses);
        Assert.Equal(0, machine.Stats.CowCopies);
        machine.CheckInvariants();
    }

    [Fact]
    public void AForkThatRunsOutOfFramesLeavesNoChildAndAConsistentMachine()
    {
        // No swap: with it, direct reclaim would make room (ReclaimTests cover that).
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64, SwapSlots = 0 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(64 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        ulong written = 0;
        try
        {
            for (; written < 64; written++)
            {
                cpu.Write(parent, address + (written * Page), written + 1);
            }
        }
        catch (OutOfFramesException)
        {
        }

        Assert.Throws<OutOfFramesException>(() => parent.Fork());
        machine.CheckInvariants();
        for (ulong i = 0; i < written; i++)
        {
            Assert.Equal(i + 1, cpu.Read(parent, address + (i * Page)));
        }
    }
}
