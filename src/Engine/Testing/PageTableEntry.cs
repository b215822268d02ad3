using Engine.PageTables;

namespace Engine.Testing;

/// <summary>
/// A test surface: a page-table entry as a test or a zoo scenario reads it through <see cref="MachineInspector"/>, a
/// read-only copy of the 64-bit value (the kernel's <c>pte_t</c> a <c>ptep_get</c> returns). The layout is x86's: bit
/// 0 present, 1 writable, 2 user, 5 accessed, 6 dirty, 9 special (no struct page behind it, e.g. the zero page), the
/// pfn in bits 12–51; a non-present entry is none (all zero), a swap entry or a PROT_NONE entry. On <see cref="PteLayout.SplitPae"/> the
/// entry is stored as two 32-bit halves, <see cref="Low"/> (with the present bit) and <see cref="High"/> (with the
/// pfn's bits from 2^20 up): a lockless read that pairs halves of two different values shows here as such.
/// </summary>
public readonly record struct PageTableEntry
{
    internal PageTableEntry(Pte pte) => Value = pte.Value;

    /// <summary>The empty entry (<c>pte_none</c>): also what <c>default</c> holds.</summary>
    public static PageTableEntry None => default;

    /// <summary>The raw 64-bit value, both halves.</summary>
    public ulong Value { get; }

    /// <summary><c>pte_none</c>: the entry is all zero (nothing mapped, no swap entry).</summary>
    public bool IsNone => Value == 0;

    /// <summary><c>pte_present</c>: the present bit (bit 0, in the low half) is set.</summary>
    public bool IsPresent => AsPte.IsPresent;

    /// <summary>
    /// <c>pte_pfn</c>: the frame number field (bits 12–51). Meaningful for a present entry; for a non-present one it
    /// is whatever those bits hold (a swap entry's offset, or what a torn read left there).
    /// </summary>
    public long Pfn => AsPte.Pfn;

    /// <summary><c>pte_write</c>: a present entry that allows stores.</summary>
    public bool IsWrite => AsPte.IsWrite;

    /// <summary><c>is_swap_pte</c>: a swap entry, naming the slot (<see cref="SwapSlot"/>) an access faults the page in from.</summary>
    public bool IsSwap => AsPte.IsSwap;

    /// <summary><c>pte_swp_exclusive</c>: a swap entry carrying the page's AnonExclusive bit (Linux ≥ 5.19).</summary>
    public bool IsSwapExclusive => AsPte.IsSwapExclusive;

    /// <summary>The swap slot a swap entry names (<c>swp_offset</c>), or −1 for any other entry.</summary>
    public long SwapSlot => AsPte.IsSwap ? AsPte.SwapOffset : -1;

    /// <summary>The low 32 bits: the half <see cref="PteLayout.SplitPae"/> stores separately, with the present bit and the pfn's low 20 bits.</summary>
    public uint Low => AsPte.Low;

    /// <summary>The high 32 bits: on <see cref="PteLayout.SplitPae"/> the other half, with the pfn's bits from 2^20 up.</summary>
    public uint High => AsPte.High;

    private Pte AsPte => new(Value);

    /// <summary>The entry as the engine describes it ("none", "pfn 0x100001 rw dirty young", "swap(...)", ...).</summary>
    public override string ToString() => AsPte.ToString();
}
