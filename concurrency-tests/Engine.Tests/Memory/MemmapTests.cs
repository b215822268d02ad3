using Engine.Memory;

namespace Engine.Tests.Memory;

/// <summary>The counting protocol on page descriptors: biased mapcount, add-unless-zero, freeze, flags.</summary>
public sealed class MemmapTests
{
    private readonly Memmap _memmap = new(basePfn: 100, frames: 8);

    [Fact]
    public void ANewMemmapHasFreeUnmappedPages()
    {
        for (var pfn = 100L; pfn < 108; pfn++)
        {
            Assert.Equal(0, _memmap.PageCount(pfn));
            Assert.Equal(0, _memmap.MapCount(pfn));
            Assert.Equal(PageFlags.None, _memmap.GetFlags(pfn));
        }

        Assert.True(_memmap.Contains(107));
        Assert.False(_memmap.Contains(108));
        Assert.False(_memmap.Contains(99));
    }

    [Fact]
    public void MapcountIsBiasedFirstMapIsIncrementAndTestLastUnmapIsAddNegative()
    {
        Assert.True(_memmap.AddMapTestFirst(100));
        Assert.False(_memmap.AddMapTestFirst(100));
        Assert.Equal(2, _memmap.MapCount(100));
        Assert.Equal(1, _memmap.Page(100).MapCount);
        Assert.False(_memmap.RemoveMapTestLast(100));
        Assert.True(_memmap.RemoveMapTestLast(100));
        Assert.Equal(-1, _memmap.Page(100).MapCount);

        _memmap.SetNewAnonMap(101);
        Assert.Equal(1, _memmap.MapCount(101));
    }

    [Fact]
    public void TryGetPageRefusesAFreePageAndAWrappedCount()
    {
        Assert.False(_memmap.TryGetPage(100, out _));
        Assert.Equal(0, _memmap.PageCount(100));

        _memmap.Page(100).RefCount = 1;
        Assert.True(_memmap.TryGetPage(100, out _));
        Assert.Equal(2, _memmap.PageCount(100));

        // A count driven past 2^31 by a reference leak wraps negative: no new reference may be taken.
        _memmap.Page(101).RefCount = int.MinValue + 5;
        Assert.False(_memmap.TryGetPage(101, out _));
        Assert.Equal(int.MinValue + 5, _memmap.PageCount(101));
    }

    [Fact]
    public void PutPageReportsTheLastReference()
    {
        _memmap.Page(102).RefCount = 2;
        Assert.False(_memmap.PutPageTestZero(102));
        Assert.True(_memmap.PutPageTestZero(102));
    }

    [Fact]
    public void FreezeSucceedsOnlyAtTheExpectedCountAndBlocksLaterGets()
    {
        _memmap.Page(103).RefCount = 3;
        Assert.False(_memmap.FreezeRefs(103, 2));
        Assert.Equal(3, _memmap.PageCount(103));
        Assert.True(_memmap.FreezeRefs(103, 3));
        Assert.False(_memmap.TryGetPage(103, out _));
    }

    [Fact]
    public void FlagsAreSetAndClearedAtomicallyWithTheirPreviousState()
    {
        Assert.False(_memmap.TestAndSetFlag(104, PageFlags.Locked));
        Assert.True(_memmap.TestAndSetFlag(104, PageFlags.Locked));
        _memmap.SetFlags(104, PageFlags.Anon | PageFlags.AnonExclusive);
        Assert.True(_memmap.TestFlags(104, PageFlags.Anon | PageFlags.AnonExclusive | PageFlags.Locked));
        Assert.True(_memmap.TestAndClearFlag(104, PageFlags.AnonExclusive));
        Assert.False(_memmap.TestAndClearFlag(104, PageFlags.AnonExclusive));
        Assert.Equal(PageFlags.Anon | PageFlags.Locked, _memmap.GetFlags(104));
    }
}
