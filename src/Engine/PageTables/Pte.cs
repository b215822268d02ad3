using System.Globalization;

namespace Engine.PageTables;

/// <summary>
/// A page-table entry value, x86 style. Present entries: bit 0 present, 1 writable, 2 user, 5 young (accessed),
/// 6 dirty, 9 special (a software bit: no struct page behind it, e.g. the zero page), pfn in bits 12–51. Non-present
/// entries are either none (all zero) or swap entries: bit 1 marks them, bit 2 is the exclusive marker, and the
/// high half holds the swap type (bits 58–62) and offset (bits 32–57). On <see cref="PteLayout.SplitPae"/> the
/// low half holds the present bit; a swap entry's low half is non-zero too, so a lockless reader's re-read of the
/// low half sees every transition.
/// </summary>
internal readonly record struct Pte(ulong Value)
{
    public const ulong PresentBit = 1UL << 0;
    public const ulong WriteBit = 1UL << 1;
    public const ulong UserBit = 1UL << 2;
    public const ulong YoungBit = 1UL << 5;
    public const ulong DirtyBit = 1UL << 6;
    public const ulong ProtNoneBit = 1UL << 8;
    public const ulong SpecialBit = 1UL << 9;
    public const ulong PfnMask = ((1UL << 52) - 1) & ~((1UL << 12) - 1);

    public const ulong SwapMarkerBit = 1UL << 1;
    public const ulong SwapExclusiveBit = 1UL << 2;
    private const int SwapOffsetShift = 32;
    private const int SwapOffsetBits = 26;
    private const int SwapTypeShift = SwapOffsetShift + SwapOffsetBits;
    private const int SwapTypeBits = 5;

    /// <summary>The empty entry.</summary>
    public static Pte None => default;

    /// <summary>The largest pfn an entry can hold.</summary>
    public const long MaxPfn = (long)(PfnMask >> 12);

    public bool IsNone => Value == 0;

    public bool IsPresent => (Value & PresentBit) != 0;

    public bool IsWrite => IsPresent && (Value & WriteBit) != 0;

    public bool IsDirty => IsPresent && (Value & DirtyBit) != 0;

    public bool IsYoung => IsPresent && (Value & YoungBit) != 0;

    public bool IsSpecial => MapsPage && (Value & SpecialBit) != 0;

    /// <summary>A PROT_NONE entry: not present to the hardware, but it still maps its page (x86's <c>_PAGE_PROTNONE</c>).</summary>
    public bool IsProtNone => !IsPresent && (Value & ProtNoneBit) != 0;

    /// <summary>True for entries that hold a page: present or PROT_NONE.</summary>
    public bool MapsPage => IsPresent || IsProtNone;

    public long Pfn => (long)((Value & PfnMask) >> 12);

    public bool IsSwap => !IsPresent && (Value & SwapMarkerBit) != 0;

    public bool IsSwapExclusive => IsSwap && (Value & SwapExclusiveBit) != 0;

    public int SwapType => (int)((Value >> SwapTypeShift) & ((1UL << SwapTypeBits) - 1));

    public long SwapOffset => (long)((Value >> SwapOffsetShift) & ((1UL << SwapOffsetBits) - 1));

    public uint Low => (uint)Value;

    public uint High => (uint)(Value >> 32);

    /// <summary><c>mk_pte</c>: a present user entry for <paramref name="pfn"/>.</summary>
    public static Pte Make(long pfn, bool write, bool dirty = false, bool young = true, bool special = false)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pfn);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(pfn, MaxPfn);
        var value = PresentBit | UserBit | ((ulong)pfn << 12);
        if (write)
        {
            value |= WriteBit;
        }

        if (dirty)
        {
            value |= DirtyBit;
        }

        if (young)
        {
            value |= YoungBit;
        }

        if (special)
        {
            value |= SpecialBit;
        }

        return new Pte(value);
    }

    /// <summary>A swap entry for slot <paramref name="offset"/> of swap device <paramref name="type"/>.</summary>
    public static Pte MakeSwap(int type, long offset, bool exclusive)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(type);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(type, 1 << SwapTypeBits);
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(offset, 1L << SwapOffsetBits);
        var value = SwapMarkerBit | ((ulong)offset << SwapOffsetShift) | ((ulong)type << SwapTypeShift);
        return new Pte(exclusive ? value | SwapExclusiveBit : value);
    }

    /// <summary>Builds an entry from its two halves.</summary>
    public static Pte FromHalves(uint low, uint high) => new(((ulong)high << 32) | low);

    /// <summary><c>pte_modify</c> to PROT_NONE: not present, not writable, page kept.</summary>
    public Pte MkProtNone() => new((Value & ~(PresentBit | WriteBit)) | ProtNoneBit);

    /// <summary><c>pte_modify</c> back from PROT_NONE to a read-only present entry.</summary>
    public Pte MkPresentReadOnly() => new((Value & ~(ProtNoneBit | WriteBit)) | PresentBit);

    public Pte MkWrite() => new(Value | WriteBit);

    public Pte WrProtect() => new(Value & ~WriteBit);

    public Pte MkDirty() => new(Value | DirtyBit);

    public Pte MkClean() => new(Value & ~DirtyBit);

    public Pte MkYoung() => new(Value | YoungBit);

    public Pte MkOld() => new(Value & ~YoungBit);

    public override string ToString()
    {
        if (IsNone)
        {
            return "none";
        }

        if (IsSwap)
        {
            return string.Create(CultureInfo.InvariantCulture, $"swap(type {SwapType}, offset {SwapOffset}{(IsSwapExclusive ? ", exclusive" : "")})");
        }

        if (IsProtNone)
        {
            return string.Create(CultureInfo.InvariantCulture, $"protnone pfn 0x{Pfn:x}");
        }

        if (!IsPresent)
        {
            return string.Create(CultureInfo.InvariantCulture, $"non-present 0x{Value:x16}");
        }

        return string.Create(CultureInfo.InvariantCulture,
            $"pfn 0x{Pfn:x} {(IsWrite ? "rw" : "ro")}{(IsDirty ? " dirty" : "")}{(IsYoung ? " young" : "")}{(IsSpecial ? " special" : "")}");
    }
}
