using Engine.Invariants;
using Engine.Memory;
using static Engine.Tests.Rmap.RmapProbe;

namespace Engine.Tests.Machine;

/// <summary>
/// Misuse of the API that once gave wrong results: every case is refused with a clear exception, changes nothing, and
/// leaves <c>CheckInvariants</c> passing.
/// </summary>
public sealed class HardeningTests
{
    private const ulong Page = 4096;

    private static Engine.Machine Small(int refcountLimit = int.MaxValue, bool guard = true)
        => new(new MachineOptions { Cpus = 2, Frames = 256, RefcountLimit = refcountLimit, RefcountOverflowGuard = guard });

    private static (Process Process, ulong Address) Written(Engine.Machine machine, ulong value, int pages = 1)
    {
        var process = machine.CreateProcess();
        var address = process.Mmap((ulong)pages * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, value);
        return (process, address);
    }

    /// <summary>Above the user half: bit 48 set, bit 63 set, the kernel half's sign extension, the first kernel address.</summary>
    public static TheoryData<ulong> NotUserAddresses => new(1UL << 48, 1UL << 63, 0xFFFF_0000_0000_0000UL, 0xFFFF_8000_0000_0000UL);

    [Theory]
    [MemberData(nameof(NotUserAddresses))]
    public void AnAddressOutsideTheUserHalfFaultsInsteadOfAliasingAUserPage(ulong high)
    {
        using var machine = Small();
        var (process, address) = Written(machine, 0x1234);
        var cpu = machine.Cpus[1];
        var alias = address | high;

        var write = Assert.Throws<SegmentationFault>(() => cpu.Write(process, alias, 0xBAD));
        Assert.Equal(SegmentationFaultReason.NotUserAddress, write.Reason);
        Assert.True(write.IsWrite);
        Assert.Equal(alias, write.Address);
        var read = Assert.Throws<SegmentationFault>(() => cpu.Read(process, alias));
        Assert.Equal(SegmentationFaultReason.NotUserAddress, read.Reason);
        Assert.False(read.IsWrite);
        Assert.Throws<SegmentationFault>(() => cpu.Read(process, Process.UserEnd));

        Assert.Equal(0x1234UL, cpu.Read(process, address));
        machine.CheckInvariants();
    }

    [Fact]
    public void ACpuRefusesAProcessOfAnotherMachine()
    {
        using var first = Small();
        using var second = Small();
        var (mine, address) = Written(first, 1);
        var (theirs, theirAddress) = Written(second, 2);
        var stranger = second.Cpus[1];

        Assert.Throws<ArgumentException>(() => stranger.Write(mine, address, 0xBAD));
        Assert.Throws<ArgumentException>(() => stranger.Read(mine, address));
        Assert.Throws<ArgumentException>(() => stranger.PinUserPages(mine, address, 1, GupFlags.Write));
        Assert.Throws<ArgumentException>(() => stranger.PinUserPages(mine, address, new long[1], GupFlags.Write));
        Assert.Throws<ArgumentException>(() => stranger.GetUserPages(mine, address, 1, GupFlags.None));
        Assert.Throws<ArgumentException>(() => stranger.PokeData(mine, address, 0xBAD));

        Assert.Equal(1UL, first.Cpus[0].Read(mine, address));
        Assert.Equal(2UL, stranger.Read(theirs, theirAddress));
        first.CheckInvariants();
        second.CheckInvariants();
    }

    [Fact]
    public void TheDocumentedMaximumOfFramesFitsOneArrayOfPhysicalMemory()
    {
        new MachineOptions { Frames = MachineOptions.MaxFrames }.Validate();
        Assert.Throws<ArgumentOutOfRangeException>(() => new MachineOptions { Frames = MachineOptions.MaxFrames + 1 }.Validate());
        var maxLength = (long)Array.MaxLength;
        Assert.InRange((long)MachineOptions.MaxFrames * PhysicalMemory.WordsPerFrame, 1, maxLength);
        Assert.True((long)(MachineOptions.MaxFrames + 1) * PhysicalMemory.WordsPerFrame > maxLength);
    }

    [Fact]
    public void APinThatWouldWrapTheRealCounterIsRefusedAndChangesNothing()
    {
        // The real width: 1 (the mapping) + 2,097,151 pins of 1,024 is the last count below 2^31.
        using var machine = Small();
        var (process, address) = Written(machine, 7);
        var cpu = machine.Cpus[0];
        var pfn = PfnAt(machine, process, address);
        const int Fit = (int.MaxValue - 1) / Memmap.GupPinCountingBias;
        var frame = new long[1];
        for (var i = 0; i < Fit; i++)
        {
            Assert.Equal(1, cpu.PinUserPages(process, address, frame, GupFlags.None));
        }

        var count = machine.Memmap.PageCount(pfn);
        Assert.Equal(1 + (Fit * Memmap.GupPinCountingBias), count);
        var held = machine.Memmap.GupHeld(pfn);

        var refused = Assert.Throws<InvalidOperationException>(() => cpu.PinUserPages(process, address, frame, GupFlags.None));
        Assert.Contains("overflow", refused.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => cpu.PinUserPages(process, address, 1, GupFlags.NoFast));
        Assert.Equal(count, machine.Memmap.PageCount(pfn));
        Assert.Equal(held, machine.Memmap.GupHeld(pfn));

        // A plain reference (1) still fits below 2^31 − 1; a pin does not.
        using (cpu.GetUserPages(process, address, 1, GupFlags.None))
        {
            Assert.Equal(count + 1, machine.Memmap.PageCount(pfn));
        }

        Assert.Equal(count, machine.Memmap.PageCount(pfn));
        Assert.Equal(held, machine.Memmap.GupHeld(pfn));

        // An ordinary access still works and nothing is reported: the count never wrapped.
        Assert.Equal(7UL, cpu.Read(process, address));
        machine.CheckInvariants();
        frame[0] = pfn;
        for (var i = 0; i < Fit; i++)
        {
            cpu.UnpinUserPages(frame, dirty: false);
        }

        Assert.Equal(1, machine.Memmap.PageCount(pfn));
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(15)]
    [InlineData(3000)]
    public void WithTheGuardNoReferenceTakesTheCountPastASmallLimit(int limit)
    {
        using var machine = Small(limit);
        var (process, address) = Written(machine, 7);
        var cpu = machine.Cpus[0];
        var pfn = PfnAt(machine, process, address);
        var taken = new List<IDisposable>();
        var refusals = 0;
        for (var i = 0; i < 40; i++)
        {
            try
            {
                taken.Add(i % 2 == 0 ? cpu.GetUserPages(process, address, 1, GupFlags.None) : cpu.PinUserPages(process, address, 1, GupFlags.None));
            }
            catch (InvalidOperationException)
            {
                refusals++;
            }

            Assert.InRange(machine.Memmap.PageCount(pfn), 1, limit);
        }

        Assert.True(refusals > 0, "the guard refused nothing: the limit was never approached");
        machine.CheckInvariants();
        taken.ForEach(t => t.Dispose());
        Assert.Equal(1, machine.Memmap.PageCount(pfn));
        machine.CheckInvariants();
    }

    [Fact]
    public void WithoutTheGuardAPinWrapsTheCounterWithinItsRangeAndTheReportNamesTheOverflow()
    {
        // The knob off brings back the pre-2019 counter: references past the limit wrap it negative. A pin (1,024)
        // on a 4,095-wide counter wraps it from 3,073 to −4,095, modulo the counter's range as 32-bit arithmetic would.
        using var machine = Small(refcountLimit: 4095, guard: false);
        var (process, address) = Written(machine, 7);
        var cpu = machine.Cpus[0];
        var pfn = PfnAt(machine, process, address);
        var pins = new List<PinnedPages>();
        for (var i = 0; i < 4; i++)
        {
            pins.Add(cpu.PinUserPages(process, address, 1, GupFlags.None));
            Assert.InRange(machine.Memmap.PageCount(pfn), -4096, 4095);
        }

        Assert.Equal(1 + (4 * 1024) - 8192, machine.Memmap.PageCount(pfn));
        cpu.Read(process, address);
        var report = Assert.Throws<InvariantViolationException>(machine.CheckInvariants);
        Assert.Contains(ViolationKind.RefcountOverflow, report.Kinds);
        Assert.DoesNotContain(ViolationKind.UseAfterFree, report.Kinds);
        Assert.Contains(report.Violations, v => v.Kind == ViolationKind.RefcountOverflow && v.Pfn == pfn);
    }

    [Fact]
    public void WithoutTheGuardAPinOnATinyCounterWrapsModuloItsRange()
    {
        using var machine = Small(refcountLimit: 15, guard: false);
        var (process, address) = Written(machine, 7);
        var pfn = PfnAt(machine, process, address);
        using var pin = machine.Cpus[0].PinUserPages(process, address, 1, GupFlags.NoFast);

        // 1 + 1,024 modulo 32 is 1 again: the pin went once round the counter 32 times.
        Assert.Equal(1, machine.Memmap.PageCount(pfn));
    }

    [Fact]
    public void UnpinningTheNeverPinnedZeroPageThrowsAndAPinnedOneUnpinsOnce()
    {
        using var machine = Small();
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        var cpu = machine.Cpus[0];
        Assert.Equal(0UL, cpu.Read(process, address));

        Assert.Throws<InvalidOperationException>(() => cpu.UnpinUserPages([machine.ZeroPfn], dirty: false));
        machine.CheckInvariants();

        var frame = new long[1];
        Assert.Equal(1, cpu.PinUserPages(process, address, frame, GupFlags.None));
        Assert.Equal(machine.ZeroPfn, frame[0]);
        Assert.Throws<InvalidOperationException>(() => cpu.UnpinUserPages([frame[0], frame[0]], dirty: false));
        cpu.UnpinUserPages(frame, dirty: false);
        Assert.Throws<InvalidOperationException>(() => cpu.UnpinUserPages(frame, dirty: false));
        machine.CheckInvariants();
    }

    [Fact]
    public void AnArrayNamingAFrameMoreOftenThanItIsPinnedUnpinsNothing()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 7, pages: 2);
        machine.Cpus[0].Write(process, address + Page, 8);
        var cpu = machine.Cpus[0];
        var frames = new long[2];
        Assert.Equal(2, cpu.PinUserPages(process, address, frames, GupFlags.Write));
        var counts = frames.Select(machine.Memmap.PageCount).ToArray();

        Assert.Throws<InvalidOperationException>(() => cpu.UnpinUserPages([frames[0], frames[1], frames[0]], dirty: false));
        Assert.Equal(counts, frames.Select(machine.Memmap.PageCount));
        machine.CheckInvariants();
        cpu.UnpinUserPages(frames, dirty: false);
        machine.CheckInvariants();
    }

    [Fact]
    public void MappingMoreThanTheAddressSpaceHoldsIsRefusedWithTheEnginesException()
    {
        using var machine = Small();
        var process = machine.CreateProcess();
        Assert.Throws<OutOfAddressSpaceException>(() => process.Mmap(Process.UserEnd - Process.UserStart, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous));

        // Fill what mmap can place mappings in, then ask for one more page: no gap is left.
        var whole = 0UL;
        var size = 1UL << 46;
        while (size >= Page)
        {
            try
            {
                process.Mmap(size, Prot.Read, MapFlags.Private | MapFlags.Anonymous);
                whole += size;
            }
            catch (OutOfAddressSpaceException)
            {
                size >>= 1;
            }
        }

        Assert.True(whole > 1UL << 46, $"only 0x{whole:x} bytes were mapped");
        Assert.Throws<OutOfAddressSpaceException>(() => process.Mmap(Page, Prot.Read, MapFlags.Private | MapFlags.Anonymous));
        machine.CheckInvariants();
        process.Dispose();
        machine.CheckInvariants();
    }

    [Fact]
    public void PinningMorePagesThanTheMachineHasFramesIsRefusedBeforeAnythingIsAllocated()
    {
        using var machine = Small();
        var (process, address) = Written(machine, 7);
        var cpu = machine.Cpus[0];
        var before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<ArgumentException>(() => cpu.PinUserPages(process, address, int.MaxValue, GupFlags.None));
        Assert.Throws<ArgumentException>(() => cpu.GetUserPages(process, address, 257, GupFlags.None));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 * 1024, "a frame array was allocated");
        machine.CheckInvariants();
    }

    [Theory]
    [InlineData(nameof(MachineOptions.CowReuse))]
    [InlineData(nameof(MachineOptions.PteLayout))]
    public void AnUnknownEnumOptionIsRefused(string option)
    {
        var options = option == nameof(MachineOptions.CowReuse) ? new MachineOptions { CowReuse = (CowReuse)99 } : new MachineOptions { PteLayout = (PteLayout)99 };
        var refused = Assert.Throws<ArgumentOutOfRangeException>(() => new Engine.Machine(options));
        Assert.Equal(option, refused.ParamName);
    }
}
