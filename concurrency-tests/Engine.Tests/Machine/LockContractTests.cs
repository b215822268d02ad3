using Engine.Invariants;
using Engine.Memory;
using Xunit;

namespace Engine.Tests.Machine;

/// <summary>
/// The lock contracts are checked (issue 12): each "enter with … held" is an assertion, on in the tests. Each test
/// calls an engine function without the lock its contract names and expects the contract to catch it, then calls it
/// correctly and expects no complaint, so neither a check that never fires nor one that always fires can pass.
/// </summary>
public sealed class LockContractTests
{
    private const ulong Page = 4096;

    [Fact]
    public void ChecksAreOnInTheTests() => Assert.True(Checks.Enabled);

    [Fact]
    public void ZapWithoutTheMmapLockIsCaught()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64 });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);

        var broken = Assert.Throws<LockContractException>(() => machine.Zapper.ZapRange(process.Mm, address, address + Page, -1));
        Assert.Equal("ZapRange", broken.Function);
        Assert.Contains("mmap_lock", broken.LockName, StringComparison.Ordinal);

        process.Mm.MmapLock.EnterRead();
        machine.Zapper.ZapRange(process.Mm, address, address + Page, -1);
        process.Mm.MmapLock.ExitRead();
        machine.CheckInvariants();
    }

    [Fact]
    public void MprotectWithTheReadSideOnlyIsCaught()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64 });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        process.Mm.MmapLock.EnterRead();
        var broken = Assert.Throws<LockContractException>(() => machine.Mprotect.ChangeProtection(process.Mm, address, address + Page, Prot.Read));
        process.Mm.MmapLock.ExitRead();
        Assert.Contains("for write", broken.LockName, StringComparison.Ordinal);

        process.Mprotect(address, Page, Prot.Read);
        machine.CheckInvariants();
    }

    [Fact]
    public void MovingAnUnlockedPagesAnonMappingIsCaught()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64 });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var pfn = RmapProbeAccess.PfnAt(machine, process, address);
        var anonVma = machine.Memmap.AnonMappingOf(pfn)!;

        Assert.Throws<LockContractException>(() => machine.Memmap.MoveAnonMapping(pfn, anonVma));

        machine.Memmap.LockPage(pfn);
        machine.Memmap.MoveAnonMapping(pfn, anonVma);
        machine.Memmap.UnlockPage(pfn);
        machine.CheckInvariants();
    }

    [Fact]
    public void APteStoreWithoutItsPtlIsReportedAsItsOwnKind()
    {
        using var machine = new Engine.Machine(new MachineOptions { Cpus = 1, Frames = 64 });
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        var table = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
        var index = Engine.PageTables.PageTableSet.Index(address, 1);

        var ptl = machine.Tables.Ptl(table);
        ptl.Enter();
        machine.Ptes.PtepTestAndClearYoung(table, index);
        ptl.Exit();
        machine.CheckInvariants();

        machine.Ptes.PtepTestAndClearYoung(table, index);
        var found = Assert.Throws<InvariantViolationException>(machine.CheckInvariants);
        var violation = Assert.Single(found.Violations);
        Assert.Equal(ViolationKind.PteStoreWithoutPtl, violation.Kind);
        Assert.Equal(table, violation.Pfn);
    }

    /// <summary>The pfn an address maps, read through the tables.</summary>
    private static class RmapProbeAccess
    {
        public static long PfnAt(Engine.Machine machine, Process process, ulong address)
        {
            var table = machine.Tables.WalkToPteTable(process.Mm.Pgd, address);
            var pte = machine.Ptes.PtepGet(table, Engine.PageTables.PageTableSet.Index(address, 1));
            Assert.True(pte.IsPresent);
            return pte.Pfn;
        }
    }
}
