using Engine.Memory;
using Engine.Sync;

namespace Engine;

/// <summary>
/// Pages pinned by <see cref="Cpu.PinUserPages(Process, ulong, int, GupFlags)"/> (FOLL_PIN): each holds <see cref="Memmap.GupPinCountingBias"/>
/// references until <see cref="Dispose"/> unpins them. <see cref="Read"/> and <see cref="Write"/> access the pinned
/// frames directly, as a device doing DMA would: not through any page table, so they see the frame that was pinned,
/// whatever the process has mapped since.
/// </summary>
public sealed class PinnedPages : IDisposable
{
    private readonly GupHandle _handle;

    internal PinnedPages(Machine machine, long[] pfns, int count, GupFlags flags)
        => _handle = new GupHandle(machine, pfns, count, flags, pin: true);

    /// <summary>How many pages are pinned (fewer than asked only with <see cref="GupFlags.FastOnly"/>).</summary>
    public int Count => _handle.Count;

    /// <summary>The flags the pages were pinned with.</summary>
    public GupFlags Flags => _handle.Flags;

    /// <summary>Loads word <paramref name="wordIndex"/> (0–511) of pinned page <paramref name="page"/>.</summary>
    public ulong Read(int page, int wordIndex) => _handle.Read(page, wordIndex);

    /// <summary>
    /// Stores into word <paramref name="wordIndex"/> of pinned page <paramref name="page"/>. Only a pin taken with
    /// <see cref="GupFlags.Write"/> may write (a read-only pin may hold the shared zero page).
    /// </summary>
    public void Write(int page, int wordIndex, ulong value) => _handle.Write(page, wordIndex, value);

    /// <summary>
    /// Unpins (<c>unpin_user_pages_dirty_lock</c> for a write pin: a page-cache page is marked dirty first, so what
    /// the device wrote is written back). A second call throws <see cref="InvalidOperationException"/> and changes nothing.
    /// </summary>
    public void Dispose() => _handle.Release();
}

/// <summary>
/// Pages referenced by <see cref="Cpu.GetUserPages"/> (FOLL_GET, as vmsplice takes them): one reference each until
/// <see cref="Dispose"/>. <see cref="Read"/> reads the referenced frames directly.
/// </summary>
public sealed class PageReferences : IDisposable
{
    private readonly GupHandle _handle;

    internal PageReferences(Machine machine, long[] pfns, int count, GupFlags flags)
        => _handle = new GupHandle(machine, pfns, count, flags, pin: false);

    /// <summary>How many pages are referenced.</summary>
    public int Count => _handle.Count;

    /// <summary>Loads word <paramref name="wordIndex"/> (0–511) of referenced page <paramref name="page"/>.</summary>
    public ulong Read(int page, int wordIndex) => _handle.Read(page, wordIndex);

    /// <summary>
    /// Stores into word <paramref name="wordIndex"/> of referenced page <paramref name="page"/>, as direct I/O did
    /// through <c>get_user_pages</c> before pins existed. Only references taken with <see cref="GupFlags.Write"/> may
    /// write; their pages are marked dirty when the references are dropped (<c>set_page_dirty_lock</c>, then
    /// <c>put_page</c>).
    /// </summary>
    public void Write(int page, int wordIndex, ulong value) => _handle.Write(page, wordIndex, value);

    /// <summary>
    /// Drops the references (dirtying the pages first when they were taken with <see cref="GupFlags.Write"/>). A second
    /// call throws <see cref="InvalidOperationException"/> and changes nothing.
    /// </summary>
    public void Dispose() => _handle.Release();
}

/// <summary>What <see cref="PinnedPages"/> and <see cref="PageReferences"/> share.</summary>
internal sealed class GupHandle(Machine machine, long[] pfns, int count, GupFlags flags, bool pin)
{
    private int _released;

    public int Count => count;

    public GupFlags Flags => flags;

    public ulong Read(int page, int wordIndex) => Atomic.Read(ref Word(page, wordIndex));

    public void Write(int page, int wordIndex, ulong value)
    {
        if ((flags & GupFlags.Write) == 0)
        {
            throw new InvalidOperationException(pin
                ? "The pages were pinned without GupFlags.Write: a read-only pin must not be written."
                : "The references were taken without GupFlags.Write: they must not be written.");
        }

        Atomic.Write(ref Word(page, wordIndex), value);
    }

    public void Release()
    {
        if (Atomic.CompareExchange(ref _released, 1, 0) != 0)
        {
            throw new InvalidOperationException(pin ? "The pages were already unpinned." : "The references were already dropped.");
        }

        if ((flags & GupFlags.Write) != 0)
        {
            machine.Gup.MarkPagesDirty(pfns.AsSpan(0, count));
        }

        machine.Gup.Release(pfns.AsSpan(0, count), pin, -1);
    }

    private ref ulong Word(int page, int wordIndex)
    {
        ObjectDisposedException.ThrowIf(Atomic.Read(ref _released) != 0, this);
        ArgumentOutOfRangeException.ThrowIfNegative(page);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(page, count);
        ArgumentOutOfRangeException.ThrowIfNegative(wordIndex);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(wordIndex, PhysicalMemory.WordsPerFrame);
        return ref machine.Memory.Word(pfns[page], wordIndex);
    }
}
