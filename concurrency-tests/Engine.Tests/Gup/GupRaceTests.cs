using Engine.Systematic;
using static Engine.Tests.Machine.SystematicScenario;

namespace Engine.Tests.Gup;

/// <summary>
/// GUP races under the tester beyond the bug zoo's (<see cref="BugZooTests"/> runs the GUP entries: the pin racing
/// fork, the R/O pin of a shared page, Dirty COW, the reference overflow and the GUP-fast re-check): the IRQ-off
/// section GUP-fast relies on, against IPI and broadcast shootdowns.
/// </summary>
public sealed class GupRaceTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void AShootdownWaitsForAnIrqDisabledCpuOnlyWhenItIsAnIpi(bool broadcast)
    {
        var overlapped = 0;
        var startedInside = 0;
        var report = TestingEngine.Run(Configuration.Create().WithTestingIterations(2_000), () =>
        {
            using var machine = new Engine.Machine(new MachineOptions { Cpus = 2, Frames = 64, BroadcastTlbInvalidate = broadcast });
            var process = machine.CreateProcess();
            var address = process.Mmap(Page, Prot.ReadWrite, MapFlags.Private | MapFlags.Anonymous);
            machine.Cpus[0].Write(process, address, 1);
            var irqsOff = new int[1];
            var walker = ControlledThread.Start(() =>
            {
                machine.Cpus[0].LocalIrqDisable();
                Volatile.Write(ref irqsOff[0], 1);
                Engine.Sync.SchedulingPoint.Yield();
                Volatile.Write(ref irqsOff[0], 0);
                machine.Cpus[0].LocalIrqEnable();
            }, "irqs-off");
            var before = Volatile.Read(ref irqsOff[0]);
            if (before == 1)
            {
                Interlocked.Increment(ref startedInside);
            }

            machine.Shootdown.FlushTlbRange(process.Mm.Context, address, address + Page);
            if (before == 1 && Volatile.Read(ref irqsOff[0]) == 1)
            {
                // CPU 0 had interrupts off all through the flush: only a broadcast invalidation may complete then.
                Interlocked.Increment(ref overlapped);
                Specification.Assert(broadcast, "an IPI shootdown completed while its target had interrupts off");
            }

            walker.Join();
        });
        AssertClean(report);
        Assert.True(startedInside > 0, "the flush never started while CPU 0 had interrupts off: the test proved nothing");
        Assert.Equal(broadcast, overlapped > 0);
    }
}
