using System.Diagnostics;
using Engine.Sync;

namespace Engine.Cpus;

/// <summary>
/// One CPU's state below the access entry points: its TLB and the two sequences a shootdown or a grace period reads
/// to learn whether the CPU may be using a translation or walking a table. Driven by one thread at a time.
/// <para>
/// The access protocol. An access (TLB lookup, hardware walk, TLB fill, the load or store itself) is bracketed by
/// two increments of <see cref="AccessSequence"/>, odd inside: the shootdown initiator reads it to learn whether the
/// CPU may be using or filling a translation it is removing. The opening increment is a full barrier, so either a
/// shootdown's invalidation is visible to the lookup, or the initiator sees the access in progress and waits for it.
/// A fault is handled outside the bracket, so a CPU in a fault handler (or blocked, idle, finished) never holds a
/// shootdown up. An IRQ-disabled section (<see cref="LocalIrqDisable"/>, GUP-fast's walk) works the same way on
/// <see cref="IrqOffSequence"/>.
/// </para>
/// </summary>
internal sealed class CpuContext(int id)
{
    private readonly PaddedCounter _accessSequence = new();
    private readonly PaddedCounter _irqOffSequence = new();

    /// <summary>The CPU's number.</summary>
    public int Id { get; } = id;

    public Tlb Tlb { get; } = new();

    /// <summary>Odd while an access (a TLB lookup, walk, fill and the load or store) runs on this CPU.</summary>
    public int AccessSequence => Atomic.Read(ref _accessSequence.Value);

    /// <summary>Odd while an IRQ-disabled section (<see cref="LocalIrqDisable"/>) runs on this CPU.</summary>
    public int IrqOffSequence => Atomic.Read(ref _irqOffSequence.Value);

    /// <summary>True inside <see cref="LocalIrqDisable"/>/<see cref="LocalIrqEnable"/>, read by the owner without a scheduling point (for contract checks).</summary>
    public bool IrqsDisabled => (Volatile.Read(ref _irqOffSequence.Value) & 1) != 0;

    /// <summary>
    /// <c>local_irq_disable</c> for a lockless walker (GUP-fast): until <see cref="LocalIrqEnable"/> this CPU holds
    /// off the grace period before page tables are freed and, when shootdowns are IPIs (not
    /// <see cref="MachineOptions.BroadcastTlbInvalidate"/>), shootdown acknowledgements. Must not be nested in an
    /// access, and nothing may wait inside it for anything a shootdown initiator holds.
    /// </summary>
    public void LocalIrqDisable()
    {
        var now = Atomic.Increment(ref _irqOffSequence.Value);
        Debug.Assert((now & 1) == 1, "nested IRQ-disabled section");
    }

    /// <summary>
    /// <c>local_irq_enable</c>: ends the section opened by <see cref="LocalIrqDisable"/>. Only this CPU's thread writes
    /// its sequence, so a release store closes it (the walker's reads cannot move after it); the opening needs the full
    /// barrier (announce, then read the tables), the closing does not.
    /// </summary>
    public void LocalIrqEnable() => Atomic.Write(ref _irqOffSequence.Value, _irqOffSequence.Value + 1);

    /// <summary>Opens an access: the sequence turns odd, with a full barrier.</summary>
    public void BeginAccess()
    {
        var now = Atomic.Increment(ref _accessSequence.Value);
        Debug.Assert((now & 1) == 1, "nested access");
    }

    /// <summary>
    /// Closes it: the sequence turns even, by a release store (as <see cref="LocalIrqEnable"/>: only this CPU's thread
    /// writes it, and the access's loads and stores cannot move after a release).
    /// </summary>
    public void EndAccess() => Atomic.Write(ref _accessSequence.Value, _accessSequence.Value + 1);
}
