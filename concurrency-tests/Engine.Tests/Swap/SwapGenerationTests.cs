using Engine.Testing;
using static Engine.Tests.Rmap.RmapProbe;

namespace Engine.Tests.Swap;

/// <summary>
/// The three swap generations (<see cref="SwapReuse"/>), single-threaded: which pairs with <see cref="CowReuse"/> a
/// machine accepts, and what the swap-in and the write-protect fault of each do with a swapped-out page.
/// </summary>
public sealed class SwapGenerationTests
{
    private const ulong Page = 4096;

    private static Engine.Machine Create(CowReuse rule, SwapReuse? swap = null)
        => new(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16, CowReuse = rule, SwapReuse = swap });

    /// <summary>A written private page, paged out: its entry is a swap entry.</summary>
    private static (Process Process, ulong Address) SwappedOut(Engine.Machine machine, ulong value = 1)
    {
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, value);
        Assert.Equal(1, process.MadvisePageOut(address, Page));
        Assert.True(machine.Inspect().EntryAt(process, address).IsSwap);
        return (process, address);
    }

    public static TheoryData<CowReuse, SwapReuse, bool> Pairs
    {
        get
        {
            var pairs = new TheoryData<CowReuse, SwapReuse, bool>();
            foreach (var rule in Enum.GetValues<CowReuse>())
            {
                foreach (var swap in Enum.GetValues<SwapReuse>())
                {
                    var shipped = (rule, swap) is (CowReuse.MapCount, SwapReuse.ReuseSwapPage)
                        or (CowReuse.PageCount, SwapReuse.ReuseSwapPage) or (CowReuse.PageCount, SwapReuse.PageCount)
                        or (CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry);
                    pairs.Add(rule, swap, shipped);
                }
            }

            return pairs;
        }
    }

    [Theory]
    [MemberData(nameof(Pairs))]
    public void OnlyThePairsThatShippedAreAccepted(CowReuse rule, SwapReuse swap, bool shipped)
    {
        Assert.Equal(shipped, MachineOptions.Shipped(rule, swap));
        var options = new MachineOptions { Cpus = 1, Frames = 64, CowReuse = rule, SwapReuse = swap };
        if (shipped)
        {
            using var machine = new Engine.Machine(options);
            Assert.Equal(swap, machine.Generation.SwapReuse);
            return;
        }

        var refused = Assert.Throws<ArgumentException>(() => new Engine.Machine(options));
        Assert.Equal(nameof(MachineOptions.SwapReuse), refused.ParamName);
        Assert.Contains($"SwapReuse = {swap} never shipped with CowReuse = {rule}", refused.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(CowReuse.MapCount, SwapReuse.ReuseSwapPage)]
    [InlineData(CowReuse.PageCount, SwapReuse.PageCount)]
    [InlineData(CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry)]
    public void WithoutASwapSettingAMachineRunsTheLastDesignItsRuleShippedWith(CowReuse rule, SwapReuse expected)
    {
        using var machine = Create(rule);
        Assert.Equal(expected, machine.Generation.SwapReuse);
    }

    [Fact]
    public void AnUnknownSwapDesignIsRefused()
    {
        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(new MachineOptions { SwapReuse = (SwapReuse)7 }));
        Assert.Equal(nameof(MachineOptions.SwapReuse), refused.ParamName);
    }

    /// <summary>
    /// Every generation maps an exclusive swapped-out page back for a write without a copy: ≤ 5.17 because
    /// reuse_swap_page counts one swap entry and no mapping, 5.18 because the cache's reference is dropped and the
    /// fault's is the last, ≥ 5.19 because the entry is exclusive. The page leaves the swap cache and its slot is freed.
    /// </summary>
    [Theory]
    [InlineData(CowReuse.MapCount, SwapReuse.ReuseSwapPage)]
    [InlineData(CowReuse.PageCount, SwapReuse.ReuseSwapPage)]
    [InlineData(CowReuse.PageCount, SwapReuse.PageCount)]
    [InlineData(CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry)]
    public void AWriteFaultOnAnExclusiveSwappedPageReusesTheReadPageAndFreesTheSlot(CowReuse rule, SwapReuse swap)
    {
        using var machine = Create(rule, swap);
        var (process, address) = SwappedOut(machine, 5);
        Assert.Equal(rule == CowReuse.AnonExclusive, machine.Inspect().EntryAt(process, address).IsSwapExclusive);

        machine.Cpus[1].Write(process, address + 8, 6);

        var entry = machine.Inspect().EntryAt(process, address);
        Assert.True(entry.IsPresent && entry.IsWrite, entry.ToString());
        Assert.Equal(0, machine.Stats.CowCopies);
        Assert.Equal(1, machine.Stats.SwapInReuses);
        Assert.Equal(0, machine.Stats.CowReuses);
        Assert.Equal(5UL, machine.Cpus[1].Read(process, address));
        Assert.Equal(0, machine.Stats.SwapSlotsInUse);
        machine.CheckInvariants();
    }

    /// <summary>
    /// A read fault maps the page read-only and leaves it in the swap cache (Linux frees it there only when swap is
    /// full). The write that follows: from 5.9 to 5.17 the reference count test sees the cache's reference and copies
    /// (the regression "mm: optimize do_wp_page() for exclusive pages in the swapcache" fixed in 5.18); the mapcount
    /// rule asks reuse_swap_page, which reuses; 5.18 drops the page from the cache first and reuses; ≥ 5.19 mapped the
    /// exclusive page writable at the read already.
    /// </summary>
    [Theory]
    [InlineData(CowReuse.MapCount, SwapReuse.ReuseSwapPage, false)]
    [InlineData(CowReuse.PageCount, SwapReuse.ReuseSwapPage, true)]
    [InlineData(CowReuse.PageCount, SwapReuse.PageCount, false)]
    [InlineData(CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry, false)]
    public void AWriteAfterTheReadThatSwappedThePageInCopiesItOnlyFromFiveNineToFiveSeventeen(CowReuse rule, SwapReuse swap, bool copies)
    {
        using var machine = Create(rule, swap);
        var (process, address) = SwappedOut(machine, 5);
        Assert.Equal(5UL, machine.Cpus[1].Read(process, address));
        var readIn = PfnAt(machine, process, address);
        Assert.Equal(rule == CowReuse.AnonExclusive, machine.Inspect().EntryAt(process, address).IsWrite);

        machine.Cpus[1].Write(process, address, 6);

        Assert.Equal(copies ? 1 : 0, machine.Stats.CowCopies);
        Assert.Equal(copies, PfnAt(machine, process, address) != readIn);
        Assert.Equal(6UL, machine.Cpus[0].Read(process, address));
        machine.CheckInvariants();
        process.Dispose();
        Assert.Equal(0, machine.Stats.SwapSlotsInUse);
        machine.CheckInvariants();
    }

    /// <summary>
    /// reuse_swap_page counts the swap entries still naming the page's slot, not only its mappings: after fork the
    /// parent reads the page in (mapped once) while the child's entry still names the slot, and the parent's write must
    /// copy, or the child would fault in the parent's store from the swap cache.
    /// </summary>
    [Fact]
    public void TheMapcountRuleCountsTheChildsSwapEntryAndCopies()
    {
        using var machine = Create(CowReuse.MapCount);
        var (parent, address) = SwappedOut(machine, 1);
        using var child = parent.Fork();
        Assert.Equal(1UL, machine.Cpus[0].Read(parent, address));
        Assert.True(machine.Inspect().EntryAt(child, address).IsSwap);

        machine.Cpus[0].Write(parent, address, 2);

        Assert.Equal(1, machine.Stats.CowCopies);
        Assert.Equal(1UL, machine.Cpus[1].Read(child, address));
        Assert.Equal(2UL, machine.Cpus[0].Read(parent, address));
        machine.CheckInvariants();
    }

    /// <summary>
    /// cow.c's "vmsplice + unmap in child" on a swapped-out page, deterministically: 5.9–5.17 reuse for the parent's
    /// write and the child's pipe sees it (CVE-2020-29374 through swap, zoo entry 13); 5.18 and later copy.
    /// </summary>
    [Theory]
    [InlineData(CowReuse.PageCount, SwapReuse.ReuseSwapPage, true)]
    [InlineData(CowReuse.PageCount, SwapReuse.PageCount, false)]
    [InlineData(CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry, false)]
    public void AChildsPipeReferenceIsIgnoredByReuseSwapPageOnly(CowReuse rule, SwapReuse swap, bool leaks)
    {
        using var machine = Create(rule, swap);
        var (parent, address) = SwappedOut(machine, 1);
        using var child = parent.Fork();
        using (var pipe = machine.Cpus[1].GetUserPages(child, address, 1, GupFlags.None))
        {
            child.Munmap(address, Page);
            machine.Cpus[0].Write(parent, address, 2);
            Assert.Equal(leaks ? 2UL : 1UL, pipe.Read(0, 0));
            Assert.Equal(leaks ? 1 : 0, machine.Stats.SwapInReuses);
            machine.CheckInvariants();
        }

        machine.CheckInvariants();
    }

    /// <summary>
    /// A write reference (O_DIRECT's FOLL_GET) survives swap-out, since only pins keep a page mapped. In 5.18 the
    /// swap-in sees a count above one and maps the page read-only, and the process's write copies it away from the
    /// I/O (zoo entry 14); ≥ 5.19 the entry's exclusive bit maps the same page again; ≤ 5.17's reuse_swap_page does not
    /// look at references and reuses it too.
    /// </summary>
    [Theory]
    [InlineData(CowReuse.PageCount, SwapReuse.ReuseSwapPage, false)]
    [InlineData(CowReuse.PageCount, SwapReuse.PageCount, true)]
    [InlineData(CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry, false)]
    public void AWriteReferenceKeepsItsPageAcrossSwapExceptInFiveEighteen(CowReuse rule, SwapReuse swap, bool lost)
    {
        using var machine = Create(rule, swap);
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var io = machine.Cpus[0].GetUserPages(process, address, 1, GupFlags.Write);

        Assert.Equal(0, process.MadvisePageOut(address, Page));
        Assert.True(machine.Inspect().EntryAt(process, address).IsSwap);
        machine.Cpus[1].Write(process, address, 2);
        io.Write(0, 1, 0xD10);
        io.Dispose();

        Assert.Equal(lost ? 0UL : 0xD10UL, machine.Cpus[1].Read(process, address + 8));
        Assert.Equal(2UL, machine.Cpus[1].Read(process, address));
        machine.CheckInvariants();
    }

    /// <summary>
    /// Reclaim of a long-term pinned page: with the maybe-pinned skip (5.11) it is kept; without it, before 5.19 it is
    /// unmapped and the write after the swap-in copies it away from the pin (zoo entry 15); from 5.19 the unmap itself
    /// refuses the exclusive pinned page, so the skip changes nothing that can be seen.
    /// </summary>
    [Theory]
    [InlineData(CowReuse.PageCount, SwapReuse.ReuseSwapPage, true, false)]
    [InlineData(CowReuse.PageCount, SwapReuse.ReuseSwapPage, false, true)]
    [InlineData(CowReuse.PageCount, SwapReuse.PageCount, false, true)]
    [InlineData(CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry, false, false)]
    [InlineData(CowReuse.AnonExclusive, SwapReuse.ExclusiveEntry, true, false)]
    public void APinnedPageIsSwappedOutOnlyBeforeFiveNineteenWithoutTheSkip(CowReuse rule, SwapReuse swap, bool skip, bool diverges)
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, SwapSlots = 16, CowReuse = rule, SwapReuse = swap, ReclaimSkipsMaybePinned = skip });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        using (var buffer = machine.Cpus[0].PinUserPages(process, address, 1, GupFlags.Write | GupFlags.LongTerm))
        {
            Assert.Equal(0, process.MadvisePageOut(address, Page));
            Assert.Equal(diverges, machine.Inspect().EntryAt(process, address).IsSwap);
            Assert.Equal(diverges ? 0 : 1, machine.Stats.ReclaimKeptPinned);
            Assert.Equal(1UL, machine.Cpus[1].Read(process, address));
            machine.Cpus[1].Write(process, address, 2);
            Assert.Equal(diverges ? 1UL : 2UL, buffer.Read(0, 0));
            machine.CheckInvariants();
        }

        machine.CheckInvariants();
    }
}
