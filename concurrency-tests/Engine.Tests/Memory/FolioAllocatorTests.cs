using Engine.Memory;
using Engine.Stats;
using Engine.Sync;
using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Memory;

/// <summary>
/// The allocator with a folio order: the buddy system's alignment, splitting and merging, folios' refcounts, the
/// order-0 caches on top of it, and the drain that lets cached frames merge back into a folio.
/// </summary>
public sealed class FolioAllocatorTests
{
    private const long Base = 1L << 20;

    [Theory]
    [InlineData(0, 64, 3)]
    [InlineData(3, 64, 3)]
    [InlineData(5, 200, 4)]
    public void EveryFolioIsNaturallyAlignedContiguousZeroedAndHeldByItsHeadAlone(long offset, int frames, int order)
    {
        var basePfn = Base + offset;
        var (memmap, memory, allocator) = Create(frames, cpus: 1, order, basePfn);
        var size = 1 << order;

        // Dirty every frame first: order-0 owners write to them and free them (poisoned), so a folio's frames are
        // zero only if the folio allocation cleared them.
        var pages = TakeAllPages(allocator, cpu: -1);
        foreach (var pfn in pages)
        {
            memory.Word(pfn, 3) = 0xDEAD;
            memmap.PutPageTestZero(pfn);
        }

        allocator.FreePages(-1, pages.ToArray());

        var expected = Enumerable.Range(0, frames).Count(i => (basePfn + i) % size == 0 && basePfn + i + size <= basePfn + frames);
        Assert.Equal(expected, allocator.FreeFolios);
        var seen = new HashSet<long>();
        long head;
        while ((head = allocator.AllocateFolio(0)) >= 0)
        {
            Assert.Equal(0, head % size);
            Assert.True(memmap.Contains(head) && memmap.Contains(head + size - 1), $"folio 0x{head:x} is not inside the memmap");
            Assert.Equal(1, memmap.PageCount(head));
            for (var pfn = head; pfn < head + size; pfn++)
            {
                Assert.True(seen.Add(pfn), $"pfn 0x{pfn:x} is in two folios");
                Assert.True(memory.Frame(pfn).IndexOfAnyExcept(0UL) < 0, $"pfn 0x{pfn:x} is not zeroed");
                Assert.Equal(0, memmap.MapCount(pfn));
                Assert.Equal(PageFlags.None, memmap.GetFlags(pfn));
                if (pfn != head)
                {
                    Assert.Equal(0, memmap.PageCount(pfn));
                }
            }
        }

        Assert.Equal(expected * size, seen.Count);
        Assert.Equal(frames - seen.Count, allocator.FreeFrames);
    }

    [Fact]
    public void ExhaustionReturnsMinusOneAndOrderZeroStillWorksFromTheLeftovers()
    {
        // Frames 0x...03 to 0x...42: the aligned blocks of 8 are 0x08 to 0x3f; 0x03–0x07 and 0x40–0x42 are leftovers.
        var (memmap, _, allocator) = Create(frames: 64, cpus: 2, order: 3, basePfn: Base + 3);
        var folios = new List<long>();
        long head;
        while ((head = allocator.AllocateFolio(0)) >= 0)
        {
            folios.Add(head);
        }

        Assert.Equal(7, folios.Count);
        Assert.Equal(-1, allocator.AllocateFolio(1));
        Assert.Equal(0, allocator.FreeFolios);
        Assert.Equal(8, allocator.FreeFrames);
        Assert.Equal(0, allocator.RemoteDrains);

        var leftovers = new HashSet<long>(TakeAllPages(allocator, cpu: 1));
        var expected = new HashSet<long> { Base + 3, Base + 4, Base + 5, Base + 6, Base + 7, Base + 0x40, Base + 0x41, Base + 0x42 };
        Assert.Equal(expected, leftovers);
        Assert.Equal(0, allocator.FreeFrames);

        // With no folio and no cached frame, the allocation fails without draining anything.
        Assert.Equal(-1, allocator.AllocateFolio(0));
        Assert.Equal(0, allocator.RemoteDrains);

        // One folio back: it is the one handed out next.
        memmap.PutPageTestZero(folios[3]);
        allocator.FreeFolio(0, folios[3]);
        Assert.Equal(8, allocator.FreeFrames);
        Assert.Equal(folios[3], allocator.AllocateFolio(1));
    }

    [Fact]
    public void FreedFramesMergeBackIntoFoliosSoEveryFolioCanBeAllocatedAgain()
    {
        const int frames = 256;
        const int order = 3;
        var (memmap, _, allocator) = Create(frames, cpus: 1, order);
        var all = frames >> order;

        var folios = TakeAllFolios(allocator, cpu: 0);
        Assert.Equal(all, folios.Count);
        foreach (var head in folios)
        {
            memmap.PutPageTestZero(head);
            allocator.FreeFolio(0, head);
        }

        Assert.Equal(all, allocator.FreeFolios);

        // Split every folio into single frames, then free them in a scrambled order: only merging rebuilds the folios.
        var pages = TakeAllPages(allocator, cpu: -1);
        Assert.Equal(frames, pages.Count);
        Assert.Equal(0, allocator.FreeFolios);
        foreach (var pfn in pages.OrderBy(p => (p * 0x9E37_79B9L) & 0xFFFF))
        {
            memmap.PutPageTestZero(pfn);
            allocator.FreePage(-1, pfn);
        }

        Assert.Equal(all, allocator.FreeFolios);
        Assert.Equal(all, TakeAllFolios(allocator, cpu: 0).Count);
        Assert.Equal(0, allocator.FreeFrames);
    }

    [Fact]
    public void InterleavedPagesAndFoliosNeverShareAFrameAndFreeFramesStaysExact()
    {
        const int frames = 512;
        const int order = 2;
        var (memmap, _, allocator) = Create(frames, cpus: 2, order);
        var owner = new int[frames];
        var pages = new List<(long Pfn, int Cpu)>();
        var folios = new List<(long Head, int Cpu)>();
        var held = 0;
        var random = new Random(7);
        var (foliosTaken, foliosRefused) = (0, 0);

        void Own(long pfn, int size)
        {
            for (var i = 0; i < size; i++)
            {
                Assert.True(owner[pfn + i - Base]++ == 0, $"pfn 0x{pfn + i:x} handed out twice");
            }

            held += size;
        }

        void Disown(long pfn, int size)
        {
            for (var i = 0; i < size; i++)
            {
                owner[pfn + i - Base] = 0;
            }

            held -= size;
        }

        for (var step = 0; step < 20_000; step++)
        {
            var cpu = random.Next(3) - 1;
            switch (random.Next(4))
            {
                case 0 when held < frames - 40:
                    var pfn = allocator.AllocatePage(cpu);
                    Assert.True(pfn >= 0, "no frame although many are free");
                    Own(pfn, 1);
                    pages.Add((pfn, cpu));
                    break;
                case 1 when held < frames - 40:
                    var head = allocator.AllocateFolio(Math.Max(cpu, 0));
                    if (head < 0)
                    {
                        foliosRefused++;
                        break;
                    }

                    foliosTaken++;
                    Own(head, 1 << order);
                    folios.Add((head, cpu));
                    break;
                case 2 when pages.Count > 0:
                    var page = pages[random.Next(pages.Count)];
                    pages.Remove(page);
                    Disown(page.Pfn, 1);
                    memmap.PutPageTestZero(page.Pfn);
                    allocator.FreePage(cpu, page.Pfn);
                    break;
                case 3 when folios.Count > 0:
                    var folio = folios[random.Next(folios.Count)];
                    folios.Remove(folio);
                    Disown(folio.Head, 1 << order);
                    memmap.PutPageTestZero(folio.Head);
                    allocator.FreeFolio(cpu, folio.Head);
                    break;
            }

            Assert.Equal(frames - held, allocator.FreeFrames);
            if (step % 500 == 0)
            {
                var free = allocator.FreeList().ToList();
                Assert.Equal(frames - held, free.Count);
                Assert.All(free, p => Assert.Equal(0, owner[p - Base]));
            }
        }

        Assert.True(foliosTaken > 100 && foliosRefused > 0, $"{foliosTaken} folios taken, {foliosRefused} refused: the mix did not reach both outcomes");

        foreach (var (pfn, cpu) in pages)
        {
            memmap.PutPageTestZero(pfn);
            allocator.FreePage(cpu, pfn);
        }

        foreach (var (head, cpu) in folios)
        {
            memmap.PutPageTestZero(head);
            allocator.FreeFolio(cpu, head);
        }

        allocator.DrainAllPages(-1);
        Assert.Equal(frames, allocator.FreeFrames);
        Assert.Equal(frames, allocator.FreeList().Distinct().Count());
        Assert.Equal(frames >> order, allocator.FreeFolios);
    }

    [Fact]
    public void ReservedFramesAreNeverHandedOutAndBreakOnlyTheirOwnBlocks()
    {
        var reserved = new HashSet<long> { Base, Base + 13 };
        var (_, _, allocator) = Create(frames: 64, cpus: 1, order: 3, reserved: reserved);
        Assert.Equal(62, allocator.FreeFrames);
        Assert.Equal(6, allocator.FreeFolios);

        var folios = TakeAllFolios(allocator, cpu: 0);
        Assert.Equal(Enumerable.Range(2, 6).Select(i => Base + (8 * i)), folios.Order());
        var pages = TakeAllPages(allocator, cpu: 0);
        Assert.Equal(14, pages.Count);
        Assert.DoesNotContain(Base, pages);
        Assert.DoesNotContain(Base + 13, pages);
        Assert.Equal(0, allocator.FreeFrames);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void ACpusCachedFramesAreDrainedBackSoAFolioCanForm(int allocatingCpu)
    {
        // 32 frames, four folios of 8. CPU 0's first allocation refills its cache with a batch of 31, splitting every
        // folio; it frees the frame back to its cache, so the buddy holds one frame and no folio.
        var (memmap, _, allocator) = Create(frames: 32, cpus: 2, order: 3);
        var pfn = allocator.AllocatePage(0);
        memmap.PutPageTestZero(pfn);
        allocator.FreePage(0, pfn);
        Assert.Equal(0, allocator.FreeFolios);
        Assert.Equal(32, allocator.FreeFrames);

        // The folio allocation drains CPU 0's cache (even when CPU 0 is the one allocating), the frames merge, and a
        // folio forms.
        var head = allocator.AllocateFolio(allocatingCpu);
        Assert.True(head >= 0, "no folio formed from the drained frames");
        Assert.Equal(1, allocator.RemoteDrains);
        Assert.Equal(3, allocator.FreeFolios);
        Assert.Equal(24, allocator.FreeFrames);
        Assert.Equal(1, memmap.PageCount(head));
    }

    [Fact]
    public void AFreedFolioIsResetAndPoisonedFrameByFrameAndCountedAsFreedPages()
    {
        var (memmap, memory, allocator) = Create(frames: 64, cpus: 1, order: 2);
        var counters = new StatCounters(1);
        var release = new PageRelease(memmap, allocator, counters);
        var head = allocator.AllocateFolio(0);
        memmap.PrepareFolio(head);
        for (var pfn = head; pfn < head + 4; pfn++)
        {
            memory.Word(pfn, 1) = 42;
            memmap.SetFlags(pfn, PageFlags.Anon | PageFlags.Dirty);
            memmap.AddMapTestFirst(pfn);
            memmap.RemoveMapTestLast(pfn);
        }

        Assert.True(memmap.PutPageTestZero(head));
        release.FreeReleasedFolio(0, head);

        for (var pfn = head; pfn < head + 4; pfn++)
        {
            Assert.True(memory.IsPoisoned(pfn), $"pfn 0x{pfn:x} is not poisoned");
            Assert.Equal(PageFlags.None, memmap.GetFlags(pfn));
            Assert.Equal(0, memmap.PageCount(pfn));
            Assert.Equal(0, memmap.MapCount(pfn));
        }

        Assert.Equal(4, counters.Get(Stat.PagesFreed));
        Assert.Equal(64, allocator.FreeFrames);
        Assert.Equal(16, allocator.FreeFolios);
        Assert.Equal(head, allocator.AllocateFolio(0));
    }

    [Fact]
    public void FolioOrdersOutsideZeroToNineAreRefusedAndOrderZeroHandsOutNoFolios()
    {
        var memmap = new Memmap(Base, 1024);
        var memory = new PhysicalMemory(Base, 1024);
        Assert.Throws<ArgumentOutOfRangeException>(() => new FrameAllocator(memmap, memory, 1, poisonFreedFrames: false, folioOrder: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new FrameAllocator(memmap, memory, 1, poisonFreedFrames: false, folioOrder: 10));
        Assert.Equal(2, new FrameAllocator(memmap, memory, 1, poisonFreedFrames: false, folioOrder: FrameAllocator.MaxFolioOrder).FreeFolios);

        var orderZero = new FrameAllocator(memmap, memory, 1, poisonFreedFrames: false);
        Assert.Equal(0, orderZero.FolioOrder);
        Assert.Equal(0, orderZero.FreeFolios);
        Assert.Throws<InvalidOperationException>(() => orderZero.AllocateFolio(0));
        Assert.Throws<InvalidOperationException>(() => orderZero.FreeFolio(0, Base));
    }

    [Fact]
    public void UnderTheTesterTwoCpusRacingForFoliosAndPagesNeverShareAFrameAndEveryFrameComesBack()
    {
        // 32 frames, eight folios of 4. Each CPU takes a page first: the first refill (a batch of 31) splits every
        // folio, so the folio allocations that follow find none and drain the caches, while their owners allocate and
        // free in them.
        const int frames = 32;
        const int order = 2;
        var foliosAfterDrain = 0;
        var ownerInside = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(300), () =>
        {
            var (memmap, _, allocator) = Create(frames, cpus: 2, order);
            var owner = new int[frames];
            void Take(long pfn, int size, int cpu)
            {
                for (var i = 0; i < size; i++)
                {
                    Specification.Assert(Atomic.CompareExchange(ref owner[pfn + i - Base], cpu + 1, 0) == 0, $"pfn 0x{pfn + i:x} handed out twice");
                }
            }

            void Release(long pfn, int size)
            {
                for (var i = 0; i < size; i++)
                {
                    Atomic.Write(ref owner[pfn + i - Base], 0);
                }
            }

            void Cpu(int cpu)
            {
                for (var round = 0; round < 2; round++)
                {
                    var pfn = allocator.AllocatePage(cpu);
                    Specification.Assert(pfn >= 0, $"CPU {cpu} found no frame with at most ten of {frames} held");
                    Take(pfn, 1, cpu);

                    var drainsBefore = allocator.RemoteDrains;
                    var head = allocator.AllocateFolio(cpu);
                    if (head >= 0)
                    {
                        Take(head, 1 << order, cpu);
                        if (allocator.RemoteDrains > drainsBefore)
                        {
                            Interlocked.Increment(ref foliosAfterDrain);
                        }
                    }

                    Release(pfn, 1);
                    memmap.PutPageTestZero(pfn);
                    allocator.FreePage(cpu, pfn);
                    if (head >= 0)
                    {
                        Release(head, 1 << order);
                        memmap.PutPageTestZero(head);
                        allocator.FreeFolio(cpu, head);
                    }
                }
            }

            var other = ControlledThread.Start(() => Cpu(1), "cpu1");
            Cpu(0);
            other.Join();
            if (allocator.DrainsWhileOwnerInside > 0)
            {
                Interlocked.Increment(ref ownerInside);
            }

            allocator.DrainAllPages(-1);
            var free = allocator.FreeList().ToList();
            Specification.Assert(free.Count == frames && free.Distinct().Count() == frames && allocator.FreeFrames == frames,
                $"{free.Distinct().Count()} distinct frames listed free, {allocator.FreeFrames} counted, {frames} expected: frames lost or listed twice");
            Specification.Assert(allocator.FreeFolios == frames >> order, $"{allocator.FreeFolios} folios free after everything came back: frames did not merge");
        });

        AssertClean(report);
        Assert.True(foliosAfterDrain > 0, "no folio was ever formed by a drain: the drain path was never exercised");
        Assert.True(ownerInside > 0, "no drain ever found a CPU inside its cache: the race was never exercised");
    }

    private static List<long> TakeAllPages(FrameAllocator allocator, int cpu)
    {
        var pages = new List<long>();
        long pfn;
        while ((pfn = allocator.AllocatePage(cpu)) >= 0)
        {
            pages.Add(pfn);
        }

        return pages;
    }

    private static List<long> TakeAllFolios(FrameAllocator allocator, int cpu)
    {
        var folios = new List<long>();
        long head;
        while ((head = allocator.AllocateFolio(cpu)) >= 0)
        {
            folios.Add(head);
        }

        return folios;
    }

    private static (Memmap Memmap, PhysicalMemory Memory, FrameAllocator Allocator) Create(int frames, int cpus, int order, long basePfn = Base, IReadOnlySet<long>? reserved = null)
    {
        var memmap = new Memmap(basePfn, frames, order);
        var memory = new PhysicalMemory(basePfn, frames);
        if (reserved is not null)
        {
            foreach (var pfn in reserved)
            {
                memmap.Reserve(pfn, PageFlags.None);
            }
        }

        return (memmap, memory, new FrameAllocator(memmap, memory, cpus, poisonFreedFrames: true, reserved, folioOrder: order));
    }
}
