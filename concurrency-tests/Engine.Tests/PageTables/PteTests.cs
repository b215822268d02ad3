using Engine.PageTables;

namespace Engine.Tests.PageTables;

/// <summary>The PTE encoding: present entries, bit updates, swap entries, halves.</summary>
public sealed class PteTests
{
    [Fact]
    public void APresentEntryCarriesItsPfnAndBits()
    {
        var pte = Pte.Make(0x123456, write: true, dirty: true, young: false, special: false);
        Assert.True(pte.IsPresent);
        Assert.Equal(0x123456, pte.Pfn);
        Assert.True(pte.IsWrite);
        Assert.True(pte.IsDirty);
        Assert.False(pte.IsYoung);
        Assert.False(pte.IsSpecial);
        Assert.False(pte.IsSwap);
        Assert.Equal(pte, Pte.FromHalves(pte.Low, pte.High));

        // Above 4 GiB the pfn reaches into the high half.
        Assert.Equal(0x1u, pte.High);
    }

    [Fact]
    public void BitUpdatesTouchOnlyTheirBit()
    {
        var pte = Pte.Make(77, write: false);
        Assert.Equal(pte, pte.MkWrite().WrProtect());
        Assert.Equal(pte, pte.MkDirty().MkClean());
        Assert.Equal(pte.MkOld(), pte.MkYoung().MkOld());
        Assert.True(pte.MkWrite().IsWrite);
        Assert.Equal(77, pte.MkWrite().MkDirty().MkOld().Pfn);
    }

    [Fact]
    public void ASwapEntryIsNotPresentAndRoundTrips()
    {
        var swap = Pte.MakeSwap(type: 3, offset: 0x3FF_FFFF, exclusive: true);
        Assert.False(swap.IsPresent);
        Assert.False(swap.IsNone);
        Assert.True(swap.IsSwap);
        Assert.True(swap.IsSwapExclusive);
        Assert.Equal(3, swap.SwapType);
        Assert.Equal(0x3FF_FFFF, swap.SwapOffset);
        Assert.NotEqual(0u, swap.Low);
        Assert.False(Pte.MakeSwap(0, 5, exclusive: false).IsSwapExclusive);
    }

    [Fact]
    public void OutOfRangeValuesAreRejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Pte.Make(-1, write: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => Pte.Make(Pte.MaxPfn + 1, write: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => Pte.MakeSwap(32, 0, exclusive: false));
        Assert.Throws<ArgumentOutOfRangeException>(() => Pte.MakeSwap(0, 1L << 26, exclusive: false));
    }

    [Fact]
    public void NoneIsAllZero()
    {
        Assert.True(Pte.None.IsNone);
        Assert.False(Pte.None.IsPresent);
        Assert.False(Pte.None.IsSwap);
        Assert.Equal("none", Pte.None.ToString());
        Assert.Contains("pfn 0x4d rw", Pte.Make(77, write: true).ToString());
    }
}
