namespace Engine.Tests.Machine;

/// <summary>Single-threaded behaviour of every operation, on both PTE layouts, with the invariants checked after each.</summary>
public sealed class MachineOperationTests
{
    private const ulong Page = 4096;

    public static TheoryData<PteLayout> Layouts => new(PteLayout.Native64, PteLayout.SplitPae);

    [Theory]
    [MemberData(nameof(Layouts))]
    public void WrittenWordsReadBackAndExitFreesEverything(PteLayout layout)
    {
        using var machine = Small(layout);
        var initial = machine.FreeFrames;
        var process = machine.CreateProcess();
        var address = process.Mmap(16 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        for (ulong i = 0; i < 16; i++)
        {
            cpu.Write(process, address + (i * Page) + 8, 1000 + i);
        }

        for (ulong i = 0; i < 16; i++)
        {
            Assert.Equal(1000 + i, machine.Cpus[1].Read(process, address + (i * Page) + 8));
            Assert.Equal(0UL, cpu.Read(process, address + (i * Page)));
        }

        Assert.Equal(16, machine.Stats.AnonymousFaults);
        machine.CheckInvariants();
        process.Dispose();
        machine.CheckInvariants();
        Assert.Equal(initial, machine.FreeFrames);
        Assert.Equal(machine.Stats.PagesAllocated, machine.Stats.PagesFreed);
        Assert.Equal(machine.Stats.PageTablesAllocated, machine.Stats.PageTablesFreed);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void AReadMapsTheZeroPageAndALaterWriteCopiesIt(PteLayout layout)
    {
        using var machine = Small(layout);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];

        Assert.Equal(0UL, cpu.Read(process, address));
        Assert.Equal(1, machine.Stats.ZeroPageFaults);
        Assert.Equal(0, machine.Stats.PagesAllocated);
        machine.CheckInvariants();

        cpu.Write(process, address, 7);
        Assert.Equal(7UL, cpu.Read(process, address));
        Assert.Equal(1, machine.Stats.WriteProtectFaults);
        Assert.Equal(1, machine.Stats.CowCopies);
        Assert.True(machine.Stats.TlbShootdowns >= 1);
        machine.CheckInvariants();
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void MunmapDropsTheMappingFreesPagesAndEmptyTables(PteLayout layout)
    {
        using var machine = Small(layout);
        var initial = machine.FreeFrames;
        var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 1);
        cpu.Write(process, address + Page, 2);

        process.Munmap(address, 4 * Page);

        var fault = Assert.Throws<SegmentationFault>(() => cpu.Read(process, address));
        Assert.Equal(SegmentationFaultReason.Unmapped, fault.Reason);
        Assert.Equal(address, fault.Address);
        Assert.Equal(2, machine.Stats.PagesFreed);
        Assert.Equal(3, machine.Stats.PageTablesFreed);
        Assert.Equal(initial - 1, machine.FreeFrames);
        machine.CheckInvariants();
    }

    [Fact]
    public void PartialMunmapSplitsTheMapping()
    {
        using var machine = Small(PteLayout.Native64);
        var process = machine.CreateProcess();
        var address = process.Mmap(3 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        for (ulong i = 0; i < 3; i++)
        {
            cpu.Write(process, address + (i * Page), i + 1);
        }

        process.Munmap(address + Page, Page);

        Assert.Equal(1UL, cpu.Read(process, address));
        Assert.Equal(3UL, cpu.Read(process, address + (2 * Page)));
        Assert.Throws<SegmentationFault>(() => cpu.Write(process, address + Page, 9));
        machine.CheckInvariants();
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void MprotectTakesAndGivesBackPermissionsAndKeepsTheData(PteLayout layout)
    {
        using var machine = Small(layout);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 42);

        process.Mprotect(address, 2 * Page, Prot.Read);
        Assert.Equal(42UL, cpu.Read(process, address));
        var denied = Assert.Throws<SegmentationFault>(() => cpu.Write(process, address, 1));
        Assert.Equal(SegmentationFaultReason.Protection, denied.Reason);
        machine.CheckInvariants();

        process.Mprotect(address, 2 * Page, Prot.None);
        Assert.Throws<SegmentationFault>(() => cpu.Read(process, address));
        machine.CheckInvariants();

        process.Mprotect(address, 2 * Page, Prot.ReadWrite);
        Assert.Equal(42UL, cpu.Read(process, address));
        cpu.Write(process, address, 43);
        Assert.Equal(43UL, machine.Cpus[1].Read(process, address));

        // The page stayed exclusive, so mprotect made its entry writable again (Linux 6.0): no fault, no copy.
        Assert.Equal(0, machine.Stats.WriteProtectFaults);
        Assert.Equal(0, machine.Stats.CowCopies);
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(CowReuse.MapCount)]
    [InlineData(CowReuse.PageCount)]
    public void BeforeAnonExclusiveTheWriteAfterMprotectFaultsAndReusesThePage(CowReuse rule)
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, CowReuse = rule });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 42);
        process.Mprotect(address, Page, Prot.Read);
        process.Mprotect(address, Page, Prot.ReadWrite);
        cpu.Write(process, address, 43);
        Assert.Equal(1, machine.Stats.WriteProtectFaults);
        Assert.Equal(1, machine.Stats.CowReuses);
        Assert.Equal(0, machine.Stats.CowCopies);
        Assert.Equal(43UL, machine.Cpus[1].Read(process, address));
        machine.CheckInvariants();
    }

    [Fact]
    public void MadviseDontNeedDropsPagesThatThenReadAsZero()
    {
        using var machine = Small(PteLayout.Native64);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 5);
        cpu.Write(process, address + Page, 6);
        var before = machine.FreeFrames;

        process.MadviseDontNeed(address, 2 * Page);

        Assert.Equal(before + 2, machine.FreeFrames);
        Assert.Equal(0UL, cpu.Read(process, address));
        Assert.Equal(0UL, cpu.Read(process, address + Page));
        machine.CheckInvariants();
    }

    [Fact]
    public void BadArgumentsAreRejectedAndChangeNothing()
    {
        using var machine = Small(PteLayout.Native64);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 1);

        Assert.Throws<ArgumentException>(() => cpu.Read(process, address + 3));
        Assert.Throws<ArgumentException>(() => cpu.Write(process, address + 4, 1));
        Assert.Throws<ArgumentException>(() => process.Mmap(0, Prot.Read, MapFlags.Private | MapFlags.Anonymous));
        Assert.Throws<ArgumentException>(() => process.Mmap(ulong.MaxValue, Prot.Read, MapFlags.Private | MapFlags.Anonymous));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared | MapFlags.Anonymous));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, (Prot)8, MapFlags.Private | MapFlags.Anonymous));
        Assert.Throws<ArgumentException>(() => process.Munmap(address + 1, Page));
        Assert.Throws<ArgumentException>(() => process.Munmap(address, 0));
        Assert.Throws<ArgumentException>(() => process.Munmap(address, ulong.MaxValue - Page));
        Assert.Throws<ArgumentException>(() => process.Munmap(0, Page));
        Assert.Throws<ArgumentException>(() => process.Munmap(Process.UserEnd, Page));
        Assert.Throws<ArgumentException>(() => process.Mprotect(address + Page, Page, Prot.Read));
        Assert.Throws<ArgumentException>(() => process.MadviseDontNeed(address, 0));
        Assert.Throws<SegmentationFault>(() => cpu.Read(process, 0x5000));

        Assert.Equal(1UL, cpu.Read(process, address));
        machine.CheckInvariants();
    }

    [Fact]
    public void RunningOutOfFramesThrowsAndLeavesTheMachineConsistent()
    {
        // No swap: with it, direct reclaim would make room (ReclaimTests cover that).
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 256, SwapSlots = 0 });
        var process = machine.CreateProcess();
        var address = process.Mmap(1024 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        var written = 0UL;
        Assert.Throws<OutOfFramesException>(() =>
        {
            for (; written < 1024; written++)
            {
                cpu.Write(process, address + (written * Page), written + 1);
            }
        });

        Assert.True(written > 10);
        machine.CheckInvariants();
        for (ulong i = 0; i < written; i++)
        {
            Assert.Equal(i + 1, cpu.Read(process, address + (i * Page)));
        }

        // Freeing some memory makes progress possible again.
        process.Munmap(address, 8 * Page);
        cpu.Write(process, address + (written * Page), 99);
        machine.CheckInvariants();
    }

    [Fact]
    public void AnExitedProcessCannotBeUsed()
    {
        using var machine = Small(PteLayout.Native64);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        process.Dispose();
        process.Dispose();

        Assert.True(process.HasExited);
        Assert.Throws<ObjectDisposedException>(() => machine.Cpus[0].Read(process, address));
        Assert.Throws<ObjectDisposedException>(() => process.Mmap(Page, Prot.Read, MapFlags.Private | MapFlags.Anonymous));
        Assert.Throws<ObjectDisposedException>(() => process.Munmap(address, Page));
        machine.CheckInvariants();
    }

    [Fact]
    public void InvalidOptionsAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { Cpus = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { Cpus = 65 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { Frames = 10 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { PteLayout = (PteLayout)7 }));
    }

    [Fact]
    public void TwoProcessesAreIsolated()
    {
        using var machine = Small(PteLayout.Native64);
        var first = machine.CreateProcess();
        var second = machine.CreateProcess();
        var a = first.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var b = second.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Assert.Equal(a, b);

        var cpu = machine.Cpus[0];
        cpu.Write(first, a, 1);
        cpu.Write(second, b, 2);
        Assert.Equal(1UL, cpu.Read(first, a));
        Assert.Equal(2UL, cpu.Read(second, b));
        machine.CheckInvariants();
    }

    private static Engine.Machine Small(PteLayout layout) => new(new MachineOptions { Cpus = 2, Frames = 256, PteLayout = layout });
}
