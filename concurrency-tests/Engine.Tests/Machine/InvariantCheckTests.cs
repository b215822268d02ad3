using Engine.Invariants;
using Engine.PageTables;

namespace Engine.Tests.Machine;

/// <summary>
/// What <c>Machine.CheckInvariants</c> reports when a subsystem's invariant is broken by hand: each violation typed, its
/// message as before, and its structured fields (pfn, address, CPU, pid, expected and actual counts) filled by the
/// subsystem's checker.
/// </summary>
public sealed class InvariantCheckTests
{
    private const ulong Page = 4096;

    [Fact]
    public void AMapcountOffByOneNamesThePageAndBothCounts()
    {
        using var machine = Small();
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var pfn = PfnAt(machine, process, address);
        machine.Memmap.Page(pfn).MapCount++;

        var violation = Assert.Single(Assert.Throws<InvariantViolationException>(machine.CheckInvariants).Violations);
        Assert.Equal(ViolationKind.MapcountMismatch, violation.Kind);
        Assert.Equal($"pfn 0x{pfn:x}: mapcount 2 but 1 entries map it", violation.Message);
        Assert.Equal(pfn, violation.Pfn);
        Assert.Equal(1, violation.Expected);
        Assert.Equal(2, violation.Actual);
        Assert.Null(violation.Pid);
        machine.Memmap.Page(pfn).MapCount--;
        machine.CheckInvariants();
    }

    [Fact]
    public void AWritableEntryToAPageSharedAfterForkNamesTheProcessTheAddressAndTheMappings()
    {
        using var machine = Small();
        var parent = machine.CreateProcess();
        var address = parent.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(parent, address, 1);
        using var child = parent.Fork();
        var pfn = PfnAt(machine, parent, address);
        var table = machine.Tables.WalkToPteTable(parent.Mm.Pgd, address);
        ref var word = ref machine.Memory.Word(table, PageTableSet.Index(address, 1));
        word |= 2; // the write bit, behind fork's back

        var violations = Assert.Throws<InvariantViolationException>(machine.CheckInvariants).Violations;
        Assert.Equal([ViolationKind.WritableNotExclusive, ViolationKind.WritableShared], violations.Select(v => v.Kind));
        var shared = violations[1];
        Assert.Equal($"pid {parent.Pid}: writable entry at 0x{address:x} maps pfn 0x{pfn:x}, which is mapped 2 times", shared.Message);
        Assert.Equal((parent.Pid, address, pfn, 1L, 2L), (shared.Pid!.Value, shared.Address!.Value, shared.Pfn!.Value, shared.Expected!.Value, shared.Actual!.Value));
        Assert.Equal((parent.Pid, address, pfn), (violations[0].Pid!.Value, violations[0].Address!.Value, violations[0].Pfn!.Value));
    }

    [Fact]
    public void AStaleTlbEntryNamesTheCpuTheProcessTheAddressAndTheFrame()
    {
        using var machine = Small();
        var process = machine.CreateProcess();
        var address = process.Mmap(2 * Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var pfn = PfnAt(machine, process, address);
        machine.Cpus[1].Tlb.Fill(process.Pid, (address + Page) >> 12, pfn, writable: true, dirty: true);

        var violation = Assert.Single(Assert.Throws<InvariantViolationException>(machine.CheckInvariants).Violations);
        Assert.Equal(ViolationKind.StaleTlbEntry, violation.Kind);
        Assert.Equal($"CPU 1: TLB entry for pid {process.Pid} at 0x{address + Page:x} -> pfn 0x{pfn:x} is stale: no present entry maps that address", violation.Message);
        Assert.Equal((1, process.Pid, address + Page, pfn), (violation.Cpu!.Value, violation.Pid!.Value, violation.Address!.Value, violation.Pfn!.Value));
    }

    [Fact]
    public void ALeakedFrameNamesItsRefcount()
    {
        using var machine = Small();
        var pfn = machine.Allocator.AllocatePage(0);
        machine.Memmap.Page(pfn).RefCount = 3;

        var violation = Assert.Single(Assert.Throws<InvariantViolationException>(machine.CheckInvariants).Violations);
        Assert.Equal(ViolationKind.LeakedFrame, violation.Kind);
        Assert.Equal($"pfn 0x{pfn:x} has refcount 3 but nothing maps or holds it (leak)", violation.Message);
        Assert.Equal((pfn, 0L, 3L), (violation.Pfn!.Value, violation.Expected!.Value, violation.Actual!.Value));
    }

    private static Engine.Machine Small() => new(new MachineOptions { Cpus = 2, Frames = 256 });

    private static long PfnAt(Engine.Machine machine, Process process, ulong address)
        => machine.Ptes.PtepGet(machine.Tables.WalkToPteTable(process.Mm.Pgd, address), PageTableSet.Index(address, 1)).Pfn;
}
