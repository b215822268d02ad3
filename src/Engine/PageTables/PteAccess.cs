using System.Diagnostics;
using System.Runtime.CompilerServices;
using Engine.Invariants;
using Engine.Memory;
using Engine.Sync;

namespace Engine.PageTables;

/// <summary>
/// Reads and writes page-table entries in the frame pool, in the machine's <see cref="PteLayout"/>.
/// <para>
/// <see cref="PteLayout.Native64"/>: an entry is one 64-bit word, every access is one atomic operation.
/// <see cref="PteLayout.SplitPae"/>: software writes an entry as two 32-bit halves, in the order that keeps a present
/// entry from ever being visible with a half of another value: <see cref="SetPte"/> writes high then low (the present
/// bit is in the low half, so the entry turns present last), <see cref="PteClear"/> writes low then high (it turns
/// non-present first). A lockless software reader uses <see cref="PtepGetLockless"/>: low, high, and low again,
/// retrying while the low half changed. The hardware walker (<see cref="HardwareRead"/>,
/// <see cref="HardwareCompareExchange"/>) reads and updates all 64 bits at once, as PAE hardware does.
/// </para>
/// <para>
/// The re-read alone does not prove the halves belong together when two present values share a low half. The kernel
/// relies on a rule outside this class: a PTE never goes from one present value to another without a TLB flush in
/// between, and a lockless walker runs with interrupts off, which holds that flush back. Tests show both: the retry
/// catches every tear when the low halves differ, and a tear is found when the low halves match and no flush
/// separates the two values.
/// </para>
/// </summary>
internal sealed class PteAccess
{
    private readonly PhysicalMemory memory;
    private readonly PteLayout layout;
    private readonly bool locklessRetry;
    private readonly PageTableLocks ptls;
    private readonly ViolationLog violations;

    public PteAccess(PhysicalMemory memory, PageTableLocks ptls, ViolationLog violations, PteLayout layout, bool locklessRetry)
    {
        // The halves are addressed inside the 64-bit word: low half first in memory, as on x86.
        if (!BitConverter.IsLittleEndian)
        {
            throw new PlatformNotSupportedException("The SplitPae layout addresses PTE halves as on a little-endian machine.");
        }

        this.memory = memory;
        this.ptls = ptls;
        this.violations = violations;
        this.layout = layout;
        this.locklessRetry = locklessRetry;
    }

    public PteLayout Layout => layout;

    /// <summary>Whether <see cref="PtepGetLockless"/> re-reads the low half (the <c>LocklessPteRetry</c> knob).</summary>
    public bool LocklessRetry => locklessRetry;

    /// <summary>
    /// <c>set_pte</c>. Enter with the table's PTL held (or the table unreachable); returns with it held.
    /// </summary>
    public void SetPte(long table, int index, Pte pte)
    {
        CheckPtlHeld(table);
        ref var slot = ref memory.Word(table, index);
        if (layout == PteLayout.Native64)
        {
            Atomic.Write(ref slot, pte.Value);
            return;
        }

        // High first: the present bit, in the low half, appears only once the whole value is in place.
        Atomic.Write(ref HighHalf(ref slot), pte.High);
        Atomic.Write(ref LowHalf(ref slot), pte.Low);
    }

    /// <summary><c>pte_clear</c>. Enter with the table's PTL held; returns with it held.</summary>
    public void PteClear(long table, int index)
    {
        CheckPtlHeld(table);
        ref var slot = ref memory.Word(table, index);
        if (layout == PteLayout.Native64)
        {
            Atomic.Write(ref slot, 0UL);
            return;
        }

        // Low first: the entry stops being present before its pfn's high bits go.
        Atomic.Write(ref LowHalf(ref slot), 0U);
        Atomic.Write(ref HighHalf(ref slot), 0U);
    }

    /// <summary>
    /// <c>ptep_get_and_clear</c>: clears the entry and returns what it held, including a dirty or young bit the
    /// hardware set up to the last moment. Enter with the table's PTL held; returns with it held.
    /// </summary>
    public Pte PtepGetAndClear(long table, int index)
    {
        CheckPtlHeld(table);
        ref var slot = ref memory.Word(table, index);
        if (layout == PteLayout.Native64)
        {
            return new Pte(Atomic.Exchange(ref slot, 0UL));
        }

        // Exchanging the low half ends the entry's presence atomically: a hardware update racing with it fails its
        // 64-bit compare-and-swap and re-walks. The high half is then stable and is cleared after.
        var low = Atomic.Exchange(ref LowHalf(ref slot), 0U);
        var high = Atomic.Read(ref HighHalf(ref slot));
        Atomic.Write(ref HighHalf(ref slot), 0U);
        return Pte.FromHalves(low, high);
    }

    /// <summary>
    /// <c>ptep_get</c>: the entry, read by software that holds the table's PTL. No software writer can race; the
    /// hardware may set young or dirty, which a 64-bit atomic read sees whole.
    /// </summary>
    public Pte PtepGet(long table, int index) => new(Atomic.Read(ref memory.Word(table, index)));

    /// <summary>
    /// <c>ptep_get_lockless</c>: the entry, read without the PTL. On <see cref="PteLayout.SplitPae"/> it reads low,
    /// high, then low again, and retries while the low half changed (unless the knob is off).
    /// </summary>
    public Pte PtepGetLockless(long table, int index)
    {
        ref var slot = ref memory.Word(table, index);
        if (layout == PteLayout.Native64)
        {
            return new Pte(Atomic.Read(ref slot));
        }

        while (true)
        {
            // Each read is an acquire, so the three loads stay in program order (the kernel's smp_rmb pair).
            var low = Atomic.Read(ref LowHalf(ref slot));
            var high = Atomic.Read(ref HighHalf(ref slot));
            if (!locklessRetry || Atomic.Read(ref LowHalf(ref slot)) == low)
            {
                return Pte.FromHalves(low, high);
            }
        }
    }

    /// <summary>The hardware walker's read: all 64 bits at once, on either layout.</summary>
    public Pte HardwareRead(long table, int index) => new(Atomic.Read(ref memory.Word(table, index)));

    /// <summary>
    /// The hardware walker's update of young and dirty bits: a 64-bit compare-and-swap (<c>lock cmpxchg8b</c> on
    /// PAE). True when the entry still held <paramref name="expected"/>.
    /// </summary>
    public bool HardwareCompareExchange(long table, int index, Pte expected, Pte desired)
    {
        Debug.Assert(expected.Pfn == desired.Pfn && expected.IsPresent && desired.IsPresent, "the hardware only sets accessed and dirty bits");
        return Atomic.CompareExchange(ref memory.Word(table, index), desired.Value, expected.Value) == expected.Value;
    }

    /// <summary>
    /// <c>ptep_set_wrprotect</c>: clears the write bit atomically, keeping a dirty bit the hardware sets meanwhile.
    /// Enter with the table's PTL held; returns with it held. Returns the entry as it was.
    /// </summary>
    public Pte PtepSetWrprotect(long table, int index)
    {
        CheckPtlHeld(table);
        return new(Atomic.And(ref memory.Word(table, index), ~Pte.WriteBit));
    }

    /// <summary>
    /// <c>ptep_test_and_clear_young</c>. Enter with the table's PTL held; returns with it held. True when the entry
    /// was young.
    /// </summary>
    public bool PtepTestAndClearYoung(long table, int index)
    {
        CheckPtlHeld(table);
        return (Atomic.And(ref memory.Word(table, index), ~Pte.YoungBit) & Pte.YoungBit) != 0;
    }

    /// <summary>
    /// The invariant "every software PTE store happens under the table's PTL", checked at each store when
    /// <see cref="Checks.Enabled"/> (the JIT removes it otherwise). Reads the lock word plainly: no scheduling point.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckPtlHeld(long table)
    {
        if (Checks.Enabled && !ptls.Ptl(table).IsHeld)
        {
            ReportUnlockedStore(table);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReportUnlockedStore(long table)
        => violations.Record(InvariantViolation.Of(ViolationKind.PteStoreWithoutPtl, $"PTE store in table 0x{table:x} without its PTL held") with { Pfn = table });

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref uint LowHalf(ref ulong slot) => ref Unsafe.As<ulong, uint>(ref slot);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref uint HighHalf(ref ulong slot) => ref Unsafe.Add(ref Unsafe.As<ulong, uint>(ref slot), 1);
}
