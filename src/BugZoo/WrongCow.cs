using Engine;
using Engine.Systematic;
using static BugZoo.ZooScenario;

namespace BugZoo;

/// <summary>
/// Zoo entry 2, "wrong COW" of the page-count rule (Linux 5.9–5.18): a pin raises page_count, so a write fault after
/// the page was write-protected copies it away from the pin.
/// </summary>
public static class WrongCow
{
    /// <summary>The interleavings a run with a fixed rule must meet.</summary>
    public static readonly string[] Events =
    [
        "the device stored before the process's mprotects were done",
        "the device stored after them",
    ];

    /// <summary>
    /// cow.c "R/O-mapping a page registered as an io_uring fixed buffer": a long-term write pin is taken; the page is
    /// write-protected and made writable again (mprotect, as soft-dirty clearing or uffd-wp also do) while the device
    /// writes through the pin; then the process stores. The pin and the process must still share the page.
    /// </summary>
    public static Action Scenario(CowReuse rule, ZooProbe? probe, ZooProposal proposal = ZooProposal.None) => () =>
    {
        using var machine = new Machine(proposal.Apply(new MachineOptions { Cpus = 2, Frames = 64, CowReuse = rule }));
        var process = machine.CreateProcess();
        var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
        machine.Cpus[0].Write(process, address, 1);
        using var pin = machine.Cpus[0].PinUserPages(process, address, 1, GupFlags.Write | GupFlags.LongTerm);
        var device = ControlledThread.Start(() => pin.Write(0, 1, 7), "device");
        process.Mprotect(address, Page, Prot.Read);
        process.Mprotect(address, Page, Prot.ReadWrite);
        probe?.Saw(device.IsCompleted ? 0 : 1);
        machine.Cpus[0].Write(process, address, 2);
        device.Join();
        Specification.Assert(pin.Read(0, 0) == 2, ZooBugKind.WrongCow, $"wrong COW: the pin of 0x{address:x} reads {pin.Read(0, 0)}, not the process's store 2: the write copied the page away from the pin");
        Specification.Assert(machine.Cpus[0].Read(process, address + 8) == 7, ZooBugKind.DeviceStoreLost, "the process does not see what the device wrote through the pin");
        AssertInvariants(machine);
    };
}
