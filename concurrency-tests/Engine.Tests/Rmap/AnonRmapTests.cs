using Engine.Rmap;
using static Engine.Tests.Rmap.RmapProbe;

namespace Engine.Tests.Rmap;

/// <summary>
/// The anon_vma structure across fork families, single-threaded: an rmap walk of any anonymous page finds exactly
/// the entries that map it, through forks, copy-on-write, reuse, splits, munmap and exit.
/// </summary>
public sealed class AnonRmapTests
{
    private const ulong Page = 4096;

    [Fact]
    public void AWalkFindsEveryGenerationThatSharesAPageAndOnlyThose()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 256 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(parent, address, 1);
        cpu.Write(parent, address + Page, 2);
        var original = PfnAt(machine, parent, address);
        Assert.Equal([(parent.Pid, address)], Mappers(machine, original));

        var child = parent.Fork();
        var grandchild = child.Fork();
        machine.CheckInvariants();
        Assert.Equal([(parent.Pid, address), (child.Pid, address), (grandchild.Pid, address)], Mappers(machine, original));

        // The child's copy belongs to the child's own anon_vma: the grandchild, forked before the copy, is linked to it
        // and visited, but maps the original; the parent is not even visited.
        cpu.Write(child, address, 10);
        var copy = PfnAt(machine, child, address);
        Assert.NotEqual(original, copy);
        Assert.Equal([(child.Pid, address)], Mappers(machine, copy));
        Assert.Equal(2, VisitedVmas(machine, copy));
        Assert.Equal(1, AnonRmap.AnonVmaOf(machine.Memmap, copy)!.Generation);
        Assert.Equal([(parent.Pid, address), (grandchild.Pid, address)], Mappers(machine, original));

        cpu.Write(grandchild, address + Page, 20);
        var grandchildCopy = PfnAt(machine, grandchild, address + Page);
        Assert.Equal(2, AnonRmap.AnonVmaOf(machine.Memmap, grandchildCopy)!.Generation);
        Assert.Equal([(grandchild.Pid, address + Page)], Mappers(machine, grandchildCopy));
        Assert.Same(AnonRmap.AnonVmaOf(machine.Memmap, original)!, AnonRmap.AnonVmaOf(machine.Memmap, copy)!.Root);
        machine.CheckInvariants();

        grandchild.Dispose();
        child.Dispose();
        Assert.Equal([(parent.Pid, address)], Mappers(machine, original));
        Assert.Equal(1, VisitedVmas(machine, original));
        machine.CheckInvariants();
    }

    [Fact]
    public void AReusedPageMovesToTheReusingVmasAnonVma()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 256 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        cpu.Write(parent, address, 1);
        var pfn = PfnAt(machine, parent, address);
        var child = parent.Fork();
        var root = AnonRmap.AnonVmaOf(machine.Memmap, pfn)!;
        Assert.Equal(0, root.Generation);

        // The parent goes; the child's write finds the page unshared and reuses it, moving it to its own anon_vma.
        parent.Dispose();
        cpu.Write(child, address, 2);
        Assert.Equal(pfn, PfnAt(machine, child, address));
        Assert.Equal(1, machine.Stats.CowReuses);
        var moved = AnonRmap.AnonVmaOf(machine.Memmap, pfn)!;
        Assert.Equal(1, moved.Generation);
        Assert.Same(root, moved.Root);
        Assert.Equal([(child.Pid, address)], Mappers(machine, pfn));
        machine.CheckInvariants();
    }

    [Fact]
    public void SplitsAndPartialUnmapsKeepWalksExact()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 256 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        var pages = new long[4];
        for (ulong i = 0; i < 4; i++)
        {
            cpu.Write(parent, address + (i * Page), i + 1);
            pages[i] = PfnAt(machine, parent, address + (i * Page));
        }

        var child = parent.Fork();

        // The child's VMA splits in three; the parent's in two.
        child.Mprotect(address + Page, 2 * Page, Prot.Read);
        parent.Munmap(address, Page);
        machine.CheckInvariants();
        Assert.Equal([(child.Pid, address)], Mappers(machine, pages[0]));
        for (ulong i = 1; i < 4; i++)
        {
            // The parent's VMA for the tail was made by the split, after the fork, so it comes later in the list.
            Assert.Equal([(parent.Pid, address + (i * Page)), (child.Pid, address + (i * Page))], Mappers(machine, pages[i]).Order());
        }

        // Each page is visited only in the VMAs that cover its index: one of the parent's, one of the child's.
        Assert.Equal(2, VisitedVmas(machine, pages[2]));
        Assert.Equal(1, VisitedVmas(machine, pages[0]));

        child.Munmap(address + Page, Page);
        Assert.Equal([(parent.Pid, address + Page)], Mappers(machine, pages[1]));
        Assert.Equal(3UL, cpu.Read(child, address + (2 * Page)));
        machine.CheckInvariants();

        child.Dispose();
        parent.Dispose();
        machine.CheckInvariants();
    }

    [Fact]
    public void APrivateCopyOfAFilePageIsAnonymousAtItsFileIndex()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 256 });
        var file = machine.CreateFile("data", (long)(4 * Page));
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private, file, (long)(2 * Page));
        var cpu = machine.Cpus[0];
        cpu.Write(process, address + Page, 7);
        var pfn = PfnAt(machine, process, address + Page);
        Assert.True(machine.Memmap.TestFlags(pfn, Engine.Memory.PageFlags.Anon));
        Assert.Equal(3L, machine.Memmap.Page(pfn).Index);
        Assert.Equal([(process.Pid, address + Page)], Mappers(machine, pfn));

        var child = process.Fork();
        Assert.Equal([(process.Pid, address + Page), (child.Pid, address + Page)], Mappers(machine, pfn));

        // The page-cache page of the other half is walked through the file: both processes map it read-only.
        cpu.Read(process, address);
        cpu.Read(child, address);
        var cached = PfnAt(machine, process, address);
        Assert.False(machine.Memmap.TestFlags(cached, Engine.Memory.PageFlags.Anon));
        Assert.Equal([(process.Pid, address), (child.Pid, address)], Mappers(machine, cached));
        machine.CheckInvariants();
    }

    [Fact]
    public void AVmaWithoutAnonymousPagesHasNoAnonVmaAndAReadFaultMakesNone()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64 });
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        Assert.Equal(0UL, machine.Cpus[0].Read(parent, address));
        var vma = parent.Mm.FindVmaAtQuiescence(address)!;
        Assert.Null(vma.AnonVma);
        var child = parent.Fork();
        Assert.Null(child.Mm.FindVmaAtQuiescence(address)!.AnonVma);

        machine.Cpus[0].Write(child, address, 1);
        Assert.NotNull(child.Mm.FindVmaAtQuiescence(address)!.AnonVma);
        Assert.Null(vma.AnonVma);
        Assert.Equal(0, child.Mm.FindVmaAtQuiescence(address)!.AnonVma!.Generation);
        machine.CheckInvariants();
    }
}
