using System.Globalization;

namespace Engine.Testing;

/// <summary>
/// A test surface: where the entry for an address lives, what the kernel holds as a <c>pte_t *</c> once a walk has
/// reached the PTE table (<c>pte_offset_map</c>): the table's frame and the entry's index in it. Obtained from
/// <see cref="MachineInspector.LocateEntry"/> and read with <see cref="MachineInspector.ReadEntry"/>, so a scenario
/// can read the same entry again without walking again (a walk is three more scheduling points). Valid as long as
/// the table is: madvise(DONTNEED), mprotect, faults and fork keep it; munmap and exit may free it, after which a
/// read returns whatever the frame holds. <c>default</c> is no slot, and reading it throws.
/// </summary>
public readonly record struct PteSlot
{
    internal PteSlot(Machine machine, long table, int index)
    {
        Machine = machine;
        Table = table;
        Index = index;
    }

    /// <summary>The frame number of the PTE table.</summary>
    public long Table { get; }

    /// <summary>The entry's index in the table, 0 to 511 (<c>pte_index</c>).</summary>
    public int Index { get; }

    /// <summary>The machine whose table it is; null for <c>default</c>.</summary>
    internal Machine? Machine { get; }

    /// <summary>"PTE table 0x…, entry n".</summary>
    public override string ToString()
        => Machine is null ? "no PTE slot" : string.Create(CultureInfo.InvariantCulture, $"PTE table 0x{Table:x}, entry {Index}");
}
