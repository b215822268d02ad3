using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Swap;

/// <summary>
/// Reclaim of page-cache pages: clean ones are unmapped and dropped, dirty ones written back first, pinned ones kept;
/// a later access reads the page from the file again. Works without swap, and direct reclaim uses it too.
/// </summary>
public sealed class FileReclaimTests
{
    private static Engine.Machine Small(int frames = 128, int? swapSlots = null, bool freezeFirst = true)
        => new(new MachineOptions { Cpus = 2, Frames = frames, SwapSlots = swapSlots, FreezeBeforeDirtyTest = freezeFirst });

    [Fact]
    public void CleanMappedFilePagesAreDroppedAndReadAgainFromTheFile()
    {
        using var machine = Small(swapSlots: 0);
        var file = machine.CreateFile("clean", 8 * (long)Page);
        var writer = machine.CreateProcess();
        var shared = writer.Mmap(8 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        for (var i = 0UL; i < 8; i++)
        {
            machine.Cpus[0].Write(writer, shared + (i * Page), 50 + i);
        }

        machine.Writeback(file);
        var reader = machine.CreateProcess();
        var priv = reader.Mmap(8 * Page, Prot.Read, MapFlags.Private, file, 0);
        Assert.Equal(50UL, machine.Cpus[1].Read(reader, priv));
        var fills = machine.Stats.PageCacheFills;
        var free = machine.FreeFrames;

        Assert.Equal(8, machine.Reclaim(8));
        Assert.Equal(free + 8, machine.FreeFrames);
        Assert.Equal(8, machine.Stats.ReclaimFileDrops);
        Assert.False(EntryAt(machine, writer, shared).IsPresent);
        Assert.False(EntryAt(machine, reader, priv).IsPresent);
        machine.CheckInvariants();

        for (var i = 0UL; i < 8; i++)
        {
            Assert.Equal(50 + i, machine.Cpus[1].Read(reader, priv + (i * Page)));
            Assert.Equal(50 + i, machine.Cpus[0].Read(writer, shared + (i * Page)));
        }

        Assert.Equal(fills + 8, machine.Stats.PageCacheFills);
        machine.CheckInvariants();
    }

    [Fact]
    public void DirtySharedPagesAreWrittenBackBeforeTheyAreDropped()
    {
        using var machine = Small(swapSlots: 0);
        var file = machine.CreateFile("dirty", 4 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(4 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        for (var i = 0UL; i < 4; i++)
        {
            machine.Cpus[0].Write(process, address + (i * Page) + 8, 70 + i);
        }

        // Never written back by hand: reclaim's pageout is what puts the data in the file.
        Assert.Equal(0UL, file.ReadStored(8));
        Assert.Equal(4, machine.Reclaim(4));
        Assert.Equal(4, machine.Stats.PagesWrittenBack);
        for (var i = 0UL; i < 4; i++)
        {
            Assert.Equal(70 + i, file.ReadStored(((long)i * (long)Page) + 8));
            Assert.Equal(70 + i, machine.Cpus[1].Read(process, address + (i * Page) + 8));
        }

        machine.CheckInvariants();
    }

    [Fact]
    public void APinnedFilePageStaysInTheCacheAndCoherent()
    {
        using var machine = Small();
        var file = machine.CreateFile("pinned", 2 * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        machine.Cpus[0].Write(process, address, 1);
        machine.Cpus[0].Write(process, address + Page, 2);
        using (var pin = machine.Cpus[0].PinUserPages(process, address, 1, GupFlags.Write | GupFlags.LongTerm))
        {
            // The unpinned page goes; the pinned one stays, mapped.
            Assert.Equal(1, machine.Reclaim(2));
            Assert.True(machine.Stats.ReclaimKeptPinned > 0);
            Assert.True(EntryAt(machine, process, address).IsPresent);
            Assert.False(EntryAt(machine, process, address + Page).IsPresent);
            pin.Write(0, 1, 9);
            Assert.Equal(9UL, machine.Cpus[1].Read(process, address + 8));
            Assert.Equal(2UL, machine.Cpus[1].Read(process, address + Page));
            machine.CheckInvariants();
        }

        machine.Writeback(file);
        Assert.Equal(9UL, file.ReadStored(8));
        machine.CheckInvariants();
    }

    /// <summary>
    /// A file twice the machine's memory written through a shared mapping and read back, with no swap at all: direct
    /// reclaim writes the dirty pages back and drops them, and the faults read them in again.
    /// </summary>
    [Fact]
    public void AFileTwiceMemoryIsWrittenAndReadBackWithoutSwap()
    {
        using var machine = Small(frames: 64, swapSlots: 0);
        const int Pages = 128;
        var file = machine.CreateFile("big", Pages * (long)Page);
        var process = machine.CreateProcess();
        var address = process.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
        for (var i = 0UL; i < Pages; i++)
        {
            machine.Cpus[(int)(i % 2)].Write(process, address + (i * Page), 0xF00 + i);
        }

        for (var i = 0UL; i < Pages; i++)
        {
            Assert.Equal(0xF00 + i, machine.Cpus[(int)((i + 1) % 2)].Read(process, address + (i * Page)));
        }

        Assert.True(machine.Stats.ReclaimFileDrops >= Pages, $"{machine.Stats.ReclaimFileDrops} file pages dropped");
        Assert.True(machine.Stats.PagesWrittenBack >= Pages - 64, $"{machine.Stats.PagesWrittenBack} pages written back");
        machine.CheckInvariants();
        process.Dispose();
        machine.Writeback(file);
        for (var i = 0L; i < Pages; i++)
        {
            Assert.Equal(0xF00 + (ulong)i, file.ReadStored(i * (long)Page));
        }

        machine.CheckInvariants();
    }

    /// <summary>
    /// A direct-I/O read into file pages (GUP references with write access) completes page by page while kswapd reclaims
    /// them: the data always reaches the file, whichever order <c>__remove_mapping</c> tests dirty and freezes in. Unlike
    /// a swap-cache page (zoo entry 11), a page-cache page is dirtied by its GUP user under the page lock
    /// (<c>set_page_dirty_lock</c>), which reclaim holds from before its dirty test until the page is gone, so the
    /// window of the old order is closed here by the lock. The guard: in some schedule reclaim freed a page that the
    /// I/O had dirtied and released, and pageout had written it.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DirectIoIntoFilePagesSurvivesReclaimInEitherOrder(bool freezeFirst)
    {
        var released = 0;
        AssertClean(TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false), () =>
        {
            const int Pages = 2;
            using var machine = Small(frames: 64, swapSlots: 0, freezeFirst: freezeFirst);
            var file = machine.CreateFile("io", Pages * (long)Page);
            var process = machine.CreateProcess();
            var address = process.Mmap(Pages * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
            var io = new PageReferences[Pages];
            for (var i = 0; i < Pages; i++)
            {
                Specification.Assert(machine.Cpus[0].Read(process, address + ((ulong)i * Page)) == 0, "a fresh file reads zero");
                io[i] = machine.Cpus[0].GetUserPages(process, address + ((ulong)i * Page), 1, GupFlags.Write);
            }

            var done = new int[1];
            var device = ControlledThread.Start(() =>
            {
                for (var i = 0; i < Pages; i++)
                {
                    io[i].Write(0, 0, 0xD10 + (ulong)i);
                    io[i].Dispose();
                }

                Volatile.Write(ref done[0], 1);
            }, "direct-io");
            var freed = 0;
            for (var round = 0; round < 6 && Volatile.Read(ref done[0]) == 0; round++)
            {
                freed += machine.Reclaim(Pages);
            }

            device.Join();
            if (freed > 0 && machine.Stats.PagesWrittenBack > 0)
            {
                released++;
            }

            for (var i = 0; i < Pages; i++)
            {
                var word = machine.Cpus[1].Read(process, address + ((ulong)i * Page));
                Specification.Assert(word == 0xD10 + (ulong)i, $"file page {i} reads 0x{word:x}: reclaim dropped it after the direct I/O dirtied it");
            }

            AssertInvariants(machine);
        }));
        Assert.True(released > 0, "reclaim never freed a page the I/O had dirtied");
    }

    /// <summary>
    /// kswapd reclaims a shared file mapping's pages while a CPU stores to them (its TLB may hold a writable
    /// translation reclaim has cleared and not yet flushed): every store reaches the file, through pageout or a later
    /// writeback. The guard: some schedule wrote a page back from reclaim and dropped it.
    /// </summary>
    [Fact]
    public void StoresRacingFileReclaimReachTheFile()
    {
        var dropped = 0;
        AssertClean(TestingEngine.Run(Configuration.Create().WithTestingIterations(1_000).WithTraceFiles(false), () =>
        {
            using var machine = Small(frames: 64, swapSlots: 0);
            var file = machine.CreateFile("racing", 2 * (long)Page);
            var process = machine.CreateProcess();
            var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Shared, file, 0);
            machine.Cpus[0].Write(process, address, 1);
            machine.Cpus[0].Write(process, address + Page, 2);
            var kswapd = ControlledThread.Start(() => machine.Reclaim(2), "kswapd");
            machine.Cpus[0].Write(process, address, 3);
            machine.Cpus[0].Write(process, address + Page + 8, 4);
            kswapd.Join();
            dropped += machine.Stats.ReclaimFileDrops > 0 && machine.Stats.PagesWrittenBack > 0 ? 1 : 0;
            Specification.Assert(machine.Cpus[1].Read(process, address) == 3, "page 0 lost the store made during reclaim");
            Specification.Assert(machine.Cpus[1].Read(process, address + Page + 8) == 4, "page 1 lost the store made during reclaim");
            machine.Writeback(file);
            Specification.Assert(file.ReadStored(0) == 3 && file.ReadStored((long)Page) == 2 && file.ReadStored((long)Page + 8) == 4, "the file lost a store");
            AssertInvariants(machine);
        }));
        Assert.True(dropped > 0, "reclaim never wrote back and dropped a page");
    }

    private static Engine.PageTables.Pte EntryAt(Engine.Machine machine, Process process, ulong address)
    {
        var table = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
        return machine.Ptes.PtepGet(table, Engine.PageTables.PageTableSet.Index(address, 1));
    }
}
