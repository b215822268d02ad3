using Engine.Invariants;
using Engine.Memory;
using Engine.PageTables;

namespace Engine.Tests.PageTables;

/// <summary>Entry reads and writes on both layouts, single-threaded.</summary>
public sealed class PteAccessTests
{
    public static TheoryData<PteLayout> Layouts => new(PteLayout.Native64, PteLayout.SplitPae);

    [Theory]
    [MemberData(nameof(Layouts))]
    public void SetGetClearRoundTrip(PteLayout layout)
    {
        var (access, table) = Create(layout);
        var pte = Pte.Make(0x1ABCDE, write: true, dirty: true);
        access.SetPte(table, 3, pte);

        Assert.Equal(pte, access.PtepGet(table, 3));
        Assert.Equal(pte, access.PtepGetLockless(table, 3));
        Assert.Equal(pte, access.HardwareRead(table, 3));
        Assert.True(access.PtepGet(table, 4).IsNone);

        access.PteClear(table, 3);
        Assert.True(access.PtepGet(table, 3).IsNone);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void GetAndClearReturnsTheBitsTheHardwareSet(PteLayout layout)
    {
        var (access, table) = Create(layout);
        var clean = Pte.Make(0x100010, write: true, dirty: false, young: false);
        access.SetPte(table, 0, clean);

        Assert.True(access.HardwareCompareExchange(table, 0, clean, clean.MkYoung().MkDirty()));
        Assert.False(access.HardwareCompareExchange(table, 0, clean, clean.MkYoung()));

        var old = access.PtepGetAndClear(table, 0);
        Assert.True(old.IsDirty);
        Assert.True(old.IsYoung);
        Assert.Equal(0x100010, old.Pfn);
        Assert.True(access.PtepGet(table, 0).IsNone);
    }

    [Theory]
    [MemberData(nameof(Layouts))]
    public void WrprotectAndClearYoungKeepEverythingElse(PteLayout layout)
    {
        var (access, table) = Create(layout);
        var pte = Pte.Make(0x2FFFFF, write: true, dirty: true, young: true);
        access.SetPte(table, 9, pte);

        Assert.Equal(pte, access.PtepSetWrprotect(table, 9));
        Assert.Equal(pte.WrProtect(), access.PtepGet(table, 9));
        Assert.True(access.PtepTestAndClearYoung(table, 9));
        Assert.False(access.PtepTestAndClearYoung(table, 9));
        Assert.Equal(pte.WrProtect().MkOld(), access.PtepGet(table, 9));
    }

    [Fact]
    public void SplitPaeStoresTheHalvesWhereTheHardwareReadsThem()
    {
        var (access, table) = Create(PteLayout.SplitPae, out var memory);
        var pte = Pte.Make(0x300005, write: false);
        access.SetPte(table, 1, pte);
        Assert.Equal(pte.Value, memory.Word(table, 1));
    }

    private static (PteAccess Access, long Table) Create(PteLayout layout) => Create(layout, out _);

    private static (PteAccess Access, long Table) Create(PteLayout layout, out PhysicalMemory memory)
    {
        const long Base = 1L << 20;
        memory = new PhysicalMemory(Base, 2);
        memory.Zero(Base);
        return (new PteAccess(memory, new PageTableLocks(Base, 2), new ViolationLog(), layout, locklessRetry: true), Base);
    }
}
