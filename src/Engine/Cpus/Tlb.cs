using Engine.Sync;

namespace Engine.Cpus;

/// <summary>
/// A CPU's TLB: 16 sets of 4 ways, each entry a tag word (valid, mm id, virtual page number) and a data word (pfn,
/// writable, dirty). Only the owning CPU looks entries up and fills them; any thread may invalidate them (a
/// shootdown). Fill writes the data, then the tag (release); invalidation compares-and-clears the tag. A fill that
/// races with an invalidation can leave an entry behind — that is the walk-in-flight hazard, closed by the
/// shootdown protocol (<see cref="Shootdown.FlushTlbRange"/>), not here.
/// </summary>
internal sealed class Tlb
{
    public const int Sets = 16;
    public const int Ways = 4;
    private const int EntryCount = Sets * Ways;
    private const ulong ValidBit = 1UL << 63;
    private const int MmShift = 36;
    private const ulong VpnMask = (1UL << MmShift) - 1;
    private const ulong WritableBit = 1UL << 62;
    private const ulong DirtyBit = 1UL << 61;
    private const ulong PfnMask = (1UL << 48) - 1;

    /// <summary>Ranges longer than this many pages are flushed by scanning every entry instead of page by page.</summary>
    private const ulong PageByPageLimit = 16;

    private readonly ulong[] _tags = new ulong[EntryCount];
    private readonly ulong[] _data = new ulong[EntryCount];
    private readonly int[] _victim = new int[Sets];

    /// <summary>Owner only: the translation of <paramref name="vpn"/> in mm <paramref name="mm"/>, if cached.</summary>
    public bool Lookup(int mm, ulong vpn, out long pfn, out bool writable, out bool dirty)
    {
        var tag = MakeTag(mm, vpn);
        var first = SetOf(vpn) * Ways;
        for (var way = 0; way < Ways; way++)
        {
            if (Atomic.Read(ref _tags[first + way]) == tag)
            {
                // Only the owner writes data, so the data belongs to this tag even if a shooter clears it now.
                var data = Atomic.Read(ref _data[first + way]);
                pfn = (long)(data & PfnMask);
                writable = (data & WritableBit) != 0;
                dirty = (data & DirtyBit) != 0;
                return true;
            }
        }

        pfn = -1;
        writable = dirty = false;
        return false;
    }

    /// <summary>Owner only: caches a translation, replacing the same page's entry or a victim round-robin.</summary>
    public void Fill(int mm, ulong vpn, long pfn, bool writable, bool dirty)
    {
        var tag = MakeTag(mm, vpn);
        var set = SetOf(vpn);
        var first = set * Ways;
        var slot = -1;
        for (var way = 0; way < Ways && slot < 0; way++)
        {
            var seen = Atomic.Read(ref _tags[first + way]);
            if (seen == tag || seen == 0)
            {
                slot = first + way;
            }
        }

        if (slot < 0)
        {
            slot = first + _victim[set];
            _victim[set] = (_victim[set] + 1) % Ways;
        }

        Atomic.Write(ref _tags[slot], 0UL);
        Atomic.Write(ref _data[slot], (ulong)pfn | (writable ? WritableBit : 0) | (dirty ? DirtyBit : 0));
        Atomic.Write(ref _tags[slot], tag);
    }

    /// <summary>Any thread: drops every entry of mm <paramref name="mm"/> for pages [<paramref name="startVpn"/>, <paramref name="endVpn"/>).</summary>
    public void InvalidateRange(int mm, ulong startVpn, ulong endVpn)
    {
        if (endVpn - startVpn <= PageByPageLimit)
        {
            for (var vpn = startVpn; vpn < endVpn; vpn++)
            {
                var first = SetOf(vpn) * Ways;
                var tag = MakeTag(mm, vpn);
                for (var way = 0; way < Ways; way++)
                {
                    Atomic.CompareExchange(ref _tags[first + way], 0UL, tag);
                }
            }

            return;
        }

        for (var slot = 0; slot < EntryCount; slot++)
        {
            var seen = Atomic.Read(ref _tags[slot]);
            if (seen != 0 && (int)((seen & ~ValidBit) >> MmShift) == mm && (seen & VpnMask) >= startVpn && (seen & VpnMask) < endVpn)
            {
                Atomic.CompareExchange(ref _tags[slot], 0UL, seen);
            }
        }
    }

    /// <summary>At quiescence: every valid entry, for invariant checks.</summary>
    public IEnumerable<(int Mm, ulong Vpn, long Pfn, bool Writable, bool Dirty)> Entries()
    {
        for (var slot = 0; slot < EntryCount; slot++)
        {
            var tag = Atomic.Read(ref _tags[slot]);
            if (tag != 0)
            {
                var data = Atomic.Read(ref _data[slot]);
                yield return ((int)((tag & ~ValidBit) >> MmShift), tag & VpnMask, (long)(data & PfnMask), (data & WritableBit) != 0, (data & DirtyBit) != 0);
            }
        }
    }

    private static int SetOf(ulong vpn) => (int)(vpn & (Sets - 1));

    private static ulong MakeTag(int mm, ulong vpn) => ValidBit | ((ulong)mm << MmShift) | (vpn & VpnMask);
}
