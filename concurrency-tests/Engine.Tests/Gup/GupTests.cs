using Engine.Memory;
using static Engine.Tests.Rmap.RmapProbe;

namespace Engine.Tests.Gup;

/// <summary>get_user_pages and pin_user_pages, single-threaded: counts, coherency, unshare, fork, bad input.</summary>
public sealed class GupTests
{
    private const ulong Page = 4096;

    private static Engine.Machine Small() => new(new MachineOptions { Cpus = 2, Frames = 256 });

    /// <summary>
    /// A new process with <paramref name="pages"/> private anonymous pages mapped read-write, the first holding
    /// <paramref name="value"/> (written by CPU 0, so it is an exclusive anonymous page).
    /// </summary>
    private static (Process Process, ulong Address) WrittenAnonymous(Engine.Machine machine, ulong value, int pages = 1)
    {
        var process = machine.CreateProcess();
        var address = process.Mmap((ulong)pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, value);
        return (process, address);
    }

    [Fact]
    public void AWritePinSeesTheProcessAndTheProcessSeesTheDevice()
    {
        using var machine = Small();
        var (process, address) = WrittenAnonymous(machine, 5, pages: 2);
        var cpu = machine.Cpus[0];

        // The second page is faulted in by the pin itself (a write fault).
        using (var pin = cpu.PinUserPages(process, address, 2, GupFlags.Write | GupFlags.LongTerm))
        {
            Assert.Equal(2, pin.Count);
            Assert.Equal(5UL, pin.Read(0, 0));
            pin.Write(0, 1, 7);
            pin.Write(1, 0, 8);
            Assert.Equal(7UL, cpu.Read(process, address + 8));
            Assert.Equal(8UL, cpu.Read(process, address + Page));
            cpu.Write(process, address + 16, 9);
            Assert.Equal(9UL, pin.Read(0, 2));

            var pfn = PfnAt(machine, process, address);
            Assert.Equal(1 + Memmap.GupPinCountingBias, machine.Memmap.PageCount(pfn));
            Assert.True(machine.Memmap.MaybeDmaPinned(pfn));
            machine.CheckInvariants();
        }

        var after = PfnAt(machine, process, address);
        Assert.Equal(1, machine.Memmap.PageCount(after));
        Assert.False(machine.Memmap.MaybeDmaPinned(after));
        machine.CheckInvariants();
    }

    [Fact]
    public void ASecondUnpinThrowsAndChangesNothingAndAccessAfterUnpinThrows()
    {
        using var machine = Small();
        var (process, address) = WrittenAnonymous(machine, 1);
        var cpu = machine.Cpus[0];
        var pin = cpu.PinUserPages(process, address, 1, GupFlags.Write);
        var references = cpu.GetUserPages(process, address, 1, GupFlags.None);
        var pfn = PfnAt(machine, process, address);
        Assert.Equal(2 + Memmap.GupPinCountingBias, machine.Memmap.PageCount(pfn));

        pin.Dispose();
        Assert.Throws<InvalidOperationException>(pin.Dispose);
        Assert.Equal(2, machine.Memmap.PageCount(pfn));
        Assert.Throws<ObjectDisposedException>(() => pin.Read(0, 0));
        Assert.Equal(1UL, references.Read(0, 0));
        references.Dispose();
        Assert.Throws<InvalidOperationException>(references.Dispose);
        Assert.Equal(1, machine.Memmap.PageCount(pfn));
        machine.CheckInvariants();
    }

    [Fact]
    public void BadRequestsThrowAndLeaveTheMachineConsistent()
    {
        using var machine = Small();
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.Read, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        Assert.Throws<ArgumentException>(() => cpu.PinUserPages(process, address + 8, 1, GupFlags.None));
        Assert.Throws<ArgumentException>(() => cpu.PinUserPages(process, address, 0, GupFlags.None));
        Assert.Throws<ArgumentException>(() => cpu.PinUserPages(process, Process.UserEnd - Page, 2, GupFlags.None));
        Assert.Throws<ArgumentException>(() => cpu.PinUserPages(process, address, 1, GupFlags.FastOnly | GupFlags.NoFast));
        Assert.Throws<ArgumentException>(() => cpu.PinUserPages(process, address, 1, (GupFlags)64));

        // A write pin of a read-only mapping, and a range that runs into a hole: nothing stays held.
        var fault = Assert.Throws<SegmentationFault>(() => cpu.PinUserPages(process, address, 1, GupFlags.Write));
        Assert.Equal(SegmentationFaultReason.Protection, fault.Reason);
        fault = Assert.Throws<SegmentationFault>(() => cpu.GetUserPages(process, address, 3, GupFlags.None));
        Assert.Equal(SegmentationFaultReason.Unmapped, fault.Reason);
        machine.CheckInvariants();

        // A read-only pin of untouched memory holds the zero page; it reads 0 and cannot be written.
        using var readOnly = cpu.PinUserPages(process, address, 2, GupFlags.None);
        Assert.Equal(0UL, readOnly.Read(1, 5));
        Assert.Throws<InvalidOperationException>(() => readOnly.Write(0, 0, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => readOnly.Read(2, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => readOnly.Read(0, 512));
        machine.CheckInvariants();

        process.Dispose();
        Assert.Throws<ObjectDisposedException>(() => cpu.PinUserPages(process, address, 1, GupFlags.None));
        machine.CheckInvariants();
    }

    [Fact]
    public void FastOnlyTakesWhatIsMappedWithoutFaulting()
    {
        using var machine = Small();
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        using (var none = cpu.PinUserPages(process, address, 2, GupFlags.Write | GupFlags.FastOnly))
        {
            Assert.Equal(0, none.Count);
        }

        cpu.Write(process, address, 1);
        using (var one = cpu.PinUserPages(process, address, 2, GupFlags.Write | GupFlags.FastOnly))
        {
            Assert.Equal(1, one.Count);
            Assert.Equal(1UL, one.Read(0, 0));
            machine.CheckInvariants();
        }

        machine.CheckInvariants();
    }

    [Fact]
    public void ForkGivesTheChildACopyOfAPinnedPageAndLeavesTheParentsEntryWritable()
    {
        using var machine = Small();
        var (parent, address) = WrittenAnonymous(machine, 1);
        var cpu = machine.Cpus[0];
        using var pin = cpu.PinUserPages(parent, address, 1, GupFlags.Write | GupFlags.LongTerm);
        var pinned = PfnAt(machine, parent, address);

        var child = parent.Fork();
        Assert.Equal(1, machine.Stats.ForkPinnedCopies);
        Assert.Equal(pinned, PfnAt(machine, parent, address));
        Assert.NotEqual(pinned, PfnAt(machine, child, address));
        Assert.Equal(1UL, cpu.Read(child, address));
        machine.CheckInvariants();

        // The parent's next store needs no fault, and the device and the parent keep seeing each other.
        var faults = machine.Stats.WriteProtectFaults;
        cpu.Write(parent, address, 2);
        Assert.Equal(faults, machine.Stats.WriteProtectFaults);
        Assert.Equal(2UL, pin.Read(0, 0));
        pin.Write(0, 0, 3);
        Assert.Equal(3UL, cpu.Read(parent, address));
        Assert.Equal(1UL, cpu.Read(child, address));
        cpu.Write(child, address, 4);
        Assert.Equal(3UL, pin.Read(0, 0));
        machine.CheckInvariants();
    }

    [Fact]
    public void AReadOnlyPinOfASharedPageUnsharesItSoThePinSeesTheProcesssLaterStores()
    {
        using var machine = Small();
        var (parent, address) = WrittenAnonymous(machine, 1);
        var cpu = machine.Cpus[0];
        var child = parent.Fork();
        var shared = PfnAt(machine, parent, address);
        Assert.False(machine.Memmap.TestFlags(shared, PageFlags.AnonExclusive));

        using var pin = cpu.PinUserPages(parent, address, 1, GupFlags.LongTerm);
        var pinned = PfnAt(machine, parent, address);
        Assert.True(machine.Memmap.TestFlags(pinned, PageFlags.AnonExclusive));
        Assert.Equal(1UL, pin.Read(0, 0));
        machine.CheckInvariants();

        // The unshare left the entry read-only; the parent's store reuses the pinned page, which the pin sees.
        cpu.Write(parent, address, 2);
        Assert.Equal(pinned, PfnAt(machine, parent, address));
        Assert.Equal(2UL, pin.Read(0, 0));
        Assert.Equal(1UL, cpu.Read(child, address));
        machine.CheckInvariants();
    }

    [Fact]
    public void AReferenceTakenByTheChildNeverSeesTheParentsLaterStores()
    {
        // CVE-2020-29374 with the modern rule: the child vmsplices the page and unmaps it; the parent's write copies.
        using var machine = Small();
        var (parent, address) = WrittenAnonymous(machine, 1);
        var cpu = machine.Cpus[0];
        var child = parent.Fork();
        using var reference = cpu.GetUserPages(child, address, 1, GupFlags.None);
        child.Munmap(address, Page);
        cpu.Write(parent, address, 2);
        Assert.Equal(1UL, reference.Read(0, 0));
        Assert.Equal(1, machine.Stats.CowCopies);
        machine.CheckInvariants();
    }

    [Fact]
    public void WhatADeviceWroteThroughAPinnedFilePageIsWrittenBackAfterTheUnpin()
    {
        using var machine = Small();
        var file = machine.CreateFile("data", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 1);
        machine.Writeback(file);
        using (var pin = cpu.PinUserPages(process, address, 1, GupFlags.Write))
        {
            pin.Write(0, 3, 42);
        }

        machine.CheckInvariants();
        machine.Writeback(file);
        Assert.Equal(42UL, file.ReadStored(24));
        machine.CheckInvariants();
    }

    [Fact]
    public void APinOutlivesItsProcessAndTheFrameIsFreedAtTheUnpin()
    {
        using var machine = Small();
        var initial = machine.FreeFrames;
        var (process, address) = WrittenAnonymous(machine, 6);
        var cpu = machine.Cpus[0];
        var pin = cpu.PinUserPages(process, address, 1, GupFlags.Write);
        process.Dispose();
        machine.CheckInvariants();
        Assert.Equal(6UL, pin.Read(0, 0));
        pin.Dispose();
        machine.CheckInvariants();
        Assert.Equal(initial, machine.FreeFrames);
    }

    [Fact]
    public void PokeDataWritesAReadOnlyPrivateMappingsOwnCopyAndNeverTheFile()
    {
        using var machine = Small();
        var file = machine.CreateFile("text", (long)Page);
        var writer = machine.CreateProcess();
        var shared = writer.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var cpu = machine.Cpus[0];
        cpu.Write(writer, shared, 1);
        machine.Writeback(file);

        var traced = machine.CreateProcess();
        var text = traced.Mmap(Page, Prot.Read, MapFlags.Private, file, 0);
        Assert.Equal(1UL, cpu.Read(traced, text));
        Assert.Throws<SegmentationFault>(() => cpu.Write(traced, text, 5));

        cpu.PokeData(traced, text, 7);
        Assert.Equal(7UL, cpu.Read(traced, text));
        Assert.Equal(1UL, cpu.Read(writer, shared));
        var copy = PfnAt(machine, traced, text);
        Assert.True(machine.Memmap.TestFlags(copy, PageFlags.Anon | PageFlags.AnonExclusive));

        // The copy stays read-only for the process; a second poke reuses it.
        Assert.Throws<SegmentationFault>(() => cpu.Write(traced, text, 8));
        cpu.PokeData(traced, text + 8, 9);
        Assert.Equal(copy, PfnAt(machine, traced, text));
        Assert.Equal(9UL, cpu.Read(traced, text + 8));
        machine.Writeback(file);
        Assert.Equal(1UL, file.ReadStored(0));
        Assert.Equal(0UL, file.ReadStored(8));
        machine.CheckInvariants();

        // A shared read-only mapping cannot be poked (FOLL_FORCE never writes a file), nor an unaligned address.
        var sharedText = traced.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        Assert.Equal(SegmentationFaultReason.Protection, Assert.Throws<SegmentationFault>(() => cpu.PokeData(traced, sharedText, 3)).Reason);
        Assert.Throws<ArgumentException>(() => cpu.PokeData(traced, text + 4, 3));
        Assert.Equal(1UL, cpu.Read(writer, shared));
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ALongTermReadOnlyPinOfAPrivateFilePageSeesTheProcesssLaterStoresOnlySinceLinux62(bool reliable)
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 256, ReliableLongTermReadOnlyPins = reliable });
        var file = machine.CreateFile("memfd", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        var cpu = machine.Cpus[0];
        Assert.Equal(0UL, cpu.Read(process, address));
        var cached = PfnAt(machine, process, address);
        Assert.False(machine.Memmap.TestFlags(cached, PageFlags.Anon));

        using var pin = cpu.PinUserPages(process, address, 1, GupFlags.LongTerm);
        var pinned = PfnAt(machine, process, address);
        Assert.Equal(reliable, pinned != cached);
        machine.CheckInvariants();

        // Since 6.2 the pin holds an exclusive anonymous copy, mapped read-only, which the store reuses; before, the
        // pin held the page-cache page and the store copied away from it.
        cpu.Write(process, address, 5);
        Assert.Equal(reliable ? 5UL : 0UL, pin.Read(0, 0));
        Assert.Equal(reliable, PfnAt(machine, process, address) == pinned);
        machine.Writeback(file);
        Assert.Equal(0UL, file.ReadStored(0));
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ALongTermReadOnlyPinOfTheZeroPageSeesTheProcesssLaterStoresOnlySinceLinux62(bool reliable)
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 256, ReliableLongTermReadOnlyPins = reliable });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        Assert.Equal(0UL, cpu.Read(process, address));
        Assert.Equal(-1, PfnAt(machine, process, address)); // the zero page's special entry

        // A short-term pin may hold the zero page; a long-term one, since 6.2, unshares it.
        using (var shortTerm = cpu.PinUserPages(process, address, 1, GupFlags.None))
        {
            Assert.Equal(-1, PfnAt(machine, process, address));
        }

        using var pin = cpu.PinUserPages(process, address, 1, GupFlags.LongTerm);
        Assert.Equal(reliable, PfnAt(machine, process, address) != -1);
        machine.CheckInvariants();
        cpu.Write(process, address, 9);
        Assert.Equal(reliable ? 9UL : 0UL, pin.Read(0, 0));
        machine.CheckInvariants();
    }

    [Fact]
    public void ALongTermReadOnlyPinOfASharedFileMappingTakesThePageCachePage()
    {
        using var machine = Small();
        var file = machine.CreateFile("shared", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var cpu = machine.Cpus[0];
        cpu.Write(process, address, 4);
        var cached = PfnAt(machine, process, address);
        using var pin = cpu.PinUserPages(process, address, 1, GupFlags.LongTerm);
        Assert.Equal(cached, PfnAt(machine, process, address));
        cpu.Write(process, address, 8);
        Assert.Equal(8UL, pin.Read(0, 0));
        machine.CheckInvariants();
    }

    [Fact]
    public void PinningIntoTheCallersArrayAllocatesNothingAndASecondUnpinThrowsAndChangesNothing()
    {
        using var machine = Small();
        var process = machine.CreateProcess();
        var address = process.Mmap(8 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        for (var i = 0UL; i < 8; i++)
        {
            cpu.Write(process, address + (i * Page), i + 1);
        }

        var frames = new long[8];
        Assert.Equal(8, cpu.PinUserPages(process, address, frames, GupFlags.Write | GupFlags.LongTerm));
        for (var i = 0; i < 8; i++)
        {
            Assert.Equal(PfnAt(machine, process, address + ((ulong)i * Page)), frames[i]);
            Assert.True(machine.Memmap.MaybeDmaPinned(frames[i]));
        }

        machine.CheckInvariants();
        cpu.UnpinUserPages(frames, dirty: true);
        machine.CheckInvariants();
        var counts = frames.Select(f => machine.Memmap.PageCount(f)).ToArray();
        Assert.Throws<InvalidOperationException>(() => cpu.UnpinUserPages(frames, dirty: false));
        Assert.Equal(counts, frames.Select(f => machine.Memmap.PageCount(f)));
        Assert.Throws<InvalidOperationException>(() => cpu.UnpinUserPages([-5], dirty: false));
        machine.CheckInvariants();

        // Steady state: GUP-fast pin and unpin of mapped pages allocate nothing.
        cpu.UnpinUserPages(frames.AsSpan(0, cpu.PinUserPages(process, address, frames, GupFlags.Write)), dirty: false);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var round = 0; round < 100; round++)
        {
            var pinned = cpu.PinUserPages(process, address, frames, GupFlags.Write);
            cpu.UnpinUserPages(frames.AsSpan(0, pinned), dirty: false);
        }

        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.True(machine.Stats.GupFastPages >= 800, $"{machine.Stats.GupFastPages} pages went through GUP-fast");
        machine.CheckInvariants();
    }
}
