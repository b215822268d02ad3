using System.Numerics;
using Engine.Memory;
using Engine.Stats;
using Engine.Sync;

namespace Engine.Cpus;

/// <summary>
/// TLB shootdowns and the grace period for lockless walkers: the initiator's side of the access protocol of
/// <see cref="CpuContext"/> (the kernel's <c>flush_tlb_mm_range</c> in <c>arch/x86/mm/tlb.c</c>, and the
/// IPI or RCU synchronisation behind <c>tlb_remove_table</c>).
/// <para>
/// The hazard it closes: hardware makes "walk the page table, then fill the TLB" atomic with respect to a shootdown
/// IPI; the model's walker is not, so a walk in flight during a shootdown could fill a stale entry after the
/// invalidation. A shootdown therefore invalidates, waits until each target that was inside an access has left it,
/// and, on the targets that were inside an access when it began, invalidates again and waits once more for the
/// accesses in flight (<see cref="MachineOptions.GuardWalksInFlight"/>).
/// </para>
/// </summary>
internal sealed class Shootdown(CpuContext[] cpus, StatCounters counters, bool guardWalksInFlight, bool broadcastInvalidate)
{
    /// <summary><c>switch_mm</c>: <paramref name="cpu"/> may now cache <paramref name="mm"/>'s translations.</summary>
    public static void SwitchMm(MmContext mm, CpuContext cpu) => mm.AddCpu(cpu.Id);

    /// <summary>
    /// <c>flush_tlb_mm_range</c>: no CPU uses a translation of [<paramref name="start"/>, <paramref name="end"/>) of
    /// <paramref name="mm"/> after this returns. Invalidate on every CPU of the mm's cpumask; wait until each target
    /// that was inside an access has left it (an access in flight may finish with the old translation, as a store in
    /// flight does on hardware, and a walk in flight may have filled a stale entry after the first invalidation); on the
    /// targets that were inside an access when the flush began (only those can have such a walk), invalidate again
    /// and wait again for the accesses in flight (one may have hit what a walk filled before the second
    /// invalidation). With IPIs (not <see cref="MachineOptions.BroadcastTlbInvalidate"/>) a target in an
    /// IRQ-disabled section acknowledges only when it leaves it. A CPU outside both acknowledges at once. May be
    /// called with a PTL held: accesses never take locks, so the wait always ends. <paramref name="cpu"/> is the
    /// initiator (−1: a caller that is not a CPU), for the counters.
    /// </summary>
    public void FlushTlbRange(MmContext mm, ulong start, ulong end, int cpu = -1)
    {
        var mask = mm.CpuMask;
        if (mask == 0 || end <= start)
        {
            return;
        }

        ProtocolEvents.Mark(
            "flush_tlb_mm_range",
            end - start > 1UL << 46
                ? broadcastInvalidate ? "invalidate the whole mm on cpus {2:cpus} (broadcast: no acknowledgement awaited)" : "shootdown of the whole mm on cpus {2:cpus}"
                : broadcastInvalidate ? "invalidate [0x{1:x}, +{3} page(s)) on cpus {2:cpus} (broadcast: no acknowledgement awaited)" : "shootdown [0x{1:x}, +{3} page(s)) on cpus {2:cpus}",
            address: start,
            value: (long)mask,
            value2: (long)((end - start + PhysicalMemory.PageSize - 1) >> PhysicalMemory.PageShift));
        var startVpn = start >> PhysicalMemory.PageShift;
        var endVpn = (end + PhysicalMemory.PageSize - 1) >> PhysicalMemory.PageShift;

        // Which targets were inside an access when the flush began (the caller cleared the entries before): only
        // those can have a walk in flight that read an old entry and fills the TLB after the invalidation. A target
        // outside then cannot: its next access announces itself with a full barrier before it reads the tables, so it
        // reads the cleared entries.
        var inFlight = 0UL;
        var targets = 0;
        for (var bits = mask; bits != 0; bits &= bits - 1)
        {
            var target = BitOperations.TrailingZeroCount(bits);
            if (guardWalksInFlight && (cpus[target].AccessSequence & 1) != 0)
            {
                inFlight |= 1UL << target;
            }

            cpus[target].Tlb.InvalidateRange(mm.Id, startVpn, endVpn);
            targets++;
        }

        if (guardWalksInFlight)
        {
            // Every target: an access that hit the old translation before the invalidation may still be in flight
            // (a store on hardware completes too); the flush returns only after it ends.
            for (var bits = mask; bits != 0; bits &= bits - 1)
            {
                WaitUntilOutsideAccess(cpus[BitOperations.TrailingZeroCount(bits)]);
            }

            // The targets that had an access in flight at the start: invalidate again what a walk in flight may have
            // filled, and wait once more. Between the first wait and the second invalidation a target may have begun
            // a new access that hit such an entry, and that access is still in flight: the flush must not return (and
            // the caller free the frame) before it ends. After this wait no access can use the old translation: every
            // walk that read the old entry ended before the first wait, the second invalidation removed what those
            // walks filled, and a new access misses. (Found by `engine stress --mix tlb` on real threads: a store
            // reached the freed frame; the systematic tester's schedule is
            // StressFoundRaceTests.StoresAgainstMadviseNeverReachAFreedFrame.)
            for (var bits = inFlight; bits != 0; bits &= bits - 1)
            {
                cpus[BitOperations.TrailingZeroCount(bits)].Tlb.InvalidateRange(mm.Id, startVpn, endVpn);
            }

            for (var bits = inFlight; bits != 0; bits &= bits - 1)
            {
                WaitUntilOutsideAccess(cpus[BitOperations.TrailingZeroCount(bits)]);
            }
        }

        if (!broadcastInvalidate)
        {
            // An IPI is taken only with interrupts on: a target in an IRQ-disabled section acknowledges when it leaves.
            for (var bits = mask; bits != 0; bits &= bits - 1)
            {
                WaitUntilIrqsOn(cpus[BitOperations.TrailingZeroCount(bits)]);
            }
        }

        ProtocolEvents.Mark("flush_tlb_mm_range", "every target acknowledged", address: start);
        counters.Add(cpu, Stat.TlbShootdowns);
        counters.Add(cpu, Stat.ShootdownTargets, targets);
    }

    /// <summary>
    /// A grace period for lockless walkers: returns once every CPU that was inside an access or an IRQ-disabled
    /// section has left it. A table unhooked before the call cannot be reached by a walker after it.
    /// </summary>
    public void WaitForLocklessWalkers()
    {
        foreach (var cpu in cpus)
        {
            WaitUntilOutsideAccess(cpu);
            WaitUntilIrqsOn(cpu);
        }
    }

    private static void WaitUntilIrqsOn(CpuContext cpu)
    {
        var sequence = cpu.IrqOffSequence;
        if ((sequence & 1) != 0)
        {
            Wait.Until((cpu, sequence), static s => s.cpu.IrqOffSequence != s.sequence);
        }
    }

    private static void WaitUntilOutsideAccess(CpuContext cpu)
    {
        var sequence = cpu.AccessSequence;
        if ((sequence & 1) != 0)
        {
            Wait.Until((cpu, sequence), static s => s.cpu.AccessSequence != s.sequence);
        }
    }
}
