using Engine.Memory;
using Engine.Sync;

namespace Engine.Mm;

/// <summary>
/// A virtual memory area: [Start, End), page aligned. Changed only under the mm's mmap_lock held for write (and, for a
/// file mapping, its file's <see cref="FileRmap.Lock"/> held for write, since rmap walks read it).
/// </summary>
internal sealed class Vma(MmStruct mm, ulong start, ulong end, Prot prot, MapFlags flags, Inode? file = null, long pgOff = 0)
{
    private AnonVma? _anonVma;
    private List<AnonVma>? _anonVmaChain;

    /// <summary>The address space this VMA belongs to (<c>vm_mm</c>).</summary>
    public MmStruct Mm { get; } = mm;

    public ulong Start { get; set; } = start;

    public ulong End { get; set; } = end;

    public Prot Prot { get; set; } = prot;

    public MapFlags Flags { get; } = flags;

    /// <summary>The mapped file (<c>vm_file</c>), or null for anonymous memory.</summary>
    public Inode? File { get; } = file;

    /// <summary>
    /// <c>vm_pgoff</c>: the file page mapped at <see cref="Start"/>; for anonymous memory, <see cref="Start"/> in pages
    /// at mmap time, kept through splits, so an anonymous page's index names the same address in every VMA forked or
    /// split from the one it was created in.
    /// </summary>
    public long PgOff { get; } = pgOff;

    /// <summary>
    /// <c>vma-&gt;anon_vma</c>: where this VMA's new anonymous pages belong; null until its first one. Set under the mm's
    /// <c>page_table_lock</c> (and the anon_vma's lock) while faults read it under the mmap_lock's read side.
    /// </summary>
    public AnonVma? AnonVma
    {
        get => Atomic.Read(ref _anonVma);
        set => Atomic.Write(ref _anonVma, value);
    }

    /// <summary><c>anon_vma_chain</c>: every anon_vma this VMA is linked into (its own and its ancestors').</summary>
    public List<AnonVma> AnonVmaChain => _anonVmaChain ??= new(1);

    public bool CanRead => Prot != Prot.None;

    public bool CanWrite => (Prot & Prot.Write) != 0;

    /// <summary>A shared mapping: stores reach the file (<c>VM_SHARED</c>).</summary>
    public bool IsShared => (Flags & MapFlags.Shared) != 0;

    public bool Contains(ulong address) => address >= Start && address < End;

    /// <summary>The page index of <paramref name="address"/> in the mapping (<c>linear_page_index</c>): the file page, or an anonymous page's index.</summary>
    public long LinearPageIndex(ulong address) => PgOff + (long)((address - Start) >> PhysicalMemory.PageShift);

    /// <summary>The address at which page <paramref name="index"/> of the mapping would be mapped, or null when outside this VMA (<c>vma_address</c>).</summary>
    public ulong? AddressOf(long index) => AddressOfRange(index, 1);

    /// <summary>
    /// The address <paramref name="index"/> would have in this VMA if any of the <paramref name="pages"/> pages from it
    /// lies in the VMA, else null; for a range that begins before the VMA, the address lies below <see cref="Start"/>
    /// (wrapping below zero: a caller adds whole pages to it and keeps the addresses within the VMA).
    /// </summary>
    public ulong? AddressOfRange(long index, int pages)
    {
        var first = PgOff;
        var count = (long)((End - Start) >> PhysicalMemory.PageShift);
        return index < first + count && index + pages > first
            ? unchecked(Start + ((ulong)(index - first) << PhysicalMemory.PageShift))
            : null;
    }

    /// <summary>A copy covering [<paramref name="start"/>, <paramref name="end"/>) of this VMA, in <paramref name="owner"/> (default: the same mm).</summary>
    public Vma Clone(ulong start, ulong end, MmStruct? owner = null)
        => new(owner ?? Mm, start, end, Prot, Flags, File, PgOff + (long)((start - Start) >> PhysicalMemory.PageShift));

    public override string ToString() => File is null ? $"[0x{Start:x}, 0x{End:x}) {Prot} {Flags}" : $"[0x{Start:x}, 0x{End:x}) {Prot} {Flags} {File} page {PgOff}";
}
