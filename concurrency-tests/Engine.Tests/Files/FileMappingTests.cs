namespace Engine.Tests.Files;

/// <summary>
/// Single-threaded behaviour of file mappings (issue 4): the page cache, shared and private mappings, write-notify,
/// writeback through the rmap, eviction, fork, and bad input. Invariants are checked after every step.
/// </summary>
public sealed class FileMappingTests
{
    private const ulong Page = 4096;

    public static TheoryData<PteLayout> Layouts => new(PteLayout.Native64, PteLayout.SplitPae);

    private static Engine.Machine Small(PteLayout layout = PteLayout.Native64) => new(new MachineOptions { Cpus = 2, Frames = 256, PteLayout = layout });

    [Theory]
    [MemberData(nameof(Layouts))]
    public void AStoreThroughASharedMappingReachesTheBackingStoreOnWriteback(PteLayout layout)
    {
        using var machine = Small(layout);
        var file = machine.CreateFile("data", 4 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address + Page + 16, 42);

        Assert.Equal(0UL, file.ReadStored((long)Page + 16));
        machine.CheckInvariants();
        machine.Writeback(file);
        Assert.Equal(42UL, file.ReadStored((long)Page + 16));
        Assert.Equal(1, machine.Stats.PagesWrittenBack);
        Assert.Equal(1, machine.Stats.FileSharedWriteFaults);
        machine.CheckInvariants();

        // Nothing is dirty any more: a second writeback writes nothing.
        machine.Writeback(file);
        Assert.Equal(1, machine.Stats.PagesWrittenBack);
    }

    [Fact]
    public void AReadFaultMapsTheCachePageReadOnlySoTheFirstStoreFaultsAndDirtiesIt()
    {
        using var machine = Small();
        var file = machine.CreateFile("notify", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        Assert.Equal(0UL, machine.Cpus[0].Read(process, address));
        Assert.Equal(1, machine.Stats.FileReadFaults);
        Assert.Equal(1, machine.Stats.PageCacheFills);

        // Clean and mapped read-only: writeback has nothing to do.
        machine.Writeback(file);
        Assert.Equal(0, machine.Stats.PagesWrittenBack);

        machine.Cpus[0].Write(process, address, 7);
        Assert.Equal(1, machine.Stats.FileSharedWriteFaults);
        machine.CheckInvariants();
        machine.Writeback(file);
        Assert.Equal(7UL, file.ReadStored(0));
    }

    [Fact]
    public void WritebackWriteProtectsTheEntrySoALaterStoreFaultsAndIsWrittenNextTime()
    {
        using var machine = Small();
        var file = machine.CreateFile("again", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var cpu = machine.Cpus[1];
        cpu.Write(process, address, 1);
        machine.Writeback(file);
        Assert.Equal(1UL, file.ReadStored(0));

        cpu.Write(process, address, 2);
        Assert.Equal(2, machine.Stats.FileSharedWriteFaults);
        machine.CheckInvariants();
        machine.Writeback(file);
        Assert.Equal(2UL, file.ReadStored(0));
        Assert.Equal(2, machine.Stats.PagesWrittenBack);
    }

    [Fact]
    public void TwoProcessesMappingAFileSharedSeeEachOthersStoresThroughOnePage()
    {
        using var machine = Small();
        var file = machine.CreateFile("shared", 2 * (long)Page);
        var a = machine.CreateProcess();
        var b = machine.CreateProcess();
        var inA = a.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var inB = b.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, (long)Page);
        machine.Cpus[0].Write(a, inA + Page + 8, 5);
        Assert.Equal(5UL, machine.Cpus[1].Read(b, inB + 8));
        machine.Cpus[1].Write(b, inB + 8, 6);
        Assert.Equal(6UL, machine.Cpus[0].Read(a, inA + Page + 8));
        Assert.Equal(1, machine.Stats.PageCacheFills);
        machine.CheckInvariants();
        machine.Writeback(file);
        Assert.Equal(6UL, file.ReadStored((long)Page + 8));
    }

    [Fact]
    public void APrivateMappingReadsTheFileButItsStoresStayPrivate()
    {
        using var machine = Small();
        var file = machine.CreateFile("private", (long)Page);
        var writer = machine.CreateProcess();
        var shared = writer.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(writer, shared, 11);

        var reader = machine.CreateProcess();
        var copy = reader.Mmap(Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        Assert.Equal(11UL, machine.Cpus[1].Read(reader, copy));
        machine.Cpus[1].Write(reader, copy, 12);
        Assert.Equal(12UL, machine.Cpus[1].Read(reader, copy));
        Assert.Equal(11UL, machine.Cpus[0].Read(writer, shared));
        Assert.Equal(1, machine.Stats.CowCopies);
        machine.CheckInvariants();

        // The copy is anonymous memory now: the shared writer's later stores do not reach it.
        machine.Cpus[0].Write(writer, shared, 13);
        Assert.Equal(12UL, machine.Cpus[1].Read(reader, copy));
        machine.Writeback(file);
        Assert.Equal(13UL, file.ReadStored(0));
        reader.Dispose();
        writer.Dispose();
        machine.CheckInvariants();
    }

    [Fact]
    public void AFirstStoreToAPrivateMappingCopiesWithoutMappingTheCachePage()
    {
        using var machine = Small();
        var file = machine.CreateFile("cow", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private, file, 0);
        machine.Cpus[0].Write(process, address, 3);
        Assert.Equal(1, machine.Stats.FilePrivateWriteFaults);
        Assert.Equal(1, machine.Stats.PageCacheFills);
        machine.CheckInvariants();
        machine.Writeback(file);
        Assert.Equal(0UL, file.ReadStored(0));

        // The cache page is unmapped and clean: it can go; the private copy stays.
        Assert.Equal(1, machine.EvictCleanPages(file));
        Assert.Equal(3UL, machine.Cpus[0].Read(process, address));
        machine.CheckInvariants();
    }

    [Fact]
    public void MunmapOfADirtyEntryDirtiesThePageAndEvictionKeepsOnlyWhatWasWrittenBack()
    {
        using var machine = Small();
        var initial = machine.FreeFrames;
        var file = machine.CreateFile("evict", 2 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address, 21);
        machine.Cpus[0].Write(process, address + Page, 22);
        process.Munmap(address, 2 * Page);
        machine.CheckInvariants();

        // Dirty pages are never evicted; after writeback they are.
        Assert.Equal(0, machine.EvictCleanPages(file));
        machine.Writeback(file);
        Assert.Equal(21UL, file.ReadStored(0));
        Assert.Equal(22UL, file.ReadStored((long)Page));
        Assert.Equal(2, machine.EvictCleanPages());
        Assert.Equal(2, machine.Stats.PagesEvicted);
        machine.CheckInvariants();

        // A new mapping reads the data back from the backing store.
        var again = process.Mmap(2 * Page, Prot.Read, MapFlags.Shared, file, 0);
        Assert.Equal(22UL, machine.Cpus[1].Read(process, again + Page));
        Assert.Equal(3, machine.Stats.PageCacheFills);
        process.Dispose();
        machine.EvictCleanPages();
        machine.CheckInvariants();
        Assert.Equal(initial, machine.FreeFrames);
    }

    [Fact]
    public void AMappedPageIsNotEvicted()
    {
        using var machine = Small();
        var file = machine.CreateFile("mapped", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.Read, MapFlags.Shared, file, 0);
        machine.Cpus[0].Read(process, address);
        Assert.Equal(0, machine.EvictCleanPages(file));
        process.Munmap(address, Page);
        Assert.Equal(1, machine.EvictCleanPages(file));
        machine.CheckInvariants();
    }

    [Fact]
    public void AForkedChildSharesASharedFileMappingAndCopiesAPrivateOne()
    {
        using var machine = Small();
        var file = machine.CreateFile("fork", 2 * (long)Page);
        var parent = machine.CreateProcess();
        var shared = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var privately = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private, file, (long)Page);
        machine.Cpus[0].Write(parent, shared, 1);
        machine.Cpus[0].Write(parent, privately, 2);
        var child = parent.Fork();
        machine.CheckInvariants();

        machine.Cpus[1].Write(child, shared, 3);
        Assert.Equal(3UL, machine.Cpus[0].Read(parent, shared));
        machine.Cpus[1].Write(child, privately, 4);
        Assert.Equal(2UL, machine.Cpus[0].Read(parent, privately));
        Assert.Equal(4UL, machine.Cpus[1].Read(child, privately));
        machine.CheckInvariants();

        child.Dispose();
        machine.Writeback(file);
        Assert.Equal(3UL, file.ReadStored(0));
        Assert.Equal(0UL, file.ReadStored((long)Page));
        machine.CheckInvariants();
    }

    [Fact]
    public void PartialMunmapAndMprotectSplitAFileMappingAndKeepItsOffsets()
    {
        using var machine = Small();
        var file = machine.CreateFile("split", 4 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        for (ulong i = 0; i < 4; i++)
        {
            machine.Cpus[0].Write(process, address + (i * Page), 100 + i);
        }

        process.Munmap(address + Page, Page);
        process.Mprotect(address + (2 * Page), Page, Prot.Read);
        machine.CheckInvariants();
        Assert.Equal(103UL, machine.Cpus[1].Read(process, address + (3 * Page)));
        Assert.Throws<SegmentationFault>(() => machine.Cpus[1].Write(process, address + (2 * Page), 1));
        machine.Cpus[1].Write(process, address + (3 * Page), 203);
        machine.Writeback(file);
        Assert.Equal(new ulong[] { 100, 101, 102, 203 }, Enumerable.Range(0, 4).Select(i => file.ReadStored(i * (long)Page)).ToArray());
        machine.CheckInvariants();
    }

    [Fact]
    public void BadFileArgumentsThrowAndChangeNothing()
    {
        using var machine = Small();
        var file = machine.CreateFile("bad", 2 * (long)Page + 100);
        var process = machine.CreateProcess();
        Assert.Throws<ArgumentException>(() => machine.CreateFile("empty", 0));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared, file, 100));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared, file, -4096));
        Assert.Throws<ArgumentException>(() => process.Mmap(4 * Page, Prot.Read, MapFlags.Shared, file, 0));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared, file, 3 * (long)Page));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared | MapFlags.Anonymous, file, 0));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared | MapFlags.Private, file, 0));
        Assert.Throws<ArgumentException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared | MapFlags.Anonymous));
        Assert.Throws<ArgumentNullException>(() => process.Mmap(Page, Prot.Read, MapFlags.Shared, null!, 0));
        Assert.Throws<ArgumentException>(() => file.ReadStored(3));
        Assert.Throws<ArgumentException>(() => file.ReadStored(2 * (long)Page + 104));
        using var other = Small();
        Assert.Throws<ArgumentException>(() => other.Writeback(file));

        // The third page is partly inside the file: mapping all three is fine.
        var address = process.Mmap(3 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address + (2 * Page) + 96, 9);
        machine.Writeback(file);
        Assert.Equal(9UL, file.ReadStored(2 * (long)Page + 96));
        machine.CheckInvariants();
    }

    [Fact]
    public void MsyncWritesBackOnlyTheSharedPagesOfItsRange()
    {
        using var machine = Small();
        var file = machine.CreateFile("data", (long)(4 * Page));
        var other = machine.CreateFile("other", (long)Page);
        var process = machine.CreateProcess();
        var shared = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        var cpu = machine.Cpus[0];
        for (ulong i = 0; i < 4; i++)
        {
            cpu.Write(process, shared + (i * Page), i + 1);
        }

        // Pages 1 and 2 only.
        process.Msync(shared + Page, 2 * Page);
        Assert.Equal([0UL, 2UL, 3UL, 0UL], Enumerable.Range(0, 4).Select(i => file.ReadStored(i * (long)Page)));
        Assert.Equal(2, machine.Stats.PagesWrittenBack);

        // A private mapping has nothing to write back: its copy stays out of the file.
        var privateMap = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private, other, 0);
        cpu.Write(process, privateMap, 5);
        process.Msync(privateMap, Page);
        Assert.Equal(0UL, other.ReadStored(0));

        // The rest, then a store after the write-protect goes out with the next msync.
        process.Msync(shared, 4 * Page);
        cpu.Write(process, shared, 10);
        process.Msync(shared, Page);
        Assert.Equal([10UL, 2UL, 3UL, 4UL], Enumerable.Range(0, 4).Select(i => file.ReadStored(i * (long)Page)));
        machine.CheckInvariants();
    }

    [Fact]
    public void MsyncOfAnUnmappedRangeOrAfterExitThrowsAndChangesNothing()
    {
        using var machine = Small();
        var file = machine.CreateFile("data", (long)(2 * Page));
        var process = machine.CreateProcess();
        var shared = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, shared, 1);
        Assert.Throws<ArgumentException>(() => process.Msync(shared, 2 * Page));
        Assert.Throws<ArgumentException>(() => process.Msync(shared + 1, Page));
        Assert.Throws<ArgumentException>(() => process.Msync(shared, 0));
        Assert.Equal(0UL, file.ReadStored(0));
        machine.CheckInvariants();

        process.Dispose();
        Assert.Throws<ObjectDisposedException>(() => process.Msync(shared, Page));
        machine.CheckInvariants();
    }

    [Fact]
    public void TheCheckerCatchesAStoreThatReachedACleanPageWithoutDirtyingIt()
    {
        using var machine = Small();
        var file = machine.CreateFile("data", (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address + 16, 3);
        machine.Writeback(file);
        machine.CheckInvariants();

        // What a stale writable TLB entry does in the lost-dirty race: the word changes, the page stays clean.
        var pfn = Rmap.RmapProbe.PfnAt(machine, process, address);
        machine.Memory.Frame(pfn)[2] = 4;
        var violation = Assert.Throws<InvariantViolationException>(machine.CheckInvariants);
        Assert.Contains("is clean but differs from the backing store at word 2", violation.Message);

        // Dirtied through the mapping, the same contents are legitimate until the next writeback.
        machine.Cpus[0].Write(process, address + 16, 4);
        machine.CheckInvariants();
        machine.Writeback(file);
        Assert.Equal(4UL, file.ReadStored(16));
        machine.CheckInvariants();
    }
}
